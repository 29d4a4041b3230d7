/**
 * Offline training of a STREAM release: the shared parameters of a model that workers will run on
 * streamed events, trained on an offline history of those events (time-ordered LabelledEvents),
 * with the features the events carry (models/event-layout.ts), not a protocol's vocabulary.
 *
 * 1. The layout is inferred from the history (or given); its side follows from the kind: item for
 *    deepfm / metaemb / emerg, user for coldnas / fixed-adaptive.
 * 2. HOT entities of that side (at least `minEvents` events in the history) give the training rows,
 *    as the papers train the base on hot items (CVAR/EmerG: > 200 rows over the whole of
 *    ML-100K/1M). A history is a prefix of a stream, so that absolute count would leave few hot
 *    entities (16 items over the first half of ML-100K); the default, 40 = 2·K, is the fewest rows
 *    one meta-learning task uses (K = 20 support + K query rows, the papers' warm batch size), and
 *    keeps the papers' idea: the base learns from entities with many rows, cold ones come later.
 *    A history that leaves too few hot entities or rows (ColdNAS: validation users for its search)
 *    stops here with HISTORY_TOO_THIN (trainers/history.ts), before anything is fitted.
 * 3. Anything chosen from data is chosen on held-out entities of the history: ColdNAS's structure
 *    search trains its architecture logits on validation users disjoint from the users whose rows
 *    train the weights (trainers/coldnas-trainer.ts). The events a stream will be scored on (those
 *    after the history) are never seen here.
 * 4. The existing trainer runs (meta-trainer.ts, coldnas-trainer.ts, fixed-adaptive-trainer.ts), and
 *    the model is bundled with the layout recorded as `architecture.eventLayout`.
 * 5. The bias filter's prior per side (the variance and drift of the entity biases the streaming
 *    adapters add to the model's logit, adapters/entity-bias.ts) is chosen on the whole history as
 *    the shared FM's trainer chooses it (trainers/bias-fit.ts, with the FM trainer's defaults) and
 *    recorded as `architecture.biasFilter`.
 */
