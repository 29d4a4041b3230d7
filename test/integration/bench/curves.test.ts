/**
 * The curves bench (bench/curves) on a tiny synthetic stream against the real services: curves per
 * side and adapter from ClickHouse, the history filter, one two-sided FM whose fm-adagrad workers
 * read each other's states, the direct transport agreeing with Kafka where no cross-side read is
 * involved, and the clean-up of everything a run created.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { CurveRow } from '../../../analytics/types.js';
import { runCurves, type CurvesRunOptions, type CurvesRunResult } from '../../../bench/curves/bench.js';
import { clickhouseExec, CurvesResources, servicesFromEnv } from '../../../bench/curves/resources.js';
import { silentLogger } from '../../../lib/log.js';
import { createRedis } from '../../../model-store/redis.js';
import { SyntheticStream, type SyntheticOptions } from '../../../sources/synthetic.js';
import { withAdmin } from '../../../streams/admin.js';

const SYNTHETIC: SyntheticOptions = { events: 2000, users: 200, items: 100, seed: 5 };
const HISTORY = 1000;
const services = servicesFromEnv();

function options(trainRoot: string, transport: 'kafka' | 'direct'): CurvesRunOptions {
  return {
    dataset: 'synthetic',
    synthetic: SYNTHETIC,
    adapters: ['none', 'fm-adagrad'],
    transport,
    historyEvents: HISTORY,
    trainRoot,
    fmMinCount: 5,
    // Micro-batches small enough that the fm-adagrad pair reads states the other already wrote.
    directBatch: 200,
    maxBatchMessages: 200,
    timeoutMs: 120_000,
    logger: silentLogger,
  };
}

const key = (r: CurveRow): string => `${r.side}/${r.adapter}/${r.release}/${r.bucket}`;

async function leftovers(res: CurvesResources): Promise<{ topics: string[]; groups: string[]; keys: number; table: string }> {
  const topics = (await withAdmin(services.kafka, (a) => a.listTopics())).filter((t) => res.topics.includes(t));
  const groups = (await withAdmin(services.kafka, (a) => a.listGroups())).groups.map((g) => g.groupId).filter((g) => res.groups.includes(g));
  const redis = createRedis({ url: services.redisUrl });
  try {
    const keys = await redis.keys(`${res.redisPrefix}:*`);
    const table = (await clickhouseExec(services.clickhouseUrl, `EXISTS TABLE thaw.${res.table}`)).trim();
    return { topics, groups, keys: keys.length, table };
  } finally {
    redis.disconnect();
  }
}

describe('curves bench on the real services', () => {
  let dir = '';
  const cleanups: CurvesResources[] = [];
  after(async () => {
    for (const r of cleanups) await r.cleanup(silentLogger);
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('curves per side and adapter over the evaluation window only; the fm-adagrad pair reads each other; direct agrees with Kafka without the read; clean-up leaves nothing', async () => {
    dir = await mkdtemp(join(tmpdir(), 'thaw-curves-test-'));
    const kafkaRes = new CurvesResources(services);
    cleanups.push(kafkaRes);
    const k: CurvesRunResult = await runCurves(kafkaRes, options(join(dir, 'releases'), 'kafka'));

    // Every worker read the whole topic, history included; the fm-adagrad pair ran together.
    assert.deepEqual(
      k.workers.map((w) => [w.spec.label, w.events]),
      [
        ['item-none-fm', 2000],
        ['item-fm-adagrad', 2000],
        ['user-fm-adagrad', 2000],
        ['user-none-fm', 2000],
      ],
    );
    // Rows of the history are in the table, but the curves count only events after the history.
    const stream = [...new SyntheticStream(SYNTHETIC).events()];
    const historyEnd = stream[HISTORY - 1]?.timeMs ?? NaN;
    assert.equal(k.since, historyEnd + 1);
    const inWindow = stream.filter((e) => e.timeMs > historyEnd).length;
    const stored = Number((await clickhouseExec(services.clickhouseUrl, `SELECT count() FROM thaw.${k.table} WHERE event_time_ms < ${k.since}`)).trim());
    assert.equal(stored, 4 * HISTORY, 'each worker logged its history rows');
    assert.match(k.sql, new RegExp(`event_time_ms >= ${k.since}`));
    // One two-sided FM release for both sides.
    assert.deepEqual(
      k.releases.map((r) => r.kind),
      ['fm'],
    );
    const fmId = k.releases[0]?.id;
    for (const side of ['item', 'user'] as const) {
      for (const adapter of ['none', 'fm-adagrad']) {
        const rows = k.curves.filter((r) => r.side === side && r.adapter === adapter);
        assert.ok(rows.length > 0, `${side}/${adapter} has a curve`);
        assert.equal(
          rows.reduce((s, r) => s + r.n, 0),
          inWindow,
          `${side}/${adapter}: only evaluation events`,
        );
        assert.ok(
          rows.some((r) => Number.isFinite(r.auc) && r.auc > 0 && r.auc < 1),
          `${side}/${adapter} has a finite AUC`,
        );
        assert.ok(rows.every((r) => r.release === fmId));
      }
    }
    // The fm-adagrad workers read each other's states (cross-side read; how much depends on their
    // relative progress through Kafka); none reads nothing.
    for (const w of k.workers) if (w.spec.adapter === 'none') assert.equal(w.crossRead + w.crossRefused, 0, w.spec.label);
    assert.ok(k.workers.filter((w) => w.spec.cross).reduce((s, w) => s + w.crossRead, 0) > 0, 'the fm-adagrad pair read each other');

    // The direct transport (no Kafka) on the same releases: none scores the same, so the same curves;
    // the fm-adagrad pair runs in lockstep there (its reads depend on the two workers' relative
    // progress through Kafka, so its curves may differ) and reads each other.
    const directRes = new CurvesResources(services);
    cleanups.push(directRes);
    const d = await runCurves(directRes, options(join(dir, 'releases'), 'direct'));
    assert.ok(
      d.releases.every((r) => r.reused),
      'releases trained by the first run are reused',
    );
    assert.equal(d.curves.length, k.curves.length);
    const byKey = new Map(k.curves.map((r) => [key(r), r]));
    for (const r of d.curves) {
      const o = byKey.get(key(r));
      assert.ok(o !== undefined, key(r));
      assert.equal(r.n, o.n, key(r));
      if (r.adapter === 'none' && Number.isFinite(o.auc)) assert.ok(Math.abs(r.auc - o.auc) < 1e-9, `${key(r)}: ${r.auc} vs ${o.auc}`);
    }
    for (const w of d.workers) if (w.spec.cross) assert.ok(w.crossRead > 0, `${w.spec.label} read the other side's states`);

    for (const res of [kafkaRes, directRes]) {
      const before = await leftovers(res);
      assert.ok(before.keys > 0 && before.table === '1', 'the run created keys and a table');
      assert.deepEqual(await res.cleanup(silentLogger), []);
      assert.deepEqual(await leftovers(res), { topics: [], groups: [], keys: 0, table: '0' });
    }
    assert.ok(kafkaRes.topics.length >= 4 && kafkaRes.groups.length === 5, 'the Kafka run owned topics and groups');
  });
});
