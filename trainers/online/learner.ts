/**
 * What the online trainer runs per release kind: a learner that trains the shared parameters on
 * every event and meta-learns the adaptive part's initialisation (and learning rates) from the
 * entities warming up now, and that turns its current parameters into release files at any time.
 * Learners are synchronous and transport-free, so the Kafka trainer and the drift benchmark share them.
 */
import type { LabelledEvent, Side } from '../../schemas/types.js';
import type { Bundle } from '../../models/onnx/bundle.js';

/** Release kinds the online trainer supports. */
export const ONLINE_KINDS = ['fm', 'fixed-adaptive', 'emerg'] as const;
export type OnlineKind = (typeof ONLINE_KINDS)[number];

/** Counters of a learner since it was built. */
export interface LearnerStats {
  /** Events trained on (shared parameters). */
  events: number;
  /** Completed warm-up windows used as meta-learning tasks. */
  metaTasks: number;
  /** Meta (outer) optimiser steps. */
  metaSteps: number;
  /** Open warm-up windows now. */
  openWindows: number;
  /** Entities whose adaptive parameters the learner tracks now (bounded). */
  trackedEntities: number;
  /** Mean log loss of the last 10k events' pre-update predictions. */
  recentLogloss: number;
}

export interface OnlineLearner {
  readonly kind: OnlineKind;
  readonly side: Side;
  /** Trains on `events`, in stream order (predict with the current parameters, then update). */
  observe(events: readonly LabelledEvent[]): void;
  /** Runs any partial meta batch now (before a release, so its tasks are in it). */
  flush(): void;
  /** Release files of the current parameters; `releaseId` is recorded inside where the format has one. */
  bundle(releaseId: string): Bundle;
  stats(): LearnerStats;
  /** Optimiser state to checkpoint beside a release (may be empty). */
  optimizerState(): Map<string, Float32Array>;
  /** Restores what `optimizerState` returned; mismatching arrays are ignored (fresh state). */
  restoreOptimizerState(state: Map<string, Float32Array>): void;
  /**
   * Everything its training depends on (parameters, optimiser accumulators, entity replicas, RNG,
   * counters), bit-exact: restored into a learner built from any release of the same architecture,
   * it trains on as the learner that saved it would. Absent where a kind has no exact resume.
   */
  trainingState?(): Map<string, Float32Array>;
  /** Restores what `trainingState` returned; STATE_CORRUPT when an array is missing or of another length. */
  restoreTrainingState?(state: Map<string, Float32Array>): void;
}

/** Running mean of the log loss over a window of recent events (for logs). */
export class RecentLoss {
  private sum = 0;
  private n = 0;
  private last = NaN;
  constructor(private readonly every = 10_000) {}
  add(p: number, y: number): void {
    const q = Math.min(Math.max(p, 1e-7), 1 - 1e-7);
    this.sum -= y === 1 ? Math.log(q) : Math.log(1 - q);
    if (++this.n >= this.every) {
      this.last = this.sum / this.n;
      this.sum = 0;
      this.n = 0;
    }
  }
  /** Adds `n` events whose mean log loss is `mean` (a batch's loss from one forward pass). */
  addMean(mean: number, n: number): void {
    if (!Number.isFinite(mean) || n <= 0) return;
    this.sum += mean * n;
    this.n += n;
    if (this.n >= this.every) {
      this.last = this.sum / this.n;
      this.sum = 0;
      this.n = 0;
    }
  }
  value(): number {
    return Number.isNaN(this.last) && this.n > 0 ? this.sum / this.n : this.last;
  }
  /** [sum, n, last]: the whole state, for checkpoints. */
  state(): [number, number, number] {
    return [this.sum, this.n, this.last];
  }
  restore([sum, n, last]: readonly number[]): void {
    this.sum = sum ?? 0;
    this.n = n ?? 0;
    this.last = last ?? NaN;
  }
}