import { ConfigError, ThawError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { DeepFm } from '../models/deepfm.js';
import type { Emerg } from '../models/emerg.js';
import type { ColdNas } from '../models/coldnas.js';
import type { FixedAdaptive } from '../models/fixed-adaptive.js';
import { EventEncoder, inferEventLayout, validateEventLayout, type EventLayout } from '../models/event-layout.js';
import { bundleCtr, bundleUser, type Bundle } from '../models/onnx/bundle.js';
import type { LabelledEvent, Side } from '../schemas/types.js';
import { DEFAULT_QUERY_ROWS, searchValidationCount, trainColdNas } from './coldnas-trainer.js';
import { trainFixedAdaptive } from './fixed-adaptive-trainer.js';
import { checkHistory, DEFAULT_MIN_EVENTS, type HistoryCounts } from './history.js';
import { lossTap, type EpochLoss } from './loss-tap.js';
import { trainMeta } from './meta-trainer.js';
import { fitBiasFilter, FM_BIAS_FIT_MODEL, type BiasFit, type BiasFitOptions } from './bias-fit.js';
import { checkBiasFilter, type BiasFilterPrior } from '../models/meta-state.js';
import { at, defined } from '../lib/at.js';

export const STREAM_KINDS = ['deepfm', 'metaemb', 'emerg', 'coldnas', 'fixed-adaptive'] as const;
export type StreamKind = (typeof STREAM_KINDS)[number];

/** Side whose entity is field 0 for a kind. */
export function sideOfKind(kind: StreamKind): Side {
  return kind === 'coldnas' || kind === 'fixed-adaptive' ? 'user' : 'item';
}

/**
 * Per-kind defaults of the epoch counts, sized so that the first half of ML-100K trains in minutes on
 * one core; `minEvents` is trainers/history.ts DEFAULT_MIN_EVENTS.meta.
 */
export const STREAM_DEFAULTS = {
  minEvents: DEFAULT_MIN_EVENTS.meta,
  seed: 7788,
  epochs: { deepfm: 3, metaemb: 3, emerg: 3, coldnas: 20, 'fixed-adaptive': 3 },
  metaEpochs: { deepfm: 0, metaemb: 5, emerg: 5, coldnas: 0, 'fixed-adaptive': 5 },
  searchEpochs: 10,
} as const;

export interface EventTrainerOptions {
  kind: StreamKind;
  /** The offline history, in time order (non-decreasing `timeMs`). */
  events: readonly LabelledEvent[];
  /** The event layout; its side must be the kind's. @default inferred from `events` */
  layout?: EventLayout;
  /** Table rows when the layout is inferred. @default 65_536 */
  vocab?: number;
  /** Largest bag size when the layout is inferred. @default 8 */
  maxSlots?: number;
  /** Events an entity needs in the history to be hot (a training entity). @default 40 */
  minEvents?: number;
  /** Seed of initialisers, sampling and the validation split. @default 7788 */
  seed?: number;
  /**
   * Supervised epochs over the hot rows (deepfm, metaemb, emerg; fixed-adaptive's base phase);
   * for coldnas the epochs of its retrain stage.
   * @default deepfm/metaemb/emerg/fixed-adaptive 3, coldnas 20
   */
  epochs?: number;
  /** Episodic epochs (metaemb, emerg; fixed-adaptive's Meta-SGD phase). @default metaemb/emerg 5, fixed-adaptive 5 */
  metaEpochs?: number;
  /** ColdNAS structure-search epochs. @default 10 */
  searchEpochs?: number;
  /** ColdNAS: fraction of hot users held out as validation users of the search. @default 0.25 */
  validationFraction?: number;
  /** Embedding size D. @default 16 */
  dim?: number;
  /** Adam learning rate of the (base) supervised phase. @default the trainer's (0.005; coldnas 0.001) */
  lr?: number;
  /** Inner SGD rate on entity params during meta-training (metaemb, emerg); use the same when adapting. @default 0.1 */
  innerLr?: number;
  /** Inner SGD steps per task (metaemb, emerg). @default 1 */
  innerSteps?: number;
  /**
   * The bias filter's prior per side, recorded as `architecture.biasFilter`: `fit` chooses each
   * side's variance and drift on the history (trainers/bias-fit.ts), or give them. @default 'fit'
   */
  biasFilter?: 'fit' | BiasFilterPrior;
  /** Options of the fit (grids, events used). @default bias-fit.ts's */
  biasFit?: BiasFitOptions;
  logger?: Logger;
}

export interface EventTrainStats {
  /** Events in the history. */
  historyEvents: number;
  /** Hot entities (training entities), and their rows. */
  entities: number;
  rows: number;
  /** Validation entities held out for choices made from data (ColdNAS search); empty otherwise. */
  validationEntities: number;
  /** Training rows per second (all phases). */
  examplesPerSec: number;
  /** Wall time of the training, seconds. */
  trainSec: number;
  /** Mean loss of the last epoch. */
  finalLoss: number;
  /** Every epoch's mean loss, by stage. */
  losses: EpochLoss[];
}

export interface EventTrainResult {
  kind: StreamKind;
  model: DeepFm | Emerg | ColdNas | FixedAdaptive;
  layout: EventLayout;
  /** Release files; `architecture.eventLayout` is `layout`. */
  bundle: Bundle;
  /** IDs of the hot (training) entities; hot index i = entityIds[i]. */
  entityIds: string[];
  /** IDs of the validation entities (ColdNAS search); disjoint from the entities that trained the searched weights. */
  validationIds: string[];
  /** IDs of the entities whose rows trained the search's weights (ColdNAS); empty for other kinds. */
  searchTrainIds: string[];
  stats: EventTrainStats;
  /** Hyper-parameters a worker must reuse to adapt as trained (recorded in the manifest's metrics). */
  hyper: Record<string, number>;
  /** The bias filter's prior recorded in the release. */
  biasFilter: BiasFilterPrior;
  /** How it was chosen (undefined: given). */
  biasFit: BiasFit | undefined;
}

function int(key: string, v: number | undefined, d: number, min: number): number {
  const x = v ?? d;
  if (!Number.isInteger(x) || x < min) throw new ConfigError(key, `must be an integer >= ${min}, got ${String(x)}`);
  return x;
}

function posNum(key: string, v: number | undefined, d: number): number {
  const x = v ?? d;
  if (!Number.isFinite(x) || x <= 0) throw new ConfigError(key, `must be a positive number, got ${String(x)}`);
  return x;
}

/** Trains the kind's model on the hot entities of a history and bundles it for a stream release. */
export async function trainFromEvents(opts: EventTrainerOptions): Promise<EventTrainResult> {
  const kind = opts.kind;
  if (!(STREAM_KINDS as readonly string[]).includes(kind)) throw new ConfigError('kind', `must be one of ${STREAM_KINDS.join(', ')}, got "${String(kind)}"`);
  const side = sideOfKind(kind);
  const seed = int('seed', opts.seed, STREAM_DEFAULTS.seed, 0);
  const minEvents = int('minEvents', opts.minEvents, STREAM_DEFAULTS.minEvents, 2);
  const epochs = int('epochs', opts.epochs, STREAM_DEFAULTS.epochs[kind], 0);
  const metaEpochs = int('metaEpochs', opts.metaEpochs, STREAM_DEFAULTS.metaEpochs[kind], 0);
  const searchEpochs = int('searchEpochs', opts.searchEpochs, STREAM_DEFAULTS.searchEpochs, 0);
  const dim = int('dim', opts.dim, 16, 1);
  const valFrac = opts.validationFraction ?? 0.25;
  if (!(valFrac > 0 && valFrac < 1)) throw new ConfigError('validationFraction', `must be in (0, 1), got ${String(valFrac)}`);
  const innerLr = posNum('innerLr', opts.innerLr, 0.1);
  const innerSteps = int('innerSteps', opts.innerSteps, 1, 1);
  if (opts.lr !== undefined) posNum('lr', opts.lr, 0);
  if (opts.vocab !== undefined) int('vocab', opts.vocab, 0, 2);
  if (opts.biasFilter !== undefined && opts.biasFilter !== 'fit') {
    try {
      checkBiasFilter(opts.biasFilter);
    } catch (err) {
      throw new ConfigError('biasFilter', (err as Error).message);
    }
  }
  if (opts.maxSlots !== undefined) int('maxSlots', opts.maxSlots, 0, 1);
  const events = opts.events;
  if (events.length === 0) throw new ConfigError('events', 'the history is empty');
  for (let i = 1; i < events.length; i++) {
    if (at(events, i, 'events').timeMs < at(events, i - 1, 'events').timeMs)
      throw new ConfigError('events', `must be in time order; event ${i} (${at(events, i, 'events').eventId}) is earlier than event ${i - 1}`);
  }
  let layout: EventLayout;
  if (opts.layout !== undefined) {
    validateEventLayout(opts.layout);
    if (opts.layout.side !== side) throw new ConfigError('layout', `side is ${opts.layout.side} but ${kind} models the ${side} side`);
    layout = opts.layout;
  } else {
    layout = inferEventLayout(side, events, { ...(opts.vocab === undefined ? {} : { vocab: opts.vocab }), ...(opts.maxSlots === undefined ? {} : { maxSlots: opts.maxSlots }) });
  }
  const base = (opts.logger ?? silentLogger).child({ trainer: 'events', kind });
  // EmerG and Meta-Embedding generate a new item's parameters from its features: without any, there
  // is nothing to generate from (and the generators' input would be empty).
  if ((kind === 'emerg' || kind === 'metaemb') && layout.itemFields.length === 0) {
    throw new ThawError(
      'USAGE',
      `${kind} generates a new item's parameters from its features, but the history's events carry no item features (fields: ${layout.fields.map((f) => f.name).join(', ')}): give items features (docs/event-format.md) or use another model`,
    );
  }

  // Hot entities, indexed in order of first appearance (deterministic for a history).
  const idOf = side === 'item' ? (e: LabelledEvent) => e.itemId : (e: LabelledEvent) => e.userId;
  const counts = new Map<string, number>();
  for (const e of events) counts.set(idOf(e), (counts.get(idOf(e)) ?? 0) + 1);
  const index = new Map<string, number>();
  const entityIds: string[] = [];
  for (const e of events) {
    const id = idOf(e);
    if (!index.has(id) && defined(counts.get(id), 'counts.get(id)') >= minEvents) {
      index.set(id, entityIds.length);
      entityIds.push(id);
    }
  }
  const hotEvents: LabelledEvent[] = [];
  const ent: number[] = [];
  for (const e of events) {
    const i = index.get(idOf(e));
    if (i !== undefined) {
      hotEvents.push(e);
      ent.push(i);
    }
  }
  // Too few hot entities (or, for ColdNAS's search, validation users) refuse here, before any fitting.
  const found: HistoryCounts = { side, minEvents, historyEvents: events.length, entities: entityIds.length, rows: hotEvents.length };
  if (kind === 'coldnas' && searchEpochs > 0) {
    const rowsOf = new Map<number, number>();
    for (const i of ent) rowsOf.set(i, (rowsOf.get(i) ?? 0) + 1);
    const eligible = [...rowsOf.values()].filter((n) => n > DEFAULT_QUERY_ROWS).length;
    found.search = { eligible, validation: searchValidationCount(eligible, valFrac), queryRows: DEFAULT_QUERY_ROWS };
  }
  checkHistory(found);
  const encoder = new EventEncoder(layout);
  const hot = encoder.encode(hotEvents, Int32Array.from(ent));
  const fieldLayout = encoder.fieldLayout;
  base.info('hot entities selected', {
    side,
    entities: entityIds.length,
    rows: hot.n,
    historyEvents: events.length,
    minEvents,
    fields: layout.fields.length,
    slots: encoder.slots,
    vocab: layout.vocab,
  });

  const tapBase = kind === 'coldnas' ? 0 : epochs;
  const { logger, losses } = lossTap(base, tapBase);
  const started = performance.now();
  let model: DeepFm | Emerg | ColdNas | FixedAdaptive;
  let examplesPerSec: number;
  let validationIds: string[] = [];
  let searchTrainIds: string[] = [];
  const hyper: Record<string, number> = { seed, dim, minEvents };
  if (kind === 'coldnas') {
    const res = await trainColdNas(
      { layout: fieldLayout, vocabSize: layout.vocab, hot, hotUserCount: entityIds.length },
      { seed, searchEpochs, epochs, validationFraction: valFrac, dim, logger, ...(opts.lr === undefined ? {} : { lr: opts.lr }) },
    );
    model = res.model;
    examplesPerSec = res.examplesPerSec;
    validationIds = res.validationUsers.map((u) => at(entityIds, u, 'entityIds'));
    if (searchEpochs > 0 || validationIds.length > 0) {
      // The search's weights trained on the eligible users (more rows than the query size) not held out.
      const val = new Set(res.validationUsers);
      const rows = new Int32Array(entityIds.length);
      for (const e of hot.entity) rows[e] = (rows[e] ?? 0) + 1;
      searchTrainIds = entityIds.filter((_, u) => !val.has(u) && (rows[u] ?? 0) > DEFAULT_QUERY_ROWS);
    }
    Object.assign(hyper, { searchEpochs, epochs, validationFraction: valFrac });
  } else if (kind === 'fixed-adaptive') {
    const res = await trainFixedAdaptive(
      { layout: fieldLayout, vocabSize: layout.vocab, hot, hotUserCount: entityIds.length },
      { seed, baseEpochs: epochs, epochs: metaEpochs, dim, logger, ...(opts.lr === undefined ? {} : { lr: opts.lr }) },
    );
    model = res.model;
    examplesPerSec = res.examplesPerSec;
    Object.assign(hyper, { epochs, metaEpochs });
  } else {
    const res = await trainMeta(
      { layout: fieldLayout, vocabSize: layout.vocab, hot, hotItemCount: entityIds.length },
      { kind, seed, baseEpochs: epochs, metaEpochs, dim, innerLr, innerSteps, logger, ...(opts.lr === undefined ? {} : { lr: opts.lr }) },
    );
    model = res.model as DeepFm | Emerg;
    examplesPerSec = res.examplesPerSec;
    Object.assign(hyper, { epochs, metaEpochs: kind === 'deepfm' ? 0 : metaEpochs, innerLr, innerSteps });
  }
  let biasFit: BiasFit | undefined;
  let biasFilter: BiasFilterPrior;
  if (opts.biasFilter === undefined || opts.biasFilter === 'fit') {
    // The meta adapters track the lasting bias only (no session part): fit it without one.
    biasFit = fitBiasFilter(events, { ...FM_BIAS_FIT_MODEL, seed, sessionVariances: [0], ...opts.biasFit });
    biasFilter = { user: { variance: biasFit.user.variance, drift: biasFit.user.drift }, item: { variance: biasFit.item.variance, drift: biasFit.item.drift } };
    base.info('bias filter fitted', { ...biasFilter, logLoss: biasFit.logLoss, trials: biasFit.trials });
  } else {
    biasFilter = opts.biasFilter;
  }
  const trainSec = (performance.now() - started) / 1000;
  const bundle =
    kind === 'coldnas' || kind === 'fixed-adaptive'
      ? bundleUser(model as ColdNas | FixedAdaptive, { eventLayout: layout, biasFilter })
      : bundleCtr(model as DeepFm | Emerg, { eventLayout: layout, biasFilter });
  const stats: EventTrainStats = {
    historyEvents: events.length,
    entities: entityIds.length,
    rows: hot.n,
    validationEntities: validationIds.length,
    examplesPerSec,
    trainSec,
    finalLoss: losses[losses.length - 1]?.loss ?? NaN,
    losses,
  };
  base.info('training done', { entities: stats.entities, rows: stats.rows, trainSec: Math.round(trainSec * 10) / 10, examplesPerSec: Math.round(examplesPerSec), finalLoss: stats.finalLoss });
  return { kind, model, layout, bundle, entityIds, validationIds, searchTrainIds, stats, hyper, biasFilter, biasFit };
}
