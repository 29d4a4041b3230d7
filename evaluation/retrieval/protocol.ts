/**
 * `thaw eval --protocol retrieval`: the temporal split (split.ts), then each model retrieves over the
 * whole catalogue for every evaluated user (evaluate.ts). Models: the popularity and item-feature kNN
 * baselines (retrieval/baselines.ts), then the dual-encoder rows of encoders.ts, each the previous
 * one plus one RocketQA technique: in-batch negatives, +cross-batch, +denoised (hard negatives the
 * ranker does not call positives), +augmented (ranker pseudo-labels; full RocketQA).
 *
 * Hyper-parameters are chosen on a VALIDATION window, never on the test window: the training
 * window's last `validationFraction` of events (by time) is held out (split.buildValidationSplit);
 * stage by stage, each value of the stage's grid trains on the rest of the training window (with
 * the earlier stages' chosen values) and the value with the highest validation recall@50 is kept
 * (ties: the first); a validation run trains `selectionEpochs` epochs (default 4, half the final
 * rows' 8). Then each row is trained on the whole training window with its chosen values
 * and scored on the test window. The ranker (fm-ranker.ts) is trained on the same window as the
 * encoder it serves: the validation run's on the validation split's training part.
 */
import type { LabelledEvent } from '../../schemas/types.js';
import { ItemFeatureKnnRetriever, PopularityRetriever } from '../../retrieval/baselines.js';
import type { CatalogItem, Ranker } from '../../retrieval/types.js';
import type { DualEncoderTrainOptions, MiningStats } from '../../retrieval/train.js';
import { buildRetrievalSplit, buildValidationSplit, type RetrievalSplit } from './split.js';
import { evaluateRetriever, type RetrievalCounts, type RetrievalRow } from './evaluate.js';
import { trainFmRanker } from './fm-ranker.js';
import { DEFAULT_CHOICE, ENCODER_STAGES, STAGE_PARAM, STAGE_ROW, stageOptions, trainStage, type EncoderChoice, type EncoderStage } from './encoders.js';

export const RETRIEVAL_MODELS = ['popularity', 'item-feature-knn', ...ENCODER_STAGES] as const;
export type RetrievalModel = (typeof RETRIEVAL_MODELS)[number];

/** The values tried on validation for each stage's hyper-parameter (encoders.ts). */
export type SelectionGrid = Record<keyof EncoderChoice, readonly number[]>;

/** The default grid: small, to keep the default command's run time down on 2 cores. */
export const DEFAULT_GRID: SelectionGrid = { temperature: [0.05, 0.1, 0.2], crossBatches: [0, 1, 4], threshold: [0.1, 0.5, 0.9], pseudoTopK: [10, 50] };

/** Default epochs of a validation run. */
export const DEFAULT_SELECTION_EPOCHS = 4;

/** Default share of the training window's events (the last ones) that validate. */
export const DEFAULT_VALIDATION_FRACTION = 0.1;

/** Options of the protocol. */
export interface RetrievalProtocolOptions {
  /** Models to run, in this order. @default RETRIEVAL_MODELS */
  models?: readonly RetrievalModel[];
  /** Fraction of events (by time) in the training window. @default 0.8 */
  trainFraction?: number;
  /** Fraction of the training window's events (the last, by time) that validate; 0: no selection, each grid's first value. @default 0.1 */
  validationFraction?: number;
  /** Epochs of each validation run (fewer than the final rows' to keep the run time down); undefined: the encoder's. @default DEFAULT_SELECTION_EPOCHS */
  selectionEpochs?: number;
  /** Values tried on validation. @default DEFAULT_GRID */
  grid?: Partial<SelectionGrid>;
  /** The dual encoders' options (temperature and crossBatches come from the grid). */
  encoder?: DualEncoderTrainOptions;
  /** Seed of the rankers. @default 1 */
  seed?: number;
  /** Per-epoch training progress (row name, epoch, mean loss, the last mining round). */
  onEpoch?: (model: string, epoch: number, loss: number, mining: MiningStats | undefined) => void;
  /** Progress callback (model name, seconds it took). */
  onModel?: (model: string, seconds: number) => void;
  /** Each validation run (stage, value tried, validation recall@50). */
  onValidation?: (trial: ValidationTrial) => void;
}

/** One value tried on validation. */
export interface ValidationTrial {
  stage: EncoderStage;
  param: keyof EncoderChoice;
  value: number;
  recall50: number;
}

export interface RetrievalProtocolResult {
  rows: RetrievalRow[];
  counts: RetrievalCounts;
  items: number;
  coldItems: number;
  trainEvents: number;
  /** Events of the validation window (0: no selection). */
  validationEvents: number;
  /** The values chosen (or, without validation, used). */
  chosen: EncoderChoice;
  /** Every validation run, in order. */
  trials: ValidationTrial[];
}

/** The catalogue as retrievers see it: an item is `known` when it was seen in training. */
export function catalogOf(split: RetrievalSplit): CatalogItem[] {
  return split.items.map((it) => ({ id: it.id, features: it.features, known: !it.cold }));
}

/** Default `crossBatches` without validation. */
export const DEFAULT_CROSS_BATCHES = DEFAULT_CHOICE.crossBatches;

function needsRanker(stage: EncoderStage): boolean {
  return ENCODER_STAGES.indexOf(stage) >= 2;
}

