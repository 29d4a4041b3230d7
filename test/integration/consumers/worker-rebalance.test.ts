/**
 * Issue 11, "Correct under rebalance": lost updates when partitions come back to a worker that had
 * owned them. Workers are `thaw run item` processes, exactly as production assembles them (cli/dev.ts
 * runs the same CLI as bin/thaw.mjs, from source): Redis behind the in-process cache tier, ClickHouse,
 * the release watcher. One consumer group on a 6-partition topic while events keep arriving, scaled
 * 1 → 3 → 2 → 1 → 2: A alone; B and C join; B drains on SIGTERM; C is killed with SIGKILL; D starts.
 * Partitions move away from A and back to it, after B and C advanced their entities. At the end every
 * Redis state must equal an uninterrupted run's and every event must be logged once with the same
 * score (the states A cached before a partition left it must not be used when it returns).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { publishFm } from '../../../cli/fm-release.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import type { StateScope } from '../../../model-store/types.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { EventProducer } from '../../../streams/producer.js';
import {
  assertMatchesReference,
  clickhouse,
  CLICKHOUSE_URL,
  committedOf,
  dropKeys,
  dropTable,
  events,
  KAFKA,
  KEEP_ALL_EVENTS,
  lagOf,
  model,
  names,
  produceByItem,
  REDIS_URL,
  referenceRun,
  waitFor,
} from './harness.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PARTITIONS = 6;
const N = 4000;
const scope: StateScope = { namespace: 'live', side: 'item', adapter: 'fm-adagrad' };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface ThawProcess {
  name: string;
  child: ChildProcess;
  exited: Promise<number | string>;
  stderr(): string;
}

describe('thaw run workers scaled 1 → 3 → 2 with SIGTERM and kill -9 (issue 11)', { timeout: 180_000 }, () => {
  const n = names('rebalance');
  const dir = mkdtempSync(join(tmpdir(), 'thaw-rebalance-'));
  const running: ThawProcess[] = [];
  after(async () => {
    for (const w of running) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    const ch = clickhouse();
    try {
      await dropTable(ch, n.table);
    } finally {
      await ch.close();
    }
    await dropKeys(REDIS_URL, n.prefix);
    await deleteTopics(KAFKA, [n.topic]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** `thaw run item` in its own process, as an operator starts it. */
  const thawRun = (name: string): ThawProcess => {
    const args = [
      'run',
      'item',
      '--topic',
      n.topic,
      '--group-id',
      n.group,
      '--cross-adapter',
      'off',
      '--metrics-port',
      '0',
      '--max-batch',
      '40',
      '--session-timeout-ms',
      '6000',
      '--heartbeat-interval-ms',
      '1000',
      '--spool-dir',
      join(dir, `spool-${name}`),
      '--log-level',
      'warn',
    ];
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/dev.ts', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: {
        ...process.env,
        THAW_KAFKA: KAFKA.brokers.join(','),
        THAW_REDIS_URL: REDIS_URL,
        THAW_REDIS_PREFIX: n.prefix,
        THAW_CLICKHOUSE_URL: CLICKHOUSE_URL,
        THAW_CLICKHOUSE_TABLE: n.table,
        THAW_RELEASE_DIR: join(dir, 'releases'),
      },
    });
    let err = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => (err = (err + d).slice(-20_000)));
    const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
    const w = { name, child, exited, stderr: () => err };
    running.push(w);
    return w;
  };

  it('ends with the states and log of an uninterrupted run', async (t) => {
    await ensureTopics(KAFKA, [{ topic: n.topic, partitions: PARTITIONS, config: { ...KEEP_ALL_EVENTS } }]);
    await publishFm(new ReleaseStore({ root: join(dir, 'releases') }), 'fm', model());
    const evs = events(N, 43);
    const reference = await referenceRun(evs, scope, PARTITIONS);

    // A live stream of ~130 events/s: every scaling step happens while events arrive.
    const producer = new EventProducer({ kafka: KAFKA });
    await producer.connect();
    let produced = 0;
    const producing = (async () => {
      try {
        for (let at = 0; at < N; at += 40) {
          await produceByItem(producer, n.topic, evs.slice(at, at + 40));
          produced = Math.min(N, at + 40);
          await sleep(300);
        }
      } finally {
        await producer.close();
      }
    })();
    const committed = (): Promise<number> => committedOf(n.group, n.topic);
    const advance = async (what: string, by: number): Promise<void> => {
      const target = (await committed()) + by;
      await waitFor(`${what}: ${target} events committed`, async () => (await committed()) >= target, 60_000, 100);
    };

    const a = thawRun('A');
    await advance('A alone', 500);
    const b = thawRun('B');
    const c = thawRun('C');
    await advance('A, B and C', 700);
    b.child.kill('SIGTERM');
    assert.equal(await b.exited, 0, `B drains and exits 0:\n${b.stderr()}`);
    await advance('A and C', 500);
    c.child.kill('SIGKILL');
    assert.equal(await c.exited, 'SIGKILL');
    await advance('A alone again', 400);
    const d = thawRun('D');
    const producedAtEnd = produced;
    await producing;
    t.diagnostic(`produced when D started: ${producedAtEnd} of ${N}`);
    assert.ok(producedAtEnd < N, 'every scaling step happened while events arrived');

    await waitFor('lag 0', async () => (await lagOf(n.group, n.topic)) === 0, 60_000, 200);
    for (const w of [a, d]) w.child.kill('SIGTERM');
    for (const w of [a, d]) assert.equal(await w.exited, 0, `${w.name} drains and exits 0:\n${w.stderr()}`);

    const ch = clickhouse();
    try {
      await assertMatchesReference({ ch, table: n.table, redisUrl: REDIS_URL, prefix: n.prefix, scope, events: evs, reference });
    } finally {
      await ch.close();
    }
  });
});
