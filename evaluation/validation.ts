/**
 * Choosing hyper-parameters without the test rows: the hot (training) items are split, by seed,
 * into training items and validation items; the validation items play the new items of the
 * warm-up protocol (their rows in file order give K rows to warm-a, warm-b, and warm-c when the
 * split has one, the rest are their test rows), the models train on the training items only, and
 * the protocol's AUC is reported on the validation items. The new items' rows are never read.
 */
import { ConfigError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { selectRows, type RowBatch } from '../models/ctr-model.js';
import { Rng } from '../models/rng.js';
import type { MetaTrainerOptions, TrainKind } from '../trainers/meta-trainer.js';
import { runWarmupProtocol, type Phase, type ProtocolSplit, type WarmupModel } from './warmup-protocol.js';
import { K } from './warmup-split.js';
import { runUserWarmupProtocol, type UserWarmupModel, type UserWarmupOptions } from './user-warmup-protocol.js';
import type { UserWarmupSplit } from './user-warmup-split.js';
import { at as atIndex, defined } from '../lib/at.js';

export interface ValidationSplit extends ProtocolSplit {
  /** Indices (into the original split's hot items) of the items held out for validation. */
  validationHot: number[];
  /** Indices of the hot items still used for training. */
  trainHot: number[];
}

export interface ValidationSplitOptions {
  /** Seed of the choice of validation items. @default 7788 */
  seed?: number;
  /** Share of the eligible hot items held out (0..1). @default 0.2 */
  fraction?: number;
  /** Rows per item per warm batch. @default 20 (K) */
  k?: number;
}

function withEntity(b: RowBatch, rows: number[], entity: number[]): RowBatch {
  return { ...selectRows(b, rows), entity: Int32Array.from(entity) };
}

/**
 * Splits `split`'s hot items into training and validation items. Only hot items with more rows
 * than the warm batches need (K per warm phase, at least one test row) can be validation items.
 */
export function buildValidationSplit(split: ProtocolSplit, opts: ValidationSplitOptions = {}): ValidationSplit {
  const fraction = opts.fraction ?? 0.2;
  if (!(fraction > 0 && fraction < 1)) throw new ConfigError('validation-fraction', `must be in (0, 1), got ${fraction}`);
  const k = opts.k ?? K;
  const phases = split.warmC === undefined ? 2 : 3;
  const hotCount = split.hotItems.length;
  const rowsOf: number[][] = Array.from({ length: hotCount }, () => []);
  for (let i = 0; i < split.hot.n; i++) atIndex(rowsOf, split.hot.entity[i] ?? 0, 'rowsOf').push(i);
  const eligible = rowsOf.map((r, h) => (r.length > phases * k ? h : -1)).filter((h) => h >= 0);
  const nVal = Math.round(hotCount * fraction);
  if (nVal < 1 || nVal > eligible.length || nVal >= hotCount) {
    throw new ConfigError('validation-fraction', `${fraction} of ${hotCount} hot items = ${nVal} validation items; ${eligible.length} have more than ${phases * k} rows`);
  }
  new Rng((opts.seed ?? 7788) + 57).shuffle(eligible);
  const validationHot = eligible.slice(0, nVal).sort((a, b) => a - b);
  const isVal = new Set(validationHot);
  const trainHot = rowsOf.map((_, h) => h).filter((h) => !isVal.has(h));

  const hotRows: number[] = [];
  const hotEnt: number[] = [];
  const newIdx = new Map(trainHot.map((h, i) => [h, i]));
  for (let i = 0; i < split.hot.n; i++) {
    const e = newIdx.get(split.hot.entity[i] ?? 0);
    if (e !== undefined) {
      hotRows.push(i);
      hotEnt.push(e);
    }
  }
  const batches = Array.from({ length: phases + 1 }, () => ({ rows: [] as number[], ent: [] as number[] }));
  validationHot.forEach((h, v) => {
    atIndex(rowsOf, h, 'rowsOf').forEach((r, j) => {
      const b = atIndex(batches, Math.min(phases, Math.floor(j / k)), 'batches');
      b.rows.push(r);
      b.ent.push(v);
    });
  });
  const [a, b, c] = batches.map((x) => withEntity(split.hot, x.rows, x.ent));
  const test = atIndex(batches, phases, 'batches');
  return {
    layout: split.layout,
    vocabSize: split.vocabSize,
    hotItems: trainHot.map((h) => atIndex(split.hotItems, h, 'split.hotItems')),
    coldItems: validationHot.map((h) => atIndex(split.hotItems, h, 'split.hotItems')),
    hot: withEntity(split.hot, hotRows, hotEnt),
    warmA: defined(a, 'a'),
    warmB: defined(b, 'b'),
    ...(phases === 3 ? { warmC: defined(c, 'c') } : {}),
    test: withEntity(split.hot, test.rows, test.ent),
    validationHot,
    trainHot,
  };
}

/** Models whose validation AUC a trainer kind reports: the DeepFM backbone reports its fine-tuning too. */
export function validatedModels(kind: TrainKind): WarmupModel[] {
  return kind === 'deepfm' ? ['deepfm', 'finetune'] : [kind];
}

export interface ValidationOptions extends ValidationSplitOptions {
  kind: TrainKind;
  /**
   * (learning rate, steps) pairs to try: the warm-up SGD on the item params and, for metaemb and
   * emerg, also the meta-training inner loop (as `thaw eval` couples them).
   */
  grid: { lr: number; steps: number }[];
  /** Other training options (kind, seed, inner rate and steps are set here). */
  train?: Omit<MetaTrainerOptions, 'kind' | 'seed' | 'innerLr' | 'innerSteps' | 'checkpointDir' | 'resume' | 'stopAfterEpochs'>;
  logger?: Logger;
}

export interface ValidationRow {
  lr: number;
  steps: number;
  model: WarmupModel | UserWarmupModel;
  phase: Phase;
  auc: number;
  f1: number;
}

/** Trains on the training items and reports the warm-up AUC/F1 on the validation items, per grid point. */
export async function runValidation(split: ProtocolSplit, opts: ValidationOptions): Promise<{ rows: ValidationRow[]; split: ValidationSplit }> {
  const seed = opts.seed ?? 7788;
  const val = buildValidationSplit(split, opts);
  const logger = opts.logger ?? silentLogger;
  logger.info('validation split', { trainItems: val.hotItems.length, trainRows: val.hot.n, validationItems: val.coldItems.length, validationTestRows: val.test.n });
  const rows: ValidationRow[] = [];
  for (const { lr, steps } of opts.grid) {
    const res = await runWarmupProtocol(val, {
      seeds: [seed],
      models: validatedModels(opts.kind),
      adaptLr: lr,
      adaptSteps: steps,
      train: { ...opts.train, innerLr: lr, innerSteps: Math.max(1, steps) },
      logger,
    });
    for (const r of res.runs) rows.push({ lr, steps, model: r.model, phase: r.phase, auc: r.auc, f1: r.f1 });
  }
  return { rows, split: val };
}

/** One line per (grid point, model): AUC per phase and the mean over the warm phases. */
export function formatValidationTable(rows: ValidationRow[]): string {
  const phases = [...new Set(rows.map((r) => r.phase))];
  const warm = phases.filter((p) => p !== 'cold');
  const lines = [['lr'.padEnd(8), 'steps'.padEnd(5), 'model'.padEnd(14), ...phases.map((p) => `${p}`.padEnd(8)), 'warm mean'].join(' ')];
  const keys = [...new Set(rows.map((r) => `${r.lr}|${r.steps}|${r.model}`))];
  for (const key of keys) {
    const sel = rows.filter((r) => `${r.lr}|${r.steps}|${r.model}` === key);
    const first = atIndex(sel, 0, 'sel');
    const at = (p: Phase): number => sel.find((r) => r.phase === p)?.auc ?? NaN;
    const warmMean = warm.reduce((s, p) => s + at(p), 0) / Math.max(1, warm.length);
    lines.push([String(first.lr).padEnd(8), String(first.steps).padEnd(5), first.model.padEnd(14), ...phases.map((p) => at(p).toFixed(4).padEnd(8)), warmMean.toFixed(4)].join(' '));
  }
  return lines.join('\n');
}

export interface UserValidationSplit extends UserWarmupSplit {
  /** Indices (into the original split's hot users) of the users held out for validation. */
  validationHot: number[];
  /** Indices of the hot users still used for training. */
  trainHot: number[];
}

/** The user-side mirror of buildValidationSplit: hot users split into training and validation users. */
export function buildUserValidationSplit(split: UserWarmupSplit, opts: ValidationSplitOptions = {}): UserValidationSplit {
  const v = buildValidationSplit({ ...split, hotItems: split.hotUsers, coldItems: split.newUsers }, opts);
  return {
    layout: v.layout,
    vocabSize: v.vocabSize,
    hotUsers: v.hotItems,
    newUsers: v.coldItems,
    hot: v.hot,
    warmA: v.warmA,
    warmB: v.warmB,
    warmC: defined(v.warmC, 'v.warmC'),
    test: v.test,
    validationHot: v.validationHot,
    trainHot: v.trainHot,
  };
}

export interface UserValidationOptions extends ValidationSplitOptions {
  /** Models to train on the training users and score on the validation users. */
  models: readonly UserWarmupModel[];
  /** Protocol options (seeds and models are set here). */
  protocol?: Omit<UserWarmupOptions, 'seeds' | 'models'>;
  logger?: Logger;
}

/**
 * Trains on the training users and reports the user protocol's AUC/F1 on the validation users
 * (one run with the given options: compare runs to choose them). `lr` and `steps` of the rows are
 * the finetune baseline's (the rate and steps other models do not use).
 */
export async function runUserValidation(split: UserWarmupSplit, opts: UserValidationOptions): Promise<{ rows: ValidationRow[]; split: UserValidationSplit }> {
  const seed = opts.seed ?? 7788;
  const val = buildUserValidationSplit(split, opts);
  const logger = opts.logger ?? silentLogger;
  logger.info('validation split', { trainUsers: val.hotUsers.length, trainRows: val.hot.n, validationUsers: val.newUsers.length, validationTestRows: val.test.n });
  const res = await runUserWarmupProtocol(val, { ...opts.protocol, seeds: [seed], models: opts.models, logger });
  const lr = opts.protocol?.finetuneLr ?? 0.3;
  const steps = opts.protocol?.finetuneSteps ?? 5;
  return { rows: res.runs.map((r) => ({ lr, steps, model: r.model, phase: r.phase, auc: r.auc, f1: r.f1 })), split: val };
}
