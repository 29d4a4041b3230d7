/**
 * The user-side mirror of the warm-up protocol (see evaluation/user-warmup-split.ts for the split):
 * train on hot users, then for the 349 new users score the test rows at the cold phase (no user
 * data) and after each of warm-a, warm-b, warm-c (20 rows per user each), all users at once.
 *
 * Models:
 * - deepfm: DeepFM (the item protocol's backbone and trainer, with the user ID as the entity
 *   field), new users keep a random user-ID embedding: no adaptation;
 * - finetune: the same trained DeepFM, SGD on the user-ID embedding only, on each warm batch;
 * - coldnas: searched on validation hot users, retrained; each warm row is folded into the user's
 *   state by the O(1) running-mean update; scoring is one forward pass, no gradient step;
 * - fixed-adaptive: meta-learned fixed trunk, adaptive params start at the learned init and take
 *   Meta-SGD steps with the learned per-parameter learning rates on each warm batch.
 */
import type { Logger } from '../lib/log.js';
import { silentLogger } from '../lib/log.js';
import type { RowBatch } from '../models/ctr-model.js';
import { userStateUpdate, type ColdNasStructure, type ColdNasUserState } from '../models/coldnas.js';
import { initEntityParams } from '../models/entity-init.js';
import { trainColdNas, type ColdNasTrainerOptions } from '../trainers/coldnas-trainer.js';
import { trainFixedAdaptive, type FixedAdaptiveTrainerOptions } from '../trainers/fixed-adaptive-trainer.js';
import { trainMeta } from '../trainers/meta-trainer.js';
import { auc, f1AtMean, meanStd } from './metrics.js';
import type { UserWarmupSplit } from './user-warmup-split.js';
import { DEFAULT_SEEDS, PHASES, type Phase } from './warmup-protocol.js';
import { at, defined } from '../lib/at.js';

export const USER_WARMUP_MODELS = ['deepfm', 'finetune', 'coldnas', 'fixed-adaptive'] as const;
export type UserWarmupModel = (typeof USER_WARMUP_MODELS)[number];

export interface UserWarmupRow {
  model: UserWarmupModel;
  phase: Phase;
  auc: number;
  aucStd: number;
  f1: number;
  f1Std: number;
}

export interface UserWarmupOptions {
  /** Seeds, one full run each. @default [7788, 1234, 9999] */
  seeds?: number[];
  /** Models to evaluate. @default all four */
  models?: readonly UserWarmupModel[];
  /** Supervised epochs of the DeepFM baseline on hot users. @default 3 */
  baseEpochs?: number;
  /** SGD steps on the user-ID embedding per warm batch (finetune). @default 5 */
  finetuneSteps?: number;
  /** Their learning rate. @default 0.3 */
  finetuneLr?: number;
  /** Meta-SGD steps per warm batch (fixed-adaptive; also its meta-training's inner steps unless fixedAdaptive.innerSteps is set). @default 1 */
  adaptSteps?: number;
  coldnas?: Omit<ColdNasTrainerOptions, 'seed' | 'logger'>;
  fixedAdaptive?: Omit<FixedAdaptiveTrainerOptions, 'seed' | 'logger'>;
  logger?: Logger;
}

export interface UserWarmupResult {
  rows: UserWarmupRow[];
  runs: { seed: number; model: UserWarmupModel; phase: Phase; auc: number; f1: number }[];
  /** ColdNAS structure chosen per seed (JSON for the release manifest). */
  structures: { seed: number; structure: ColdNasStructure; alpha: number[] }[];
  wallSec: number;
  /** Seconds spent training per model kind, summed over seeds. */
  trainSec: Record<string, number>;
  /** Warm-phase events/s per adapting model (fold for coldnas, steps for the others). */
  adaptEventsPerSec: Record<string, number>;
}

