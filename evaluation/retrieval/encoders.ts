/**
 * The dual-encoder rows of the retrieval protocol, each the previous one plus one of RocketQA's
 * techniques, and the hyper-parameter each adds (chosen on the validation window, select.ts):
 *
 * | row | adds | its hyper-parameter |
 * |---|---|---|
 * | dual-encoder (in-batch) | in-batch negatives | softmax temperature |
 * | +cross-batch | cross-batch negatives | queued micro-batches |
 * | +denoised | hard negatives mined with the current towers, minus those the ranker scores >= threshold | denoising threshold |
 * | +augmented | ranker pseudo-labels on unlabelled pairs (> 0.9 positive, < 0.1 negative) | unlabelled pairs per user |
 */
import { DualEncoderTrainer, type DualEncoderTrainOptions, type MiningStats } from '../../retrieval/train.js';
import type { CatalogItem, Ranker, Retriever } from '../../retrieval/types.js';
import type { RetrievalSplit } from './split.js';

export const ENCODER_STAGES = ['dual-encoder', 'cross-batch', 'denoised', 'augmented'] as const;
export type EncoderStage = (typeof ENCODER_STAGES)[number];

/** Row names of the stages. */
export const STAGE_ROW: Record<EncoderStage, string> = { 'dual-encoder': 'dual-encoder (in-batch)', 'cross-batch': '+cross-batch', denoised: '+denoised', augmented: '+augmented' };

/** The hyper-parameters the stages add, in stage order. */
export interface EncoderChoice {
  temperature: number;
  crossBatches: number;
  threshold: number;
  pseudoTopK: number;
}

/** The hyper-parameter each stage adds. */
export const STAGE_PARAM: Record<EncoderStage, keyof EncoderChoice> = { 'dual-encoder': 'temperature', 'cross-batch': 'crossBatches', denoised: 'threshold', augmented: 'pseudoTopK' };

/** Values used when there is no validation window (a one-value grid uses its value). */
export const DEFAULT_CHOICE: EncoderChoice = { temperature: 0.1, crossBatches: 8, threshold: 0.1, pseudoTopK: 10 };

/** Fixed options of the hard negatives (not on any grid). */
export const HARD_NEGATIVES = { mineTopK: 50, hardPerExample: 1, mineFromEpoch: 1 } as const;

/** The trainer options of `stage` with `choice` (later stages' parameters ignored). */
export function stageOptions(stage: EncoderStage, choice: EncoderChoice, base: DualEncoderTrainOptions, ranker: Ranker | undefined): DualEncoderTrainOptions {
  const level = ENCODER_STAGES.indexOf(stage);
  const opts: DualEncoderTrainOptions = { ...base, temperature: choice.temperature, crossBatches: level >= 1 ? choice.crossBatches : 0 };
  if (level >= 2) {
    if (!ranker) throw new RangeError(`${stage} needs a ranker`);
    opts.rocketqa = { ranker, threshold: choice.threshold, pseudoTopK: level >= 3 ? choice.pseudoTopK : 0, ...HARD_NEGATIVES };
  }
  return opts;
}

/** Trains one stage's encoder on `split`'s training window; returns its retriever and its last mining round. */
export function trainStage(
  stage: EncoderStage,
  split: RetrievalSplit,
  catalog: CatalogItem[],
  opts: DualEncoderTrainOptions,
  onEpoch?: (epoch: number, loss: number, mining: MiningStats | undefined) => void,
): { retriever: Retriever; mining: MiningStats | undefined } {
  const trainer = new DualEncoderTrainer(catalog, opts);
  const users = opts.rocketqa ? trainer.users(split.train, split.userFeatures) : [];
  trainer.train(trainer.examples(split.train, split.userFeatures), (epoch, loss) => onEpoch?.(epoch, loss, trainer.miningStats), users);
  return { retriever: trainer.retriever(STAGE_ROW[stage]), mining: trainer.miningStats };
}