/** The hyper-parameters that a stage's run actually uses, as a key. */
function effectiveKey(stage: EncoderStage, c: EncoderChoice): string {
  const level = ENCODER_STAGES.indexOf(stage);
  const cross = level >= 1 ? c.crossBatches : 0;
  return JSON.stringify([c.temperature, cross, level >= 2 ? c.threshold : null, level >= 3 ? c.pseudoTopK : null]);
}

/** Chooses each stage's value on the validation split, up to `last`; returns the choices and the trials. */
async function select(
  events: readonly LabelledEvent[],
  trainFraction: number,
  fraction: number,
  grid: SelectionGrid,
  last: EncoderStage,
  opts: RetrievalProtocolOptions,
): Promise<{ chosen: EncoderChoice; trials: ValidationTrial[]; validationEvents: number }> {
  const val = buildValidationSplit(events, trainFraction, fraction);
  const catalog = catalogOf(val);
  const ranker = needsRanker(last) ? await trainFmRanker(val.trainEvents, val.items, { seed: opts.seed ?? 1 }) : undefined;
  const chosen: EncoderChoice = { ...DEFAULT_CHOICE };
  for (const [key, values] of Object.entries(grid) as [keyof EncoderChoice, readonly number[]][]) chosen[key] = values[0] ?? DEFAULT_CHOICE[key];
  const trials: ValidationTrial[] = [];
  const scored = new Map<string, number>();
  for (const stage of ENCODER_STAGES.slice(0, ENCODER_STAGES.indexOf(last) + 1)) {
    const param = STAGE_PARAM[stage];
    const values = grid[param];
    if (values.length < 2) continue;
    let best = -1;
    for (const value of values) {
      const choice = { ...chosen, [param]: value };
      // A value that makes this stage's run the same as one already scored (cross-batch 0 is the in-batch run) is not trained again.
      const key = effectiveKey(stage, choice);
      const cached = scored.get(key);
      if (cached !== undefined) {
        const trial = { stage, param, value, recall50: cached };
        trials.push(trial);
        opts.onValidation?.(trial);
        if (cached > best) {
          best = cached;
          chosen[param] = value;
        }
        continue;
      }
      const encoder = { ...opts.encoder, epochs: opts.selectionEpochs ?? DEFAULT_SELECTION_EPOCHS };
      const { retriever } = trainStage(stage, val, catalog, stageOptions(stage, choice, encoder, ranker), (e, l, m) => opts.onEpoch?.(`validation ${STAGE_ROW[stage]} ${param}=${value}`, e, l, m));
      const recall50 = evaluateRetriever(retriever, val).row['recall@50'];
      scored.set(key, recall50);
      const trial = { stage, param, value, recall50 };
      trials.push(trial);
      opts.onValidation?.(trial);
      if (recall50 > best) {
        best = recall50;
        chosen[param] = value;
      }
    }
  }
  return { chosen, trials, validationEvents: val.trainEvents.length === 0 ? 0 : Math.floor(events.length * trainFraction) - val.train.length };
}

/** Runs the protocol on `events`. */
export async function runRetrievalProtocol(events: readonly LabelledEvent[], opts: RetrievalProtocolOptions = {}): Promise<RetrievalProtocolResult> {
  const trainFraction = opts.trainFraction ?? 0.8;
  const split = buildRetrievalSplit(events, trainFraction);
  const catalog = catalogOf(split);
  const models = opts.models ?? RETRIEVAL_MODELS;
  const grid: SelectionGrid = { ...DEFAULT_GRID, ...opts.grid };
  const stages = ENCODER_STAGES.filter((s) => models.includes(s));
  const last = stages.at(-1);
  const fraction = opts.validationFraction ?? DEFAULT_VALIDATION_FRACTION;
  let chosen: EncoderChoice = { ...DEFAULT_CHOICE };
  for (const [key, values] of Object.entries(grid) as [keyof EncoderChoice, readonly number[]][]) chosen[key] = values[0] ?? DEFAULT_CHOICE[key];
  let trials: ValidationTrial[] = [];
  let validationEvents = 0;
  if (last !== undefined && fraction > 0) ({ chosen, trials, validationEvents } = await select(events, trainFraction, fraction, grid, last, opts));
  const ranker: Ranker | undefined = stages.some(needsRanker) ? await trainFmRanker(split.trainEvents, split.items, { seed: opts.seed ?? 1 }) : undefined;
  const positives = split.train.filter((t) => t.label === 1).map((t) => t.item);
  const rows: RetrievalRow[] = [];
  let counts: RetrievalCounts = { users: split.testUsers.length, usersWithCold: 0, usersWithWarm: 0 };
  for (const model of models) {
    const t0 = performance.now();
    const retriever =
      model === 'popularity'
        ? PopularityRetriever.fromPositives(positives, catalog.length)
        : model === 'item-feature-knn'
          ? new ItemFeatureKnnRetriever(catalog, positives)
          : trainStage(model, split, catalog, stageOptions(model, chosen, opts.encoder ?? {}, ranker), (e, l, m) => opts.onEpoch?.(STAGE_ROW[model], e, l, m)).retriever;
    const res = evaluateRetriever(retriever, split);
    rows.push(res.row);
    counts = res.counts;
    opts.onModel?.(res.row.model, (performance.now() - t0) / 1000);
  }
  return { rows, counts, items: split.items.length, coldItems: split.items.filter((i) => i.cold).length, trainEvents: split.train.length, validationEvents, chosen, trials };
}
