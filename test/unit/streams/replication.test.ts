/**
 * Replication of the topics Thaw creates (issue 11, "Beyond one node: Kafka"): the defaults that
 * ensureTopics applies on a cluster of N brokers, and the --replication-factor option's validation.
 * The cluster behaviour itself is test/integration/streams/kafka-cluster-kill.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { joinSpec } from '../../../config/commands/join.js';
import { produceSpec } from '../../../config/commands/produce.js';
import { rekeySpec } from '../../../config/commands/rekey.js';
import { runSpec } from '../../../config/commands/run.js';
import { loadConfig } from '../../../config/load.js';
import { replicationDefaults } from '../../../streams/admin.js';

const noFile = (): string => {
  throw new Error('no file');
};

describe('replicationDefaults', () => {
  it('gives 3 copies and min.insync 2 on a cluster of 3 or more brokers', () => {
    assert.deepEqual(replicationDefaults(3), { replicationFactor: 3, minInsyncReplicas: 2 });
    assert.deepEqual(replicationDefaults(7), { replicationFactor: 3, minInsyncReplicas: 2 });
  });

  it('gives 1 copy and min.insync 1 on a single development broker, and 2/1 on two brokers', () => {
    assert.deepEqual(replicationDefaults(1), { replicationFactor: 1, minInsyncReplicas: 1 });
    assert.deepEqual(replicationDefaults(2), { replicationFactor: 2, minInsyncReplicas: 1 });
  });

  it('keeps a chosen factor and derives min.insync from it (one copy may be down)', () => {
    assert.deepEqual(replicationDefaults(5, 5), { replicationFactor: 5, minInsyncReplicas: 2 });
    assert.deepEqual(replicationDefaults(5, 2), { replicationFactor: 2, minInsyncReplicas: 1 });
  });
});

type Load = (argv: string[]) => { replicationFactor?: number };
const opts = { env: {}, readFile: noFile };
const COMMANDS: [string, Load][] = [
  ['produce', (argv) => loadConfig(produceSpec, ['--source', 'synthetic', ...argv], opts).config],
  ['rekey', (argv) => loadConfig(rekeySpec, argv, opts).config],
  ['join', (argv) => loadConfig(joinSpec, argv, opts).config],
  ['run', (argv) => loadConfig(runSpec, ['item', ...argv], opts).config],
];

describe('--replication-factor', () => {
  for (const [name, load] of COMMANDS) {
    it(`${name}: unset by default, taken when valid, refused when not an integer 1..16`, () => {
      assert.equal(load([]).replicationFactor, undefined);
      assert.equal(load(['--replication-factor', '3']).replicationFactor, 3);
      for (const bad of ['0', '-1', '2.5', '17']) {
        assert.throws(
          () => load([`--replication-factor=${bad}`]),
          (err: unknown) => {
            assert.match(String((err as Error).message), /replicationFactor/);
            return true;
          },
        );
      }
    });
  }
});
