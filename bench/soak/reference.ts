/**
 * The soak's checks at the end: an uninterrupted reference run over the same events, streamed (a
 * 30-minute soak produces tens of millions of events, too many to hold as an array the way
 * test/integration/consumers/harness.ts referenceRun does), and the prediction log and Redis states
 * the workers left, compared with it.
 *
 * The log check runs in ClickHouse over the de-duplicated log (one group per event id): an event with
 * no row is lost; an event whose rows disagree on score or prior count was applied twice (a replay
 * of an event already applied would see a later state); rows that agree are duplicates the table's
 * de-duplication hides (a chunk re-sent after a crash). The sums of prior counts and scores over the
 * events are compared with the reference's: a prediction made from a wrong state moves them.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { createAdapter } from '../../adapters/registry.js';
import type { PredictionRow } from '../../analytics/types.js';
import { BatchProcessor, type BatchItem } from '../../consumers/processor.js';
import { MemoryEntityStore } from '../../model-store/memory-store.js';
import { RedisEntityStore } from '../../model-store/redis-store.js';
import type { EntityState, StateScope } from '../../model-store/types.js';
import type { FactorizationMachine } from '../../models/fm.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { partitionOfKey } from '../../streams/producer.js';

export interface ReferenceRun {
  states: Map<string, EntityState>;
  events: number;
  sumPriorCount: number;
  sumScore: number;
}

/**
 * The BatchProcessor over `events` with an in-memory store, each partition's events in stream order
 * (events keyed by item land where partitionOfKey says), in chunks of `chunk`.
 */
