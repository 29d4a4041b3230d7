/**
 * RocketQA's other two techniques, as the trainer (retrieval/train.ts) uses them:
 *
 * - Denoised hard negatives. For each training user, the current towers retrieve the top
 *   `mineTopK` items the user has no training positive on; the ranker (a stronger model: the
 *   project's CTR model, evaluation/retrieval/fm-ranker.ts) scores each, and those it scores at or
 *   above `threshold` are DROPPED as likely unlabelled positives (RocketQA keeps a hard negative
 *   only when its cross-encoder scores it < 0.1). The rest are the user's hard-negative pool.
 * - Pseudo-label augmentation. The same user's top `pseudoTopK` retrieved items that the user never
 *   interacted with in training (unlabelled pairs) are scored by the ranker: above
 *   PSEUDO_POSITIVE (0.9) they become extra positives (training examples), below
 *   PSEUDO_NEGATIVE (0.1) they join the hard-negative pool (no denoising needed: the ranker
 *   already says negative).
 */
import type { Features } from '../schemas/types.js';
import type { Ranker } from './types.js';

/** Ranker score above which an unlabelled pair is a pseudo positive (the threshold). */
export const PSEUDO_POSITIVE = 0.9;
/** Ranker score below which an unlabelled pair is a pseudo negative (the threshold). */
export const PSEUDO_NEGATIVE = 0.1;

/** What mining knows of one training user. */
export interface MiningUser {
  userId: string;
  features: Features;
  /** Catalogue indices of the user's training positives (never mined as negatives). */
  positives: ReadonlySet<number>;
  /** Catalogue indices the user interacted with in training, any label (not unlabelled). */
  seen: ReadonlySet<number>;
}

/** A pair's pseudo-label from the ranker's score: 1, 0, or undefined (between the thresholds: unused). */
export function pseudoLabel(score: number): 1 | 0 | undefined {
  if (score > PSEUDO_POSITIVE) return 1;
  if (score < PSEUDO_NEGATIVE) return 0;
  return undefined;
}

/** The `k` highest-scoring catalogue indices for which `keep` holds, best first (ties: lower index). */
export function topKWhere(scores: Float32Array, k: number, keep: (i: number) => boolean): number[] {
  const best: number[] = [];
  for (let i = 0; i < scores.length; i++) {
    if (!keep(i)) continue;
    const s = scores[i] ?? -Infinity;
    if (best.length === k && s <= (scores[best[k - 1] ?? 0] ?? -Infinity)) continue;
    let at = best.length;
    while (at > 0 && (scores[best[at - 1] ?? 0] ?? -Infinity) < s) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}

/** The denoising rule: candidates the ranker scores below `threshold` stay hard negatives. */
export function denoise(candidates: readonly number[], rankerScores: ArrayLike<number>, threshold: number): number[] {
  return candidates.filter((_, j) => (rankerScores[j] ?? 1) < threshold);
}

/** What one round of mining produced for one user. */
export interface MinedUser {
  /** Denoised hard negatives (and pseudo negatives), catalogue indices. */
  negatives: number[];
  /** Pseudo positives, catalogue indices. */
  pseudoPositives: number[];
  /** Mined candidates the ranker dropped (scored at or above the threshold). */
  dropped: number[];
}

/** Options of one round of mining. */
export interface MiningOptions {
  /** Retrieved candidates per user for hard negatives (0: none). */
  mineTopK: number;
  /** Ranker score at or above which a mined candidate is dropped. */
  threshold: number;
  /** Retrieved unlabelled items per user for pseudo-labels (0: no augmentation). */
  pseudoTopK: number;
}

/**
 * One round for one user: `scores` are the current retriever's scores of every catalogue item for
 * this user. Returns the user's hard-negative pool and pseudo positives.
 */
export function mineUser(user: MiningUser, scores: Float32Array, ranker: Ranker, opts: MiningOptions): MinedUser {
  const candidates = opts.mineTopK > 0 ? topKWhere(scores, opts.mineTopK, (i) => !user.positives.has(i)) : [];
  const rs = new Float32Array(candidates.length);
  if (candidates.length > 0) ranker.score(user.userId, user.features, candidates, rs);
  const negatives = denoise(candidates, rs, opts.threshold);
  const kept = new Set(negatives);
  const dropped = candidates.filter((i) => !kept.has(i));
  const pseudoPositives: number[] = [];
  if (opts.pseudoTopK > 0) {
    const unlabelled = topKWhere(scores, opts.pseudoTopK, (i) => !user.seen.has(i));
    const ps = new Float32Array(unlabelled.length);
    ranker.score(user.userId, user.features, unlabelled, ps);
    unlabelled.forEach((i, j) => {
      const label = pseudoLabel(ps[j] ?? 0.5);
      if (label === 1) pseudoPositives.push(i);
      else if (label === 0 && !kept.has(i)) {
        kept.add(i);
        negatives.push(i);
      }
    });
  }
  return { negatives, pseudoPositives, dropped };
}
