/**
 * The papers' warm-up protocol (CVAR/EmerG, brief section 4) over a WarmupSplit: train on hot
 * items, then for the 419 new items score the test rows at the cold phase (no item data), and
 * after adapting the item params on warm-a, then warm-b, then warm-c (each 20 rows per item).
 * All new items adapt at once: one batched `adaptStep` per step over the whole 8,380-row warm batch
 * (each item's update is exactly its own, see CtrModel.adaptStep).
 *
 * Models: deepfm (no adaptation: random new-item ID embedding throughout), finetune (same DeepFM,
 * SGD on the item-ID embedding only), metaemb (generated initial ID embedding, then the same
 * fine-tuning), emerg (generated ID embedding and item graph, both adapted by its own warm-up,
 * `emergAdapt`: by default Adam kept across the phases, as the official code's warm-up).
 */
import type { Logger } from '../lib/log.js';
import { silentLogger } from '../lib/log.js';
import type { CtrModel, EntityParams, RowBatch } from '../models/ctr-model.js';
import { initEntityParams } from '../models/entity-init.js';
import { EntityAdam } from './entity-adam.js';
import { trainMeta, type MetaTrainerOptions } from '../trainers/meta-trainer.js';
import { auc, f1AtMean, meanStd } from './metrics.js';
import type { WarmupSplit } from './warmup-split.js';
import { at, defined } from '../lib/at.js';

export const WARMUP_MODELS = ['deepfm', 'finetune', 'metaemb', 'emerg'] as const;
export type WarmupModel = (typeof WARMUP_MODELS)[number];
export const PHASES = ['cold', 'warm-a', 'warm-b', 'warm-c'] as const;
export type Phase = (typeof PHASES)[number];
export const DEFAULT_SEEDS = [7788, 1234, 9999];

/**
 * A split the protocol runs on: the MovieLens-100K WarmupSplit, or one without a third warm batch
 * (Meta-Embedding's ML-1M files, evaluation/metaemb-ml1m.ts), whose warm-c phase is then not reported.
 */
export type ProtocolSplit = Omit<WarmupSplit, 'warmC'> & { warmC?: RowBatch };

export interface WarmupRow {
  model: WarmupModel;
  phase: Phase;
  auc: number;
  aucStd: number;
  f1: number;
  f1Std: number;
}

export interface WarmupProtocolOptions {
  /** Seeds, one full run each. @default [7788, 1234, 9999] */
  seeds?: number[];
  /** Models to evaluate. @default all four */
  models?: readonly WarmupModel[];
  /** SGD steps on the item params per warm batch. @default 1 */
  adaptSteps?: number;
  /** SGD learning rate of those steps (same as the meta-training inner rate). @default 0.1 */
  adaptLr?: number;
  /**
   * EmerG's warm-up on its item params (ID embedding and graph). The official code runs 12 Adam
   * steps at 0.01 per warm batch with one optimiser kept across the phases; chosen on validation
   * items (evaluation/README.md). 'sgd' uses plain SGD steps as the other models do.
   * @default { optimizer: 'adam', lr: 0.01, steps: 12 }
   */
  emergAdapt?: EmergAdapt;
  /** Training options shared by the trainers (kind and seed are set per run). */
  train?: Omit<MetaTrainerOptions, 'kind' | 'seed'>;
  logger?: Logger;
}

export interface EmergAdapt {
  optimizer: 'sgd' | 'adam';
  /** Learning rate (the graph's is this × train.graphLrScale). */
  lr: number;
  /** Steps per warm batch. */
  steps: number;
}

export const DEFAULT_EMERG_ADAPT: EmergAdapt = { optimizer: 'adam', lr: 0.01, steps: 12 };

export interface WarmupResult {
  rows: WarmupRow[];
  /** Per seed, per model, per phase AUC and F1. */
  runs: { seed: number; model: WarmupModel; phase: Phase; auc: number; f1: number }[];
  wallSec: number;
  /** Training rows/s per trained model kind (mean over seeds). */
  examplesPerSec: Record<string, number>;
  /** Warm-up adaptation rows/s (batched adaptStep), mean over models and seeds. */
  adaptEventsPerSec: number;
}

function cloneEnt(e: EntityParams): EntityParams {
  return { count: e.count, idEmb: e.idEmb.slice(), graph: e.graph.slice() };
}