export async function streamingReference(events: Iterable<LabelledEvent>, scope: StateScope, model: FactorizationMachine, partitions: number, chunk = 5000): Promise<ReferenceRun> {
  const store = new MemoryEntityStore();
  let sumPriorCount = 0;
  let sumScore = 0;
  let n = 0;
  const sink = {
    write: (rows: readonly PredictionRow[]): Promise<void> => {
      for (const r of rows) {
        sumPriorCount += r.priorCount;
        sumScore += r.score;
      }
      return Promise.resolve();
    },
    flush: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  const proc = new BatchProcessor({ adapter: createAdapter(scope.adapter, scope.side, model), store, sink, scope });
  const pending = Array.from({ length: partitions }, (): BatchItem[] => []);
  const next = new Array<number>(partitions).fill(0);
  const ids = new Set<string>();
  const flush = async (partition: number): Promise<void> => {
    const items = pending[partition] ?? [];
    if (items.length === 0) return;
    pending[partition] = [];
    await proc.process(items, { partition });
  };
  for (const event of events) {
    const partition = partitionOfKey(event.itemId, partitions);
    const items = pending[partition];
    if (items === undefined) throw new Error(`partition ${partition} out of range`);
    items.push({ offset: next[partition] ?? 0, event });
    next[partition] = (next[partition] ?? 0) + 1;
    ids.add(event.itemId);
    n++;
    if (items.length >= chunk) await flush(partition);
  }
  for (let p = 0; p < partitions; p++) await flush(p);
  const all = [...ids];
  const loaded = await store.getMany(scope, all);
  const states = new Map<string, EntityState>();
  all.forEach((id, i) => {
    const s = loaded[i];
    if (s !== undefined) states.set(id, s);
  });
  return { states, events: n, sumPriorCount, sumScore };
}

export interface LogCheck {
  /** Rows in the table (duplicates included, as far as merges have not removed them yet). */
  rows: number;
  /** Distinct event ids with a prediction. */
  events: number;
  /** Produced events with no prediction. */
  lost: number;
  /** Events whose rows disagree on score or prior count: applied more than once. */
  doubled: number;
  /** Events with several rows that agree (hidden by de-duplication). */
  duplicated: number;
  /** Event ids that were never produced. */
  unexpected: number;
  /** Sum of prior counts over events minus the reference's (0 when every prediction saw the reference's count). */
  priorCountDiff: number;
  /** |sum of scores − the reference's| over all events. */
  scoreSumDiff: number;
}

/** Events whose ids one query of checkLog groups (see there). */
const CHECK_EVENTS_PER_PART = 4_000_000;

/** The de-duplicated log of `table` against `produced` events `syn-<seed>-0 … syn-<seed>-(produced−1)`. */
export async function checkLog(ch: ClickHouseClient, table: string, namespace: string, seed: number, produced: number, ref: ReferenceRun): Promise<LogCheck> {
  const prefix = `syn-${seed}-`;
  // One GROUP BY over every event id needs ~170 bytes per event: 23.4M events (30 minutes) passed the
  // server's 3.7 GiB per-query limit. So the ids are checked in parts (by hash), summed here.
  const parts = Math.max(1, Math.ceil(produced / CHECK_EVENTS_PER_PART));
  const totals = new Map<string, number>();
  for (let part = 0; part < parts; part++) {
    // Only validated integers and the fixed namespace/table names (made by the bench) enter the SQL.
    const sql = `
      SELECT sum(n) AS rows, count() AS events, countIf(n > 1) AS duplicated,
             countIf(s_spread > 0 OR pc_spread > 0) AS doubled,
             countIf(substring(eid, 1, ${prefix.length}) != '${prefix}' OR toUInt64OrZero(substring(eid, ${prefix.length + 1})) >= ${produced}) AS unexpected,
             sum(pc) AS sum_pc, sum(s) AS sum_s
      FROM (SELECT any(event_id) AS eid, count() AS n, any(score) AS s, max(score) - min(score) AS s_spread,
                   any(prior_count) AS pc, max(prior_count) - min(prior_count) AS pc_spread
            FROM thaw.${table} WHERE namespace = '${namespace}' AND cityHash64(event_id) % ${parts} = ${part} GROUP BY cityHash64(event_id))`;
    const rs = await ch.query({ query: sql, format: 'JSONEachRow' });
    const [r] = await rs.json<Record<string, string | number>>();
    for (const [k, v] of Object.entries(r ?? {})) totals.set(k, (totals.get(k) ?? 0) + Number(v));
  }
  const num = (k: string): number => totals.get(k) ?? 0;
  return {
    rows: num('rows'),
    events: num('events'),
    lost: Math.max(0, produced - (num('events') - num('unexpected'))),
    doubled: num('doubled'),
    duplicated: num('duplicated'),
    unexpected: num('unexpected'),
    priorCountDiff: num('sum_pc') - ref.sumPriorCount,
    scoreSumDiff: Math.abs(num('sum_s') - ref.sumScore),
  };
}

export interface StateCheck {
  entities: number;
  missing: number;
  differing: number;
  maxParamDiff: number;
  /** Sum of the stored states' event counts (equals the events produced when none was lost or applied twice). */
  countSum: number;
}

/** Every reference state against the one in Redis (count, last event time, parameters to 1e-6). */
export async function checkStates(redisUrl: string, prefix: string, scope: StateScope, ref: ReferenceRun): Promise<StateCheck> {
  const store = new RedisEntityStore({ redis: { url: redisUrl }, keyPrefix: prefix });
  try {
    const ids = [...ref.states.keys()];
    let missing = 0;
    let differing = 0;
    let maxParamDiff = 0;
    let countSum = 0;
    for (let at = 0; at < ids.length; at += 1000) {
      const part = ids.slice(at, at + 1000);
      const got = await store.getMany(scope, part);
      part.forEach((id, i) => {
        const s = got[i];
        const want = ref.states.get(id);
        if (s === undefined || want === undefined) {
          missing++;
          return;
        }
        countSum += s.count;
        let diff = s.params.length === want.params.length ? 0 : Infinity;
        for (let j = 0; j < Math.min(s.params.length, want.params.length); j++) diff = Math.max(diff, Math.abs((s.params[j] ?? NaN) - (want.params[j] ?? NaN)));
        maxParamDiff = Math.max(maxParamDiff, diff);
        if (s.count !== want.count || s.lastEventMs !== want.lastEventMs || !(diff <= 1e-6)) differing++;
      });
    }
    return { entities: ids.length, missing, differing, maxParamDiff, countSum };
  } finally {
    await store.close();
  }
}
