/**
 * The sampled-softmax loss of a dual encoder over one micro-batch: user b's positive is item b; its
 * negatives are the other items of the batch (in-batch negatives) and, for RocketQA's cross-batch
 * negatives, `extra` item vectors kept from earlier micro-batches (retrieval/negatives.ts). A negative
 * that is the same item as the user's positive is masked out (it is not a negative).
 *
 *   loss = (1/B) Σ_b [ −s_bb + log Σ_{c ∈ N(b) ∪ {b}} exp(s_bc) ],   s_bc = u_b · v_c / τ
 *
 * Gradients flow into the users and the in-batch items; `extra` vectors are constants (they were
 * computed by earlier parameters, as in a MoCo-style queue).
 *
 * RocketQA's hard negatives (retrieval/hard-negatives.ts) are per user: `hard` rows
 * hardStart[b]..hardStart[b+1] are negatives of user b alone (mined for that user; an item equal to
 * the user's positive is masked out too). Unlike `extra`, they get gradients (`dHard`): they were
 * computed by the current towers in this step.
 *
 * With `logQ` (the sampling-bias correction of Yi et al., RecSys'19), every logit s_bc is reduced by
 * log q_c, q_c the item's share of the training positives: popular items are in-batch negatives more
 * often, and without it the softmax learns to push them down.
 */

/** One micro-batch as the loss sees it. All matrices are row-major with width `dim`. */
export interface ContrastiveBatch {
  /** B user vectors. */
  users: Float32Array;
  /** B item vectors: row b is user b's positive. */
  items: Float32Array;
  /** Catalogue index of each row of `items` (for masking duplicates). */
  itemIds: Int32Array;
  /** M extra negative item vectors (no gradient); empty for in-batch only. */
  extra: Float32Array;
  /** Catalogue index of each row of `extra`. */
  extraIds: Int32Array;
  dim: number;
  /** Softmax temperature τ (> 0). */
  temperature: number;
  /** log q of each catalogue index (the logQ correction); absent: no correction. */
  logQ?: Float32Array;
  /** H hard-negative item vectors (rows of width dim; gradient flows into them); absent: none. */
  hard?: Float32Array;
  /** Catalogue index of each row of `hard`. */
  hardIds?: Int32Array;
  /** B + 1 offsets: user b's hard negatives are rows hardStart[b]..hardStart[b+1] of `hard`. */
  hardStart?: Int32Array;
}

export interface ContrastiveResult {
  loss: number;
  /** ∂loss/∂users (B × dim). */
  dUsers: Float32Array;
  /** ∂loss/∂items (B × dim). */
  dItems: Float32Array;
  /** ∂loss/∂hard (H × dim; empty without hard negatives). */
  dHard: Float32Array;
}

function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, dim: number): number {
  let s = 0;
  for (let j = 0; j < dim; j++) s += (a[ao + j] ?? 0) * (b[bo + j] ?? 0);
  return s;
}

/** Axpy into `out` at `oo`: out += alpha · x[xo..]. */
function axpy(out: Float32Array, oo: number, alpha: number, x: Float32Array, xo: number, dim: number): void {
  for (let j = 0; j < dim; j++) out[oo + j] = (out[oo + j] ?? 0) + alpha * (x[xo + j] ?? 0);
}

/** Loss and gradients of a micro-batch (see the file comment). */
export function contrastiveLoss(batch: ContrastiveBatch): ContrastiveResult {
  const { users, items, itemIds, extra, extraIds, dim, temperature, logQ } = batch;
  const hard = batch.hard ?? new Float32Array(0);
  const hardIds = batch.hardIds ?? new Int32Array(0);
  const hardStart = batch.hardStart;
  const b = itemIds.length;
  const m = extraIds.length;
  if (hardIds.length > 0 && (hardStart?.length !== b + 1 || (hardStart[b] ?? 0) > hardIds.length))
    throw new RangeError(`hardStart must have B + 1 = ${b + 1} offsets within ${hardIds.length} hard negatives`);
  let maxHard = 0;
  for (let r = 0; r < b; r++) maxHard = Math.max(maxHard, (hardStart?.[r + 1] ?? 0) - (hardStart?.[r] ?? 0));
  const dUsers = new Float32Array(b * dim);
  const dItems = new Float32Array(b * dim);
  const dHard = new Float32Array(hardIds.length * dim);
  const logits = new Float64Array(b + m + maxHard);
  const live = new Uint8Array(b + m + maxHard);
  let loss = 0;
  for (let r = 0; r < b; r++) {
    const pos = itemIds[r] ?? -1;
    const h0 = hardStart?.[r] ?? 0;
    const nh = (hardStart?.[r + 1] ?? 0) - h0;
    const cols = b + m + nh;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) {
      const kind = c < b ? 0 : c < b + m ? 1 : 2;
      const id = kind === 0 ? (itemIds[c] ?? -1) : kind === 1 ? (extraIds[c - b] ?? -1) : (hardIds[h0 + c - b - m] ?? -1);
      live[c] = c === r || id !== pos ? 1 : 0;
      if (live[c] === 0) continue;
      const u = kind === 0 ? dot(users, r * dim, items, c * dim, dim) : kind === 1 ? dot(users, r * dim, extra, (c - b) * dim, dim) : dot(users, r * dim, hard, (h0 + c - b - m) * dim, dim);
      const s = u / temperature - (logQ ? (logQ[id] ?? 0) : 0);
      logits[c] = s;
      if (s > max) max = s;
    }
    let z = 0;
    for (let c = 0; c < cols; c++) if (live[c] === 1) z += Math.exp((logits[c] ?? 0) - max);
    const lse = max + Math.log(z);
    loss += lse - (logits[r] ?? 0);
    for (let c = 0; c < cols; c++) {
      if (live[c] === 0) continue;
      const p = Math.exp((logits[c] ?? 0) - lse);
      const g = (p - (c === r ? 1 : 0)) / b / temperature;
      if (c < b) {
        axpy(dUsers, r * dim, g, items, c * dim, dim);
        axpy(dItems, c * dim, g, users, r * dim, dim);
      } else if (c < b + m) {
        axpy(dUsers, r * dim, g, extra, (c - b) * dim, dim);
      } else {
        const h = h0 + c - b - m;
        axpy(dUsers, r * dim, g, hard, h * dim, dim);
        axpy(dHard, h * dim, g, users, r * dim, dim);
      }
    }
  }
  return { loss: loss / Math.max(1, b), dUsers, dItems, dHard };
}
