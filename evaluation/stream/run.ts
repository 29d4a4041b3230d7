/**
 * `thaw eval --protocol stream`: Thaw's adapters and their peers on one stream, predict then learn,
 * by warm-up bucket, on the embedded default (no services): the history trains the releases, the
 * workers replay the whole stream in lockstep through the production path (lockstep.ts), the shared
 * parameters keep learning and are switched in as releases, the peers replay the same stream, and
 * every scored row goes to embedded ClickHouse (chDB), from which the curves come by the same SQL
 * analysts run (analytics/curves.ts).
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ChdbSink } from '../../analytics/chdb-sink.js';
import { queryCurves } from '../../analytics/curves.js';
import { CURVE_BUCKETS, type CurveBucket, type CurveRow, type PredictionRow } from '../../analytics/types.js';
import { ConfigError, ThawError } from '../../lib/errors.js';
import { silentLogger, type Logger } from '../../lib/log.js';
import { Progress } from '../../lib/progress.js';
import { initBackend } from '../../models/backend.js';
import type { ReleaseAdapterOptions } from '../../adapters/registry.js';
import type { BiasFilterPrior } from '../../models/meta-state.js';
import { SIDES, type LabelledEvent, type Side } from '../../schemas/types.js';
import { openSource, type SourceSpec } from '../../sources/index.js';
import { runCountsPeer, runVwPeer, type PeerName, type PeerRun } from '../peers/index.js';
import { familyOf, FAMILIES, FAMILY_ADAPTER, FAMILY_SIDES, namespaceOf, PARTNER, PEER_NAMESPACE, type Family } from './families.js';
import { comparePair, type PeerComparison } from './compare.js';
import { replayLockstep, type LockstepOptions, type LockstepResult } from './lockstep.js';
import { loadFamily, trainFamily, type FamilyRelease, type MetaTrainOverrides } from './releases.js';
import { BatchingSink } from './sinks.js';

/** The default of `--sync-every`: the online trainer's default (trainers/online-trainer.ts). */
export { DEFAULT_SYNC_EVERY_EVENTS } from '../../trainers/online-trainer.js';
import { DEFAULT_SYNC_EVERY_EVENTS } from '../../trainers/online-trainer.js';

/** Options of `runStreamEval`. */
export interface StreamEvalOptions {
  source: SourceSpec;
  /**
   * Read only the first N events of the source (a validation run: the history of a longer run,
   * e.g. N = 20 % of ML-100K with historyFraction 0.5 trains on 0–10 % and scores 10–20 %).
   * @default all
   */
  maxEvents?: number;
  /** Options of the adapters (and of the none over their releases), as `thaw run`'s adapterOptions. @default each adapter's */
  adapterOptions?: ReleaseAdapterOptions;
  /** Share of the stream's first events that forms the history, 0 < F < 1. @default 0.2 */
  historyFraction?: number;
  /** Sides reported. @default both */
  sides?: readonly Side[];
  /** Adapters run (each with its own none): fm-adagrad, emerg, coldnas, fixed-adaptive. @default all */
  adapters?: readonly string[];
  /** Events between two releases of the shared parameters; 0 = frozen at the history. @default DEFAULT_SYNC_EVERY_EVENTS */
  syncEvery?: number;
  /** Adapters read the other side's fresh state (`thaw run --cross-adapter auto`); false: they see it cold (`--cross-adapter off`). @default true */
  crossSide?: boolean;
  /** Peers run on the same rows. @default none */
  peers?: readonly PeerName[];
  /** Start from the current releases of this directory instead of training on the history. @default train */
  releaseDir?: string;
  /** Work directory: chDB data, VW files. Its `chdb` is recreated each run. @default '.thaw/eval-stream' */
  out?: string;
  /** Seed of every trainer. @default 7788 */
  seed?: number;
  /** Options of the meta-learned families' trainers beside their defaults (the demo trains shorter). @default none */
  metaTrain?: Partial<Record<Family, MetaTrainOverrides>>;
  /** Adapters asked for explicitly: a family of them that cannot train fails the run (others are skipped with a warning). @default [] */
  required?: readonly string[];
  signal?: AbortSignal;
  logger?: Logger;
  /** Where progress is drawn. @default process.stderr */
  progressStream?: { write(s: string): unknown; isTTY?: boolean };
  /** Called with the states and last releases the replay ends with (lockstep.ts `onDone`). @default none */
  onReplayed?: LockstepOptions['onDone'];
}

