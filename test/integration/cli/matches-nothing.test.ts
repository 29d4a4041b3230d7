/**
 * Issue 16, "Replaying nothing is not silent": a replay whose range selects no event, or a produce
 * whose source yields none, used to print `replayed 0 events` (or nothing) and exit 0. Now both warn
 * on stderr, and `--strict` makes them exit 1.
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deleteTopics } from '../../../streams/admin.js';
import { cliHarness, KAFKA } from './cli-harness.js';
import { publishUntrainedFm } from './fixtures.js';

const h = cliHarness('nothing');

describe('a replay or produce that matches nothing says so', { timeout: 180_000 }, () => {
  const empty = join(h.dir, 'empty.csv');
  before(async () => {
    mkdirSync(h.dir, { recursive: true });
    writeFileSync(empty, 'event_id,time,user_id,item_id,label\n');
    await publishUntrainedFm(join(h.dir, 'releases'));
    const produced = await h.thaw('produce', '--source', 'synthetic:events=200,seed=3', '--topic', h.topic, '--partitions', '1');
    assert.equal(produced.code, 0, produced.stderr);
  });
  after(async () => {
    await deleteTopics({ brokers: [KAFKA] }, [h.topic]).catch(() => undefined);
    await h.chQuery(`DROP TABLE IF EXISTS thaw.${h.table}`).catch(() => undefined);
    rmSync(h.dir, { recursive: true, force: true });
  });

  it('thaw replay of a range with no event warns; --strict exits 1', async () => {
    const args = ['replay', '--namespace', `n${h.id}`, '--topic', h.topic, '--from', '2001-01-01T00:00:00Z', '--to', '2001-01-02T00:00:00Z'];
    const lax = await h.thaw(...args);
    assert.equal(lax.code, 0, lax.stderr);
    assert.match(lax.stderr, /selects no event of .*--strict makes this exit 1/);
    const strict = await h.thaw(...args, '--strict');
    assert.equal(strict.code, 1, strict.stderr);
    assert.match(strict.stderr, /selects no event/);
    const some = await h.thaw('replay', '--namespace', `m${h.id}`, '--topic', h.topic, '--from', '0', '--to', '50', '--strict');
    assert.equal(some.code, 0, some.stderr);
    assert.match(some.stdout, /replayed 50 events/);
    assert.doesNotMatch(some.stderr, /selects no event/);
  });

  it('thaw produce of a source with no event warns; --strict exits 1', async () => {
    const lax = await h.thaw('produce', '--source', `csv:${empty}`, '--topic', h.topic);
    assert.equal(lax.code, 0, lax.stderr);
    assert.match(lax.stderr, /the source yielded no event; nothing produced \(--strict makes this exit 1\)/);
    const strict = await h.thaw('produce', '--source', `csv:${empty}`, '--topic', h.topic, '--strict');
    assert.equal(strict.code, 1, strict.stderr);
  });
});
