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
}

export interface ContrastiveResult {
  loss: number;
  /** ∂loss/∂users (B × dim). */
  dUsers: Float32Array;
  /** ∂loss/∂items (B × dim). */
  dItems: Float32Array;
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
  const b = itemIds.length;
  const m = extraIds.length;
  const dUsers = new Float32Array(b * dim);
  const dItems = new Float32Array(b * dim);
  const logits = new Float64Array(b + m);
  const live = new Uint8Array(b + m);
  let loss = 0;
  for (let r = 0; r < b; r++) {
    const pos = itemIds[r] ?? -1;
    let max = -Infinity;
    for (let c = 0; c < b + m; c++) {
      const isExtra = c >= b;
      const id = isExtra ? (extraIds[c - b] ?? -1) : (itemIds[c] ?? -1);
      live[c] = c === r || id !== pos ? 1 : 0;
      if (live[c] === 0) continue;
      const s = (isExtra ? dot(users, r * dim, extra, (c - b) * dim, dim) : dot(users, r * dim, items, c * dim, dim)) / temperature - (logQ ? (logQ[id] ?? 0) : 0);
      logits[c] = s;
      if (s > max) max = s;
    }
    let z = 0;
    for (let c = 0; c < b + m; c++) if (live[c] === 1) z += Math.exp((logits[c] ?? 0) - max);
    const lse = max + Math.log(z);
    loss += lse - (logits[r] ?? 0);
    for (let c = 0; c < b + m; c++) {
      if (live[c] === 0) continue;
      const p = Math.exp((logits[c] ?? 0) - lse);
      const g = (p - (c === r ? 1 : 0)) / b / temperature;
      if (c < b) {
        axpy(dUsers, r * dim, g, items, c * dim, dim);
        axpy(dItems, c * dim, g, users, r * dim, dim);
      } else {
        axpy(dUsers, r * dim, g, extra, (c - b) * dim, dim);
      }
    }
  }
  return { loss: loss / Math.max(1, b), dUsers, dItems };
}
