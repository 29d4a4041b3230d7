/**
 * One curves run: releases (reused or trained on the history prefix), the stream through the
 * production pieces (pipeline.ts), then the warm-up curves queried from the run's ClickHouse table
 * with the analysts' SQL (analytics/curves.ts `queryCurves`) restricted to the evaluation window.
 *
 * The history filter. Adapters replay the history too (entities enter the evaluation window with
 * their real prior counts and states), but a score counts only when the event is strictly after the
 * last event ANY release of the run trained on: `since = max(historyEndMs) + 1`, i.e. the curve
 * SQL's `WHERE event_time_ms >= since` (CurveFilter.since). So no score comes from data a shared
 * model saw. With `metaEvents` (direct transport), the meta-learned workers and their frozen
 * baselines stop after that many events: their window ends there (`until`), and `commonCurves` gives
 * every adapter on that same window.
 */
import { ClickHouseSink } from '../../analytics/clickhouse-sink.js';
import { curveSql, queryCurves, type CurveFilter } from '../../analytics/curves.js';
import type { CurveRow } from '../../analytics/types.js';
import { ConfigError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { openSource } from '../../sources/index.js';
import { SyntheticStream, type SyntheticOptions } from '../../sources/synthetic.js';
import { produceLabelled, rekeyTopic, runDirectGroup, runKafkaGroup, type StageTiming, type WorkerRun } from './pipeline.js';
import { evaluationSince, fullPlan, groupsOf, kindsOf, selectWorkers, type CurveAdapter, type WorkerSpec } from './plan.js';
import { prepareReleases, type ReleaseRef } from './releases.js';
import type { CurvesResources } from './resources.js';
import { at } from '../../lib/at.js';

export interface CurvesRunOptions {
  /** `ml100k`: MovieLens-100K from `ml100kDir`, in time order; `synthetic`: the synthetic generator. */
  dataset: 'ml100k' | 'synthetic';
  /** MovieLens-100K directory (dataset ml100k). */
  ml100kDir?: string;
  /** Synthetic stream options (dataset synthetic); `events` is the stream length. */
  synthetic?: SyntheticOptions;
  adapters: readonly CurveAdapter[];
  /** Sides to run. @default ['item', 'user'] */
  sides?: readonly ('item' | 'user')[];
  /** Only these workers (labels such as `item-emerg`, see plan.ts `selectWorkers`). @default all of the sides' */
  workers?: readonly string[];
  /** `kafka`: produce → rekey → AdaptationWorkers; `direct`: BatchProcessor without Kafka. */
  transport: 'kafka' | 'direct';
  /** Share of the stream the releases trained here learn from (ml100k). @default 0.5 */
  historyFraction?: number;
  /** History events (synthetic: a prefix of the stream; overrides historyFraction). */
  historyEvents?: number;
  /** Synthetic: only the first `limit` events of the stream are used (a prefix of the same stream). @default all */
  limit?: number;
  /** Direct transport: events the meta-learned workers (and their frozen baselines) run on. @default all */
  metaEvents?: number;
  /** Direct transport: events per BatchProcessor call. @default DEFAULT_DIRECT_BATCH (10000) */
  directBatch?: number;
  /** Kafka transport: largest micro-batch of a worker (`thaw run --max-batch-messages`). @default the BatchConsumer default, as `thaw run` */
  maxBatchMessages?: number;
  /** Reuse releases found in `<reuseRoot>/<kind>`. @default none */
  reuseRoot?: string;
  /** Releases trained here go to `<trainRoot>/<kind>`. */
  trainRoot: string;
  metaTrain?: { epochs?: number; metaEpochs?: number; searchEpochs?: number; minEvents?: number };
  fmMinCount?: number;
  /** Per stage (rekey, one worker), in ms. @default 3_600_000 */
  timeoutMs?: number;
  logger: Logger;
}

export interface CurvesRunResult {
  runId: string;
  table: string;
  events: number;
  historyEvents: number;
  releases: ReleaseRef[];
  /** Lower bound of the evaluation window (event_time_ms >= since). */
  since: number;
  /** Upper bound of the meta workers' window (event_time_ms < until), with metaEvents. */
  metaUntil?: number;
  stages: { produce?: StageTiming; rekey?: StageTiming };
  workers: WorkerRun[];
  /** Every worker's curves on its whole evaluation window. */
  curves: CurveRow[];
  /** With metaEvents: every adapter on the meta workers' window [since, metaUntil). */
  commonCurves?: CurveRow[];
  /** The curve SQL as run (the full-window query of the first worker's namespace; the others differ in the namespace only). */
  sql: string;
}

/** The stream's events (synthetic: generated lazily, so a 10M stream is never held in memory). */
function streamOf(opts: CurvesRunOptions): () => Iterable<LabelledEvent> | AsyncIterable<LabelledEvent> {
  if (opts.dataset === 'synthetic') {
    const s = new SyntheticStream(opts.synthetic ?? {});
    const limit = opts.limit ?? Number.MAX_SAFE_INTEGER;
    return function* prefix() {
      let n = 0;
      for (const e of s.events()) {
        if (n++ >= limit) return;
        yield e;
      }
    };
  }
  if (opts.ml100kDir === undefined) throw new ConfigError('ml100kDir', 'dataset ml100k needs the MovieLens-100K directory');
  const dir = opts.ml100kDir;
  return () => openSource({ kind: 'ml100k', dir });
}

async function take(events: Iterable<LabelledEvent> | AsyncIterable<LabelledEvent>, n: number): Promise<LabelledEvent[]> {
  const out: LabelledEvent[] = [];
  if (n <= 0) return out;
  for await (const e of events) {
    out.push(e);
    if (out.length >= n) break;
  }
  return out;
}

/** Runs the whole bench on `res` (the caller cleans `res` up). */
export async function runCurves(res: CurvesResources, opts: CurvesRunOptions): Promise<CurvesRunResult> {
  const log = opts.logger;
  const timeoutMs = opts.timeoutMs ?? 3_600_000;
  const stream = streamOf(opts);
  const plan = selectWorkers(
    fullPlan(opts.adapters).filter((w) => (opts.sides ?? ['item', 'user']).includes(w.side)),
    opts.workers,
  );
  if (opts.metaEvents !== undefined && opts.transport !== 'direct') throw new ConfigError('metaEvents', 'needs the direct transport (a Kafka worker reads its topic to the end)');

  // The stream length and the history prefix. ML-100K is small: read once, in time order.
  let events: number;
  let history: LabelledEvent[];
  let all: LabelledEvent[] | undefined;
  if (opts.dataset === 'ml100k') {
    all = await take(stream(), Number.MAX_SAFE_INTEGER);
    for (let i = 1; i < all.length; i++) if (at(all, i).timeMs < at(all, i - 1).timeMs) throw new ConfigError('dataset', 'MovieLens source is not in time order');
    events = all.length;
    history = all.slice(0, opts.historyEvents ?? Math.floor(events * (opts.historyFraction ?? 0.5)));
  } else {
    events = Math.min(opts.synthetic?.events ?? 100_000, opts.limit ?? Number.MAX_SAFE_INTEGER);
    history = await take(stream(), opts.historyEvents ?? Math.floor(events * (opts.historyFraction ?? 0.5)));
  }
  if (history.length === 0 || history.length >= events) throw new ConfigError('historyEvents', `must leave history and evaluation events (history ${history.length} of ${events})`);

  const releases = await prepareReleases({
    kinds: kindsOf(plan),
    history,
    ...(opts.reuseRoot === undefined ? {} : { reuseRoot: opts.reuseRoot }),
    trainRoot: opts.trainRoot,
    ...(opts.metaTrain === undefined ? {} : { metaTrain: opts.metaTrain }),
    ...(opts.fmMinCount === undefined ? {} : { fmMinCount: opts.fmMinCount }),
    logger: log,
  });
  const historyEvents = history.length;
  history = [];
  const refOf = new Map(releases.map((r) => [r.kind, r]));
  const refFor = (w: WorkerSpec): ReleaseRef => {
    const ref = refOf.get(w.kind);
    if (ref === undefined) throw new ConfigError('releases', `no ${w.kind} release for worker ${w.label}`);
    return ref;
  };
  const since = evaluationSince(releases.map((r) => r.historyEndMs));
  log.info('evaluation window', { since, releases: releases.map((r) => ({ id: r.id, historyEndMs: r.historyEndMs })) });

  const stages: CurvesRunResult['stages'] = {};
  const workers: WorkerRun[] = [];
  let metaUntil: number | undefined;
  if (opts.transport === 'kafka') {
    const produced = await produceLabelled(res, all ?? stream(), log);
    stages.produce = produced.timing;
    log.info('produced', { topic: produced.topic, ...produced.timing });
    const rk = await rekeyTopic(res, produced.topic, events, log, timeoutMs);
    stages.rekey = rk.timing;
    log.info('re-keyed', { byUser: rk.byUser, byItem: rk.byItem, ...rk.timing });
    for (const group of groupsOf(plan)) {
      // The workers of a group run together (the fm-adagrad pair reads each other's states).
      const runs = await runKafkaGroup(res, group, refFor, (w) => (w.side === 'item' ? rk.byItem : rk.byUser), events, log, timeoutMs, opts.maxBatchMessages);
      for (const run of runs) log.info('worker done', { worker: run.spec.label, events: run.events, perSec: Math.round(run.perSec), crossRead: run.crossRead, crossRefused: run.crossRefused });
      workers.push(...runs);
    }
  } else {
    const metaN = Math.min(events, opts.metaEvents ?? events);
    if (metaN < events) {
      // The meta window ends after the last event the meta workers see.
      const prefix = await take(stream(), metaN);
      metaUntil = at(prefix, prefix.length - 1).timeMs + 1;
      if (metaUntil <= since) throw new ConfigError('metaEvents', `the meta prefix (${metaN} events) ends inside the history`);
    }
    for (const group of groupsOf(plan)) {
      const limit = group.some((w) => w.meta) ? metaN : events;
      const runs = await runDirectGroup(res, group, refFor, all ?? stream(), limit, log, opts.directBatch);
      for (const run of runs) log.info('worker done', { worker: run.spec.label, events: run.events, perSec: Math.round(run.perSec), crossRead: run.crossRead, crossRefused: run.crossRefused });
      workers.push(...runs);
    }
  }

  // A 10M-row namespace's curve query takes ~15 s on a quiet server; on the loaded 2-core bench host it
  // exceeded the sink's 30 s default (a run lost at its last step): curves get 10 minutes.
  const target = new ClickHouseSink({ url: res.services.clickhouseUrl, table: res.table, spoolDir: res.dir('query'), logger: log, requestTimeoutMs: 600_000 });
  try {
    const filter: CurveFilter = { table: res.table, since };
    // One query per worker namespace: each worker's rows are its own curve (the baselines of
    // different releases stay apart), and the de-duplication of a 10M-row worker stays small.
    const perNamespace = async (f: CurveFilter): Promise<CurveRow[]> => {
      const out: CurveRow[] = [];
      // The fm-adagrad pair shares one namespace (its rows differ by side): query it once.
      for (const namespace of new Set(workers.map((w) => w.namespace))) out.push(...(await queryCurves(target, { ...f, namespace })));
      return out;
    };
    const curves = await perNamespace(filter);
    const commonCurves = metaUntil === undefined ? undefined : await perNamespace({ ...filter, until: metaUntil });
    return {
      runId: res.id,
      table: res.table,
      events,
      historyEvents,
      releases,
      since,
      ...(metaUntil === undefined ? {} : { metaUntil }),
      stages,
      workers,
      curves,
      ...(commonCurves === undefined ? {} : { commonCurves }),
      sql: curveSql({ ...filter, namespace: workers[0]?.namespace ?? 'none', database: target.database }),
    };
  } finally {
    await target.close();
  }
}