export async function runUserWarmupProtocol(split: UserWarmupSplit, opts: UserWarmupOptions = {}): Promise<UserWarmupResult> {
  const seeds = opts.seeds ?? DEFAULT_SEEDS;
  const models = opts.models ?? USER_WARMUP_MODELS;
  const logger = opts.logger ?? silentLogger;
  const started = Date.now();
  const count = split.newUsers.length;
  const warm = [split.warmA, split.warmB, split.warmC];
  const data = { layout: split.layout, vocabSize: split.vocabSize, hot: split.hot, hotUserCount: split.hotUsers.length };
  const runs: UserWarmupResult['runs'] = [];
  const structures: UserWarmupResult['structures'] = [];
  const trainSec: Record<string, number> = {};
  const adaptRows: Record<string, number> = {};
  const adaptMs: Record<string, number> = {};
  const timed = async <T>(key: string, f: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    const r = await f();
    trainSec[key] = (trainSec[key] ?? 0) + (Date.now() - t0) / 1000;
    return r;
  };
  const adaptTimed = (key: string, b: RowBatch, f: () => void): void => {
    const t0 = Date.now();
    f();
    adaptMs[key] = (adaptMs[key] ?? 0) + Date.now() - t0;
    adaptRows[key] = (adaptRows[key] ?? 0) + b.n;
  };

  /** Scores the test rows at each phase; `adapt(i)` consumes warm batch i. */
  const phases = (seed: number, model: UserWarmupModel, score: () => Float32Array, adapt: (b: RowBatch) => void): void => {
    PHASES.forEach((phase, i) => {
      if (i > 0) adaptTimed(model, at(warm, i - 1, 'warm'), () => adapt(at(warm, i - 1, 'warm')));
      const p = score();
      const row = { seed, model, phase, auc: auc(p, split.test.label), f1: f1AtMean(p, split.test.label) };
      runs.push(row);
      logger.info('phase result', row);
    });
  };

  for (const seed of seeds) {
    if (models.includes('deepfm') || models.includes('finetune')) {
      const res = await timed('deepfm', () => trainMeta({ ...data, hotItemCount: data.hotUserCount }, { kind: 'deepfm', seed, baseEpochs: opts.baseEpochs ?? 3, logger }));
      for (const name of ['deepfm', 'finetune'] as const) {
        if (!models.includes(name)) continue;
        const ent = initEntityParams(res.model, split.warmA, count, { generate: false, seed: seed + 17 });
        phases(
          seed,
          name,
          () => res.model.predict(split.test, ent),
          (b) => {
            if (name === 'deepfm') return;
            for (let s = 0; s < (opts.finetuneSteps ?? 5); s++) res.model.adaptStep(b, ent, opts.finetuneLr ?? 0.3);
          },
        );
      }
    }
    if (models.includes('coldnas')) {
      const res = await timed('coldnas', () => trainColdNas(data, { ...opts.coldnas, seed, logger }));
      structures.push({ seed, structure: res.structure, alpha: res.alpha });
      let states: ColdNasUserState[] = Array.from({ length: count }, () => res.model.emptyState());
      const c = res.model.contextDim;
      phases(
        seed,
        'coldnas',
        () => res.model.predict(split.test, states),
        (b) => {
          // The streaming path: encode the new events, then fold each into its user's running mean.
          const enc = res.model.encodeInteractions(b);
          states = [...states];
          for (let i = 0; i < b.n; i++) states[b.entity[i] ?? 0] = userStateUpdate(at(states, b.entity[i] ?? 0, 'states'), enc.subarray(i * c, i * c + c));
        },
      );
    }
    if (models.includes('fixed-adaptive')) {
      const res = await timed('fixed-adaptive', () => trainFixedAdaptive(data, { innerSteps: Math.max(1, opts.adaptSteps ?? 1), ...opts.fixedAdaptive, seed, logger }));
      const users = res.model.initUsers(count);
      phases(
        seed,
        'fixed-adaptive',
        () => res.model.predict(split.test, users),
        (b) => {
          res.model.adaptStep(b, users, count, opts.adaptSteps ?? 1);
        },
      );
    }
  }
  const rows: UserWarmupRow[] = [];
  for (const model of models) {
    for (const phase of PHASES) {
      const sel = runs.filter((r) => r.model === model && r.phase === phase);
      const a = meanStd(sel.map((r) => r.auc));
      const f = meanStd(sel.map((r) => r.f1));
      rows.push({ model, phase, auc: a.mean, aucStd: a.std, f1: f.mean, f1Std: f.std });
    }
  }
  const adaptEventsPerSec: Record<string, number> = {};
  for (const [k, ms] of Object.entries(adaptMs)) if (k !== 'deepfm') adaptEventsPerSec[k] = defined(adaptRows[k], 'adaptRows[k]') / Math.max(ms / 1000, 1e-9);
  return { rows, runs, structures, wallSec: (Date.now() - started) / 1000, trainSec, adaptEventsPerSec };
}

/** Fixed-width text table: one line per model, AUC ± std and F1 per phase. */
export function formatUserWarmupTable(rows: UserWarmupRow[]): string {
  const models = [...new Set(rows.map((r) => r.model))];
  const head = ['model'.padEnd(15), ...PHASES.map((p) => `${p} AUC`.padEnd(16)), ...PHASES.map((p) => `${p} F1`.padEnd(10))].join(' ');
  const lines = [head];
  for (const m of models) {
    const cells = PHASES.map((p) =>
      defined(
        rows.find((r) => r.model === m && r.phase === p),
        `the row of ${m} in phase ${p}`,
      ),
    );
    lines.push([m.padEnd(15), ...cells.map((c) => `${c.auc.toFixed(4)}±${c.aucStd.toFixed(4)}`.padEnd(16)), ...cells.map((c) => c.f1.toFixed(4).padEnd(10))].join(' '));
  }
  return lines.join('\n');
}