/** One result row: a side's bucket for one method. */
export interface StreamEvalRow {
  side: Side;
  /** `fm-adagrad`, `emerg`, …, `none`, or a peer (`vw`, `counts`). */
  adapter: string;
  /** The family (release lineage) of an adapter or its none; `peer` for a peer. */
  release: string;
  bucket: CurveBucket;
  n: number;
  auc: number;
  logLoss: number;
}

export interface StreamEvalResult {
  events: number;
  /** Stream position where scoring starts (the history's length). */
  windowFrom: number;
  syncEvery: number;
  rows: StreamEvalRow[];
  /** How each family's release was made, and the online releases taken. */
  families: { family: Family; trainSec: number; info: Record<string, unknown> }[];
  skipped: { family: Family; reason: string }[];
  replay: Omit<LockstepResult, 'switches'> & { switches: number; firstSwitches: LockstepResult['switches'] };
  peers: { name: PeerName; chosen: PeerRun['chosen']; ms: number }[];
  /** Wall time, seconds. */
  wallSec: number;
  /** The chDB directory holding the rows (query it with `thaw curves --chdb DIR`). */
  chdbDir: string;
  /** The CurveRows behind `rows`, for plots. */
  curves: CurveRow[];
  /** Per side and bucket, the best adapter against the best peer, with a bootstrap interval (peers run only). */
  comparisons: PeerComparison[];
}

/**
 * Reads a whole source (or its first `maxEvents`); a stream out of time order is put in time order
 * (stable), with a warning.
 */
export async function readStream(spec: SourceSpec, logger: Logger = silentLogger, maxEvents = Infinity): Promise<LabelledEvent[]> {
  const events: LabelledEvent[] = [];
  let late = 0;
  let maxMs = -Infinity;
  for await (const e of openSource(spec)) {
    if (events.length >= maxEvents) break;
    if (e.timeMs < maxMs) late++;
    else maxMs = e.timeMs;
    events.push(e);
  }
  if (late > 0) {
    logger.warn('events out of time order: sorted by time (stable) for a predict-then-learn replay', { late, events: events.length });
    const order = events.map((e, i) => ({ e, i }));
    order.sort((a, b) => a.e.timeMs - b.e.timeMs || a.i - b.i);
    return order.map((x) => x.e);
  }
  return events;
}

function familiesOf(adapters: readonly string[]): Family[] {
  return FAMILIES.filter((f) => adapters.includes(FAMILY_ADAPTER[f]));
}

