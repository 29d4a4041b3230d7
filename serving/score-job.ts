/**
 * One admitted request on its way through the stages of the scoring pipeline (serving/pipeline.ts):
 * shared by the fetch stage (serving/fetch-stage.ts) and the model stage.
 */
import type { ServedRelease } from './release.js';
import type { ScoreRequest } from './request.js';
import type { ScoredCandidates } from './response-body.js';
import type { StateCache } from './state-cache.js';

/** The ranked scores of a request (ScoringPipeline.rank) and where its time went. */
export interface RankedJobResult extends ScoredCandidates {
  /** From admission to its states read: the fetch queue and the read (ms). */
  stateMs: number;
  /** From its states read to its scores: the model queue and the scoring (ms). */
  rankMs: number;
}

/** What a job answers: the /v1/score JSON body, or the scores for a caller that ranks them. */
export type JobOutput = 'body' | 'scores';

export interface ScoreJob {
  readonly req: ScoreRequest;
  readonly output: JobOutput;
  /** performance.now() at arrival, and the deadline on the same clock (ms). */
  readonly arrivedAt: number;
  readonly deadlineAt: number;
  /** performance.now() when it was admitted. */
  readonly admittedAt: number;
  /** performance.now() when it entered its current stage's queue. */
  enqueuedAt: number;
  /** performance.now() when its states were read (it entered the model queue). */
  fetchedAt: number;
  /** Bound at the fetch tick: the release it is fetched and scored under, and that release's cache. */
  release: ServedRelease | undefined;
  cache: StateCache | undefined;
  /** Cache slot (or SLOT_COLD / SLOT_SHARED) of the user (index 0) and each candidate (1..n). */
  readonly slots: Int32Array;
  /** Entities still waiting for the store. */
  missing: number;
  resolve: (result: string | RankedJobResult) => void;
  reject: (err: unknown) => void;
}