export async function runWarmupProtocol(split: ProtocolSplit, opts: WarmupProtocolOptions = {}): Promise<WarmupResult> {
  const seeds = opts.seeds ?? DEFAULT_SEEDS;
  const models = opts.models ?? WARMUP_MODELS;
  const steps = opts.adaptSteps ?? 1;
  const lr = opts.adaptLr ?? opts.train?.innerLr ?? 0.1;
  const emergAdapt = opts.emergAdapt ?? DEFAULT_EMERG_ADAPT;
  const logger = opts.logger ?? silentLogger;
  const started = Date.now();
  const runs: WarmupResult['runs'] = [];
  const rates: Record<string, number[]> = {};
  let adaptRows = 0;
  let adaptMs = 0;
  const data = { layout: split.layout, vocabSize: split.vocabSize, hot: split.hot, hotItemCount: split.hotItems.length };
  const count = split.coldItems.length;
  const phaseBatches = split.warmC === undefined ? [split.warmA, split.warmB] : [split.warmA, split.warmB, split.warmC];
  const phases = PHASES.slice(0, phaseBatches.length + 1);

  const evaluate = (model: CtrModel, name: WarmupModel, seed: number): void => {
    const adapt = name !== 'deepfm';
    const ent = cloneEnt(initEntityParams(model, split.warmA, count, { generate: name === 'metaemb' || name === 'emerg', seed: seed + 17 }));
    const record = (phase: Phase): void => {
      const p = model.predict(split.test, ent);
      const row = { seed, model: name, phase, auc: auc(p, split.test.label), f1: f1AtMean(p, split.test.label) };
      runs.push(row);
      logger.info('phase result', row);
    };
    record('cold');
    const ea = name === 'emerg' ? emergAdapt : { optimizer: 'sgd' as const, lr, steps };
    const adam = ea.optimizer === 'adam' ? new EntityAdam(model, ent, { lr: ea.lr, graph: name === 'emerg', graphLrScale: opts.train?.graphLrScale ?? 1 }) : undefined;
    phaseBatches.forEach((b, i) => {
      if (adapt) {
        const t0 = Date.now();
        for (let s = 0; s < ea.steps; s++) {
          if (adam !== undefined) adam.step(b);
          else model.adaptStep(b, ent, ea.lr, { graph: name === 'emerg', graphLrScale: opts.train?.graphLrScale ?? 1 });
        }
        adaptMs += Date.now() - t0;
        adaptRows += b.n * ea.steps;
      }
      record(at(PHASES, i + 1, 'PHASES'));
    });
  };

  for (const seed of seeds) {
    const dfmNames = models.filter((m) => m !== 'emerg');
    if (dfmNames.length > 0) {
      const kind = dfmNames.includes('metaemb') ? 'metaemb' : 'deepfm';
      const res = await trainMeta(data, { ...opts.train, kind, seed, logger });
      (rates[kind] ??= []).push(res.examplesPerSec);
      for (const m of dfmNames) evaluate(res.model, m, seed);
    }
    if (models.includes('emerg')) {
      const res = await trainMeta(data, { ...opts.train, kind: 'emerg', seed, logger });
      (rates.emerg ??= []).push(res.examplesPerSec);
      evaluate(res.model, 'emerg', seed);
    }
  }
  const rows: WarmupRow[] = [];
  for (const model of models) {
    for (const phase of phases) {
      const sel = runs.filter((r) => r.model === model && r.phase === phase);
      const a = meanStd(sel.map((r) => r.auc));
      const f = meanStd(sel.map((r) => r.f1));
      rows.push({ model, phase, auc: a.mean, aucStd: a.std, f1: f.mean, f1Std: f.std });
    }
  }
  const examplesPerSec: Record<string, number> = {};
  for (const [k, v] of Object.entries(rates)) examplesPerSec[k] = meanStd(v).mean;
  return { rows, runs, wallSec: (Date.now() - started) / 1000, examplesPerSec, adaptEventsPerSec: adaptRows / Math.max(adaptMs / 1000, 1e-9) };
}

/** Fixed-width text table: one line per model, AUC ± std and F1 per phase. */
export function formatWarmupTable(rows: WarmupRow[]): string {
  const models = [...new Set(rows.map((r) => r.model))];
  const phases = PHASES.filter((p) => rows.some((r) => r.phase === p));
  const head = ['model'.padEnd(9), ...phases.map((p) => `${p} AUC`.padEnd(16)), ...phases.map((p) => `${p} F1`.padEnd(10))].join(' ');
  const lines = [head];
  for (const m of models) {
    const cells = phases.map((p) =>
      defined(
        rows.find((r) => r.model === m && r.phase === p),
        `the row of ${m} in phase ${p}`,
      ),
    );
    lines.push([m.padEnd(9), ...cells.map((c) => `${c.auc.toFixed(4)}±${c.aucStd.toFixed(4)}`.padEnd(16)), ...cells.map((c) => c.f1.toFixed(4).padEnd(10))].join(' '));
  }
  return lines.join('\n');
}
