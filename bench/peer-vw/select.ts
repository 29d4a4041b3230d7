/**
 * Settings of Thaw's adapters chosen on the prefix, symmetric to VW's learning rate: for each
 * adapter with a PeerTuning (thaw-peer.ts PEER_TUNING), every grid value runs on a SELECTION split
 * that never sees the evaluation window: the shared FM and the meta-learned releases are trained
 * on events [0, selN) (releases cached under `<releaseDir>/select`), the adapters replay [0, selEnd)
 * and are scored on [selN, selEnd) — by prequential AUC of the early rows (1-5 prior events; all
 * rows when fewer than `minEarly`) or of all rows (PeerTuning.rows). The best value is chosen
 * (ties go to the adapter's default, then to the earlier grid value).
 */
import { join } from 'node:path';
import type { ReleaseAdapterOptions } from '../../adapters/registry.js';
import { auc } from '../../evaluation/metrics.js';
import type { Logger } from '../../lib/log.js';
import type { LabelledEvent, Side } from '../../schemas/types.js';
import { BUCKET_KEYS, bucketMetrics, EARLY, priorCounts, type BucketKey } from './evaluate.js';
import { adaptersOfSide, PEER_ADAPTERS, runThawSide, type PeerVariant } from './thaw-peer.js';

/** One grid value's score on the selection window. */
export interface SelectionTrial {
  value: number;
  auc: number;
  /** Rows scored. */
  n: number;
  /** AUC per bucket of the selection window (for the record; the choice uses `auc`). */
  byBucket: Partial<Record<BucketKey, number>>;
}

/** The choice for one adapter of one side. */
export interface Selection {
  adapter: string;
  side: Side;
  option: string;
  grid: number[];
  default: number;
  /** Rows actually scored: `early`, `all`, or `all (few early)` when early rows were fewer than minEarly. */
  rows: string;
  trials: SelectionTrial[];
  chosen: number;
  /** Adapter options that set the chosen value. */
  options: ReleaseAdapterOptions;
}

/** Options of `selectSettings`. */
export interface SelectOptions {
  side: Side;
  /** Adapter names of the benchmark; those with a PeerTuning on `side` are tuned. */
  adapters: readonly string[];
  /** The selection run trains on [0, selN) … */
  selN: number;
  /** … and is scored on [selN, selEnd); events from selEnd on are never read. */
  selEnd: number;
  /** Events per BatchProcessor call. @default 500 */
  batchSize?: number;
  /** Early rows needed to score on them; fewer → all rows. @default 200 */
  minEarly?: number;
  /** Root of the cached releases; the selection's are kept in `<releaseDir>/select`. @default none: always train */
  releaseDir?: string;
  /** trainFromEvents options of the selection releases (tests make them tiny). @default its defaults */
  metaTrain?: Parameters<typeof runThawSide>[2]['metaTrain'];
  logger?: Logger;
}

/** The value with the highest AUC; ties (1e-9) go to `dflt` if tied, else to the earliest trial. */
export function chooseValue(trials: readonly SelectionTrial[], dflt: number): number {
  let best: SelectionTrial | undefined;
  for (const t of trials) {
    if (!Number.isFinite(t.auc)) continue;
    if (best === undefined || t.auc > best.auc + 1e-9 || (Math.abs(t.auc - best.auc) <= 1e-9 && t.value === dflt)) best = t;
  }
  return best?.value ?? dflt;
}

const column = (adapter: string, value: number): string => `${adapter}@${value}`;

/** Runs every grid value of the side's tunable adapters on the selection split; one Selection each. */
export async function selectSettings(events: readonly LabelledEvent[], opts: SelectOptions): Promise<Selection[]> {
  const tunable = adaptersOfSide(opts.adapters, opts.side).filter((n) => PEER_ADAPTERS[n]!.tune !== undefined);
  if (tunable.length === 0) return [];
  const stream = events.slice(0, opts.selEnd);
  const prior = priorCounts(stream, opts.side);
  const labels = Uint8Array.from(stream, (e) => e.label);
  const variants: PeerVariant[] = tunable.flatMap((name) => {
    const t = PEER_ADAPTERS[name]!.tune!;
    return t.grid.map((v) => ({ column: column(name, v), adapter: name, options: t.options(v) }));
  });
  const { runs } = await runThawSide(stream, prior, {
    side: opts.side,
    adapters: variants,
    trainN: opts.selN,
    ...(opts.batchSize === undefined ? {} : { batchSize: opts.batchSize }),
    ...(opts.releaseDir === undefined ? {} : { releaseDir: join(opts.releaseDir, 'select') }),
    ...(opts.metaTrain === undefined ? {} : { metaTrain: opts.metaTrain }),
    ...(opts.logger === undefined ? {} : { logger: opts.logger }),
  });
  const scoresOf = new Map(runs.map((r) => [r.adapter, r.scores]));
  const minEarly = opts.minEarly ?? 200;
  return tunable.map((name): Selection => {
    const t = PEER_ADAPTERS[name]!.tune!;
    let rows: string = t.rows;
    const trials = t.grid.map((value): SelectionTrial => {
      const scores = scoresOf.get(column(name, value))!;
      const m = bucketMetrics(scores, labels, prior, opts.selN);
      const byBucket = Object.fromEntries(BUCKET_KEYS.map((b) => [b, m[b].auc]));
      if (t.rows === 'early' && m[EARLY].n >= minEarly) return { value, auc: m[EARLY].auc, n: m[EARLY].n, byBucket };
      if (t.rows === 'early') rows = 'all (few early)';
      const s = Array.from(scores.subarray(opts.selN));
      return { value, auc: auc(s, Array.from(labels.subarray(opts.selN))), n: s.length, byBucket };
    });
    const chosen = chooseValue(trials, t.default);
    opts.logger?.info('selection done', { side: opts.side, adapter: name, option: t.option, rows, trials, chosen });
    return { adapter: name, side: opts.side, option: t.option, grid: [...t.grid], default: t.default, rows, trials, chosen, options: t.options(chosen) };
  });
}