/** Runs the stream evaluation (see the file comment). */
export async function runStreamEval(opts: StreamEvalOptions): Promise<StreamEvalResult> {
  const t0 = performance.now();
  const log = opts.logger ?? silentLogger;
  const fraction = opts.historyFraction ?? 0.2;
  if (!(fraction > 0 && fraction < 1)) throw new ConfigError('history-fraction', `must be in (0, 1), got ${String(opts.historyFraction)}`);
  const sides = opts.sides ?? SIDES;
  const adapters = opts.adapters ?? FAMILIES.map((f) => FAMILY_ADAPTER[f]);
  for (const a of adapters) if (familyOf(a) === undefined) throw new ConfigError('adapters', `unknown adapter "${a}"; known: ${FAMILIES.map((f) => FAMILY_ADAPTER[f]).join(', ')}`);
  const syncEvery = opts.syncEvery ?? DEFAULT_SYNC_EVERY_EVENTS;
  if (!(Number.isSafeInteger(syncEvery) && syncEvery >= 0)) throw new ConfigError('sync-every', `must be an integer >= 0 (0 = frozen releases), got ${String(opts.syncEvery)}`);
  const out = opts.out ?? join('.thaw', 'eval-stream');
  const maxEvents = opts.maxEvents ?? Infinity;
  if (!(maxEvents === Infinity || (Number.isSafeInteger(maxEvents) && maxEvents >= 2))) throw new ConfigError('max-events', `must be an integer >= 2, got ${String(opts.maxEvents)}`);

  const events = await readStream(opts.source, log, maxEvents);
  const historyN = Math.floor(events.length * fraction);
  if (historyN < 1 || historyN >= events.length) throw new ConfigError('history-fraction', `${fraction} of ${events.length} events leaves no history or nothing to score`);
  log.info('stream loaded', { events: events.length, historyEvents: historyN });

  // 1. Releases: trained on the history (or loaded). A family that cannot train is skipped unless
  //    asked for by name; the FM family is every other adapter's cross-side partner.
  const wanted = familiesOf(adapters).filter((f) => FAMILY_SIDES[f].some((s) => sides.includes(s)) || f === PARTNER.family);
  if (wanted.some((f) => f !== 'fm')) await initBackend('auto', log);
  const families: FamilyRelease[] = [];
  const skipped: { family: Family; reason: string }[] = [];
  const history = events.slice(0, historyN);
  // The FM trains first (FAMILIES order): its bias filter fit is the one the meta trainers would
  // repeat on the same history with the same seed, so they take it.
  let biasFilter: BiasFilterPrior | undefined;
  for (const family of wanted) {
    if (opts.signal?.aborted === true) throw new ThawError('LIFECYCLE', 'stream evaluation interrupted');
    try {
      const meta = opts.metaTrain?.[family];
      const trained =
        opts.releaseDir !== undefined
          ? await loadFamily(family, opts.releaseDir)
          : await trainFamily(family, history, { seed: opts.seed ?? 7788, logger: log, ...(meta === undefined ? {} : { meta }), ...(biasFilter === undefined ? {} : { biasFilter }) });
      biasFilter ??= trained.biasFilter;
      families.push(trained);
      log.info('release ready', { family, trainSec: Math.round((families[families.length - 1]?.trainSec ?? 0) * 10) / 10 });
    } catch (err) {
      if ((opts.required ?? []).includes(FAMILY_ADAPTER[family]) || !(err instanceof ThawError) || family === PARTNER.family) throw err;
      skipped.push({ family, reason: err.message });
      log.warn('adapter skipped: its release cannot be trained on this history', { adapter: FAMILY_ADAPTER[family], reason: err.message });
    }
  }

  // 2. Replay into chDB, then the peers' rows.
  const chdbDir = join(out, 'chdb');
  await rm(chdbDir, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  const chdb = new ChdbSink({ dataDir: chdbDir });
  const sink = new BatchingSink(chdb);
  let replay: LockstepResult;
  const peers: StreamEvalResult['peers'] = [];
  let curves: CurveRow[];
  const comparisons: PeerComparison[] = [];
  try {
    await chdb.ensureSchema();
    const progress = new Progress({ label: 'eval replay', total: events.length, stream: opts.progressStream ?? process.stderr, logger: log });
    replay = await replayLockstep({
      events,
      historyN,
      families,
      sides,
      syncEvery,
      sink,
      progress,
      logger: log,
      ...(opts.adapterOptions === undefined ? {} : { adapterOptions: opts.adapterOptions }),
      ...(opts.crossSide === undefined ? {} : { crossSide: opts.crossSide }),
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      ...(opts.onReplayed === undefined ? {} : { onDone: opts.onReplayed }),
    });
    progress.finish();
    for (const name of opts.peers ?? []) {
      const run = name === 'vw' ? await runVwPeer(events, historyN, { workDir: join(out, 'peers'), cacheDir: '.thaw', logger: log }) : runCountsPeer(events, historyN);
      peers.push({ name, chosen: run.chosen, ms: Math.round(run.ms) });
      log.info('peer done', { peer: name, chosen: run.chosen, ms: Math.round(run.ms) });
      await sink.write(peerRows(name, run.scores, events, historyN, sides));
    }
    await sink.flush();
    const namespaces = [...families.map((f) => namespaceOf(f.family)), PEER_NAMESPACE];
    curves = [...(await queryCurves(chdb, { namespace: namespaces, byRelease: false })), ...(await queryCurves(chdb, { namespace: namespaces, byRelease: false, buckets: 'early' }))].map((r) => ({
      ...r,
      release: releaseLabel(r.namespace),
    }));
    if (peers.length > 0) {
      for (const side of sides) {
        for (const bucket of CURVE_BUCKETS) {
          const here = curves.filter((c) => c.side === side && c.bucket === bucket && Number.isFinite(c.auc));
          const best = (xs: CurveRow[]): CurveRow | undefined => xs.reduce<CurveRow | undefined>((a, c) => (a === undefined || c.auc > a.auc ? c : a), undefined);
          const adapter = best(here.filter((c) => c.adapter !== 'none' && c.namespace !== PEER_NAMESPACE));
          const peer = best(here.filter((c) => c.namespace === PEER_NAMESPACE));
          if (adapter === undefined || peer === undefined) continue;
          comparisons.push(await comparePair(chdb, { side, bucket, adapter: adapter.adapter, namespace: adapter.namespace, peer: peer.adapter, peerNamespace: PEER_NAMESPACE }));
        }
      }
    }
  } finally {
    await sink.close();
  }
  const rows: StreamEvalRow[] = curves
    .map((r) => ({ side: r.side, adapter: r.adapter, release: r.release, bucket: r.bucket, n: r.n, auc: r.auc, logLoss: r.logLoss }))
    .sort((a, b) => SIDES.indexOf(a.side) - SIDES.indexOf(b.side) || methodRank(a) - methodRank(b) || CURVE_BUCKETS.indexOf(a.bucket) - CURVE_BUCKETS.indexOf(b.bucket));
  const { switches, ...rest } = replay;
  return {
    events: events.length,
    windowFrom: historyN,
    syncEvery,
    rows,
    families: families.map((f) => ({ family: f.family, trainSec: Math.round(f.trainSec * 10) / 10, info: f.info })),
    skipped,
    replay: { ...rest, switches: switches.length, firstSwitches: switches.slice(0, 8) },
    peers,
    wallSec: (performance.now() - t0) / 1000,
    chdbDir,
    curves,
    comparisons,
  };
}

/** The family of a namespace (`eval-fm` → `fm`), or `peer`. */
function releaseLabel(namespace: string): string {
  return namespace === PEER_NAMESPACE ? 'peer' : namespace.replace(/^eval-/, '');
}

/** Row order within a side: by family, none before its adapter, peers last. */
function methodRank(r: { adapter: string; release: string }): number {
  const f = FAMILIES.indexOf(r.release as Family);
  return f < 0 ? 100 + (r.adapter === 'vw' ? 0 : 1) : f * 2 + (r.adapter === 'none' ? 0 : 1);
}

/** A peer's scored rows, one per event and side, with each side's prior count from the stream's start. */
export function peerRows(name: string, scores: Float64Array, events: readonly LabelledEvent[], historyN: number, sides: readonly Side[]): PredictionRow[] {
  const rows: PredictionRow[] = [];
  for (const side of sides) {
    const seen = new Map<string, number>();
    events.forEach((e, j) => {
      const id = side === 'user' ? e.userId : e.itemId;
      const prior = seen.get(id) ?? 0;
      seen.set(id, prior + 1);
      if (j < historyN) return;
      rows.push({
        eventId: e.eventId,
        eventTimeMs: e.timeMs,
        side,
        entityId: id,
        priorCount: prior,
        score: scores[j] ?? NaN,
        label: e.label,
        adapter: name,
        release: 'peer',
        namespace: PEER_NAMESPACE,
      });
    });
  }
  return rows;
}
