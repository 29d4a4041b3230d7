/**
 * The `coldnas` adapter (user side): a user is represented by the mean of the encodings of its
 * history interactions, which the frozen ColdNAS model (models/coldnas.ts) turns into the
 * parameters of its modulation ops. No gradient step ever runs online: scoring a user is one
 * forward pass, and learning from an event is an O(C) running-mean update.
 *
 * State layout (Float32Array, C + 3 floats, C = the model's contextDim; models/meta-state.ts):
 *   0          b      user bias (logit), the bias filter's mean
 *   1          s      its variance
 *   2          count  interactions folded into the mean so far
 *   [3, C+3)   mean   running mean of their interaction encodings
 *
 * - The logit is the model's plus the user's bias and the item's bias as the item side's worker
 *   last wrote it (adapters/entity-bias.ts: the cross-side read and the bias filter). The user's
 *   bias [b, s] is the state's VIEW, which the item side may read. The bias filter is the only
 *   learning step that depends on the score; it is O(1) per event.
 * - The baseline (`batch.baseline`, for the worker's safeguard) is the score with count 0, the zero
 *   mean, bias 0 and no cross-side read: what the `none` over the release scores.
 * - A user never seen starts with count 0 and the zero mean: its modulation is the modulation
 *   network's bias alone, which is what the trainer used for users without history (an entity
 *   without rows mean-pools to 0, models/coldnas-common.ts `meanPoolMatrix`).
 * - A user without profile features (or an event missing some of them) is still scored and
 *   encoded: the EventEncoder gives missing fields zero-weight padding, so their pooled embeddings
 *   are 0, both in the predictor input and in the interaction encodings folded into the mean.
 * - The mean covers the last ~`historyWindow` interactions (default 5, chosen on a selection
 *   split): exact while count ≤ window, then an exponential moving mean with rate 1/window.
 * - The count is stored as a float32: it is exact up to 2^24 (16.7 M) events per user; beyond that
 *   it stops growing (with historyWindow 0 the update then has rate 1/(2^24 + 1)).
 * - The mean depends on the shared parameters, so a new release restarts users (the release's
 *   entityStatePolicy is `reinit`, models/onnx/bundle.ts).
 *
 * Small scoring passes (≤ `fastMaxRows` rows) run a plain-JS copy of the forward
 * (adapters/fast/coldnas.ts): the fixed cost of a TensorFlow.js call dominates them (numbers there).
 *
 * Batching: one forward for a whole AdapterBatch (each row is its own user, so the per-user
 * modulation is computed per row directly, without the model's one-hot gather over users); the
 * same pass yields the rows' interaction encodings, so predict-then-adapt costs one forward.
 */
import * as tf from '@tensorflow/tfjs';
import { ThawError } from '../lib/errors.js';
import { sliceBatch, type RowBatch } from '../models/ctr-model.js';
import { applyColdNasOp, COLDNAS_OPS, type ColdNas } from '../models/coldnas.js';
import { gatherEmb } from '../models/coldnas-common.js';
import { ParamSet, type TensorMap } from '../models/params.js';
import { EventEncoder, type EventLayout } from '../models/event-layout.js';
import { sigmoid } from '../models/fm.js';
import { coldNasStateSize, META_OWN, UNRECORDED_BIAS_FILTER, type BiasFilterPrior } from '../models/meta-state.js';
import type { LabelledEvent, Side } from '../schemas/types.js';
import type { Adapter, AdapterBatch } from './types.js';
import { EntityBias, type EntityBiasOptions } from './entity-bias.js';
import { ColdNasFastPath } from './fast/coldnas.js';
import { checkBatch, checkUserLayout, DEFAULT_CHUNK_ROWS, nonNegativeInt, positiveInt } from './user-common.js';
import { at, defined } from '../lib/at.js';

/** Index of the count in a state (the mean follows it). */
const COUNT = META_OWN;
const MEAN = COUNT + 1;

/**
 * Default `fastMaxRows`: the hand path's break-even with the tf path on this project's host (wasm,
 * bench/adapters/per-call.ts --hand): it wins at 1–2 events, ties at 4, loses from 8 on (its
 * ~37k multiply-adds per row in plain JS cost more than tf's fixed cost beyond that). Re-measured
 * after the compact modulation (tf) and cached encoder products (hand), loaded host, ms per
 * predictThenAdapt: 1 event 0.18 hand / 1.32 tf, 4: 0.77 / 0.98, 8: 1.49 / 1.04: still 4. The
 * worker now mostly calls `predictThenAdaptSequence`, where it only decides chunks of ≤ 4 rows.
 */
export const COLDNAS_FAST_MAX_ROWS = 4;

/** Default `historyWindow`: the best of 0–120 on a selection split (ColdNasAdapterOptions.historyWindow). */
export const COLDNAS_HISTORY_WINDOW = 5;

/** Options of the `coldnas` adapter (the bias options: adapters/entity-bias.ts). */
export interface ColdNasAdapterOptions extends EntityBiasOptions {
  /** Rows per forward pass; larger waves are computed in chunks of this many rows (bounds memory). @default 4096 */
  chunkRows?: number;
  /**
   * Scoring passes (a wave, or in `predictThenAdaptSequence` a chunk of the micro-batch) of at
   * most this many rows run the plain-JS forward (adapters/fast/coldnas.ts, same results to 1e-5)
   * instead of TensorFlow.js, whose fixed per-call cost dominates small passes; 0 always scores
   * with TensorFlow.js. The interaction encodings of `predictThenAdaptSequence` are plain JS
   * whatever this is (cached products, cheaper than any tf call). @default 4 (COLDNAS_FAST_MAX_ROWS)
   */
  fastMaxRows?: number;
  /**
   * Interactions the user mean covers (events; 0 = all of them, an exact running mean). Once a
   * user has this many, the update becomes an exponential moving mean with rate 1/historyWindow
   * (same state, still O(C)): a mean over hundreds of interactions is outside the support sets
   * (≤ 60) ColdNAS meta-trains on, and blind to drift. Chosen on ML-100K with the peer bench's
   * selection split (bench/peer-vw/README.md, 2026-11-28: release and FM on the first 10% of the stream, AUC
   * of all user rows of 10–20%, never the reported window): window 0 0.641, 1 0.630, 2 0.667,
   * 3 0.675, 5 0.678, 10 0.673, 20 0.664, 40 0.655, 60 0.650, 120 0.643 (51+ bucket: 0.637 at 0,
   * 0.689 at 5, 0.653 at 60; rows with ≤ 5 prior events are the same for any window ≥ 5).
   * @default 5 (COLDNAS_HISTORY_WINDOW)
   */
  historyWindow?: number;
}

export class ColdNasAdapter implements Adapter {
  readonly name = 'coldnas';
  readonly side: Side = 'user';
  readonly stateSize: number;
  readonly viewSize = META_OWN;
  readonly hasBaseline = true;
  readonly release: string;
  readonly model: ColdNas;
  /** The user's bias and the cross-side read. */
  readonly bias: EntityBias;
  readonly encoder: EventEncoder;
  private readonly chunk: number;
  private readonly fastMax: number;
  private readonly fast: ColdNasFastPath;
  /** Resolved historyWindow (0 = exact running mean). */
  readonly historyWindow: number;
  /**
   * Fixed structure only: the columns of `cn.mod.w` / `cn.mod.b` of the op each position uses
   * (`mod.w` [C, modDim], `mod.b` [modDim], frozen), and that op per position (index in
   * COLDNAS_OPS). The model's modulation computes all four ops' columns (4·modDim) and slices one:
   * on the bench release (modDim 256) that [n, 64]×[64, 1024] product was most of the tf path's
   * time (profile of bench/curves/run.ts --sides user, wasm: the largest wasm function); a
   * quarter of it gives the same values. Undefined for a supernet (all ops are mixed).
   */
  private readonly compact: ParamSet | undefined;
  private readonly ops: number[];

  /**
   * @param model the release's ColdNAS; its dense and architecture params are frozen here
   *   (ParamSet.freeze), so the model must not be trained afterwards (trainers work on a copy)
   * @param biasFilter the release's `architecture.biasFilter` (@default UNRECORDED_BIAS_FILTER: biases frozen at 0)
   */
  constructor(model: ColdNas, layout: EventLayout, release: string, opts: ColdNasAdapterOptions = {}, biasFilter: BiasFilterPrior = UNRECORDED_BIAS_FILTER) {
    this.chunk = positiveInt('coldnas.chunkRows', opts.chunkRows, DEFAULT_CHUNK_ROWS);
    this.fastMax = nonNegativeInt('coldnas.fastMaxRows', opts.fastMaxRows, COLDNAS_FAST_MAX_ROWS);
    this.historyWindow = nonNegativeInt('coldnas.historyWindow', opts.historyWindow, COLDNAS_HISTORY_WINDOW);
    this.bias = new EntityBias('coldnas', 'user', biasFilter, opts);
    this.encoder = new EventEncoder(layout);
    checkUserLayout('coldnas', layout, this.encoder.fieldLayout, model.layout, model.table.rows);
    // The release's weights never change here: their tensors are created once, not per call.
    model.dense.freeze();
    model.arch.freeze();
    this.fast = new ColdNasFastPath(model);
    this.ops = model.structure?.ops.map((op) => COLDNAS_OPS.indexOf(op)) ?? [];
    this.compact = model.structure === undefined ? undefined : compactModulation(model, this.ops);
    this.model = model;
    this.release = release;
    this.stateSize = coldNasStateSize(model.contextDim);
  }

  /** Bias 0 with the prior variance, count 0 and the zero mean, whatever the event's features (see the file comment). */
  initialState(_event: LabelledEvent): Float32Array {
    const st = new Float32Array(this.stateSize);
    this.bias.init(st);
    return st;
  }

  predict(batch: AdapterBatch): Float32Array {
    return this.run(batch, false);
  }

  /** Releases the frozen model's kept tensors (the model is this adapter's: one per release). */
  dispose(): void {
    this.model.dense.dispose();
    this.model.arch.dispose();
    this.compact?.dispose();
  }

  predictThenAdapt(batch: AdapterBatch): Float32Array {
    return this.run(batch, true);
  }

  /**
   * Logits of a fixed structure with the compact modulation: models/coldnas.ts `logits` with the
   * per-row modulation computed for the used op's columns only. When every mean of the chunk is
   * zero (new users; every user of the frozen `none` baseline), the modulation is the bias alone
   * (0·W is exactly 0), broadcast over rows: no product at all.
   */
  private fixedLogits(p: TensorMap, compact: ParamSet, fields: tf.Tensor2D, means: Float32Array, n: number): tf.Tensor1D {
    const m = this.model;
    const cp = compact.tensors();
    const w = cp['mod.w'] as tf.Tensor2D;
    const b = defined(cp['mod.b'], "ColdNAS parameter 'mod.b'");
    const mod = allZero(means) ? undefined : tf.tensor2d(means, [n, m.contextDim]).matMul(w).add<tf.Tensor2D>(b);
    let off = 0;
    return m.predictor(p, fields, (pos, x) => {
      const d = at(m.positionDims, pos, 'ColdNAS position');
      const q = mod === undefined ? b.slice([off], [d]) : mod.slice([0, off], [n, d]);
      off += d;
      return applyColdNasOp(at(this.ops, pos, 'ColdNAS op of position'), x, q);
    });
  }

  /**
   * The whole micro-batch in one call (adapters/types.ts), repeated users included. An event's
   * interaction encoding depends on the event alone, not on the state, so every encoding is
   * computed first (plain JS: cached per-(table row, field) products, ~C·S adds a row), folded into
   * its user's state in event order while the pre-event mean of each event is recorded, and then
   * every event's model logit comes from one forward (chunks of chunkRows) with its recorded mean;
   * last, in event order, each score adds the user's bias as it was before the event, and the bias
   * filter steps: the same numbers as the wave-by-wave calls, in a few large passes instead of one
   * call per wave (the bench stream's 10,000-event micro-batches have ~860 waves, most of 1–16
   * events, bench/curves).
   */
  predictThenAdaptSequence(batch: AdapterBatch): Float32Array {
    this.checkBatch(batch);
    const n = batch.events.length;
    const out = new Float32Array(n);
    if (n === 0) return out;
    const c = this.model.contextDim;
    const rows = this.encoder.encode(batch.events);
    const means = new Float32Array(n * c);
    const enc = new Float32Array(c);
    batch.states.forEach((st, j) => {
      checkCount(st[COUNT] ?? 0);
      means.set(st.subarray(MEAN), j * c);
      this.fast.encodeRow(rows, j, enc, 0);
      foldInto(st, enc, 0, this.historyWindow, COUNT);
    });
    const z = new Float32Array(n);
    for (let from = 0; from < n; from += this.chunk) {
      const to = Math.min(n, from + this.chunk);
      this.forward(sliceBatch(rows, from, to), means.subarray(from * c, to * c), z, from, false);
    }
    batch.states.forEach((st, j) => {
      const p = sigmoid((z[j] ?? 0) + this.bias.offset(st, batch.others, j));
      out[j] = p;
      this.bias.learn(st, p, rows.label[j] ?? 0, batch.others, j);
    });
    if (batch.baseline !== undefined) this.baselineInto(rows, batch.baseline);
    return out;
  }

  private run(batch: AdapterBatch, adapt: boolean): Float32Array {
    this.checkBatch(batch);
    const n = batch.events.length;
    const out = new Float32Array(n);
    if (n === 0) return out;
    const c = this.model.contextDim;
    const rows = this.encoder.encode(batch.events);
    const z = new Float32Array(n);
    for (let from = 0; from < n; from += this.chunk) {
      const to = Math.min(n, from + this.chunk);
      const part = sliceBatch(rows, from, to);
      const means = new Float32Array(part.n * c);
      for (let j = from; j < to; j++) {
        const st = this.stateOf(batch, j);
        checkCount(st[COUNT] ?? 0);
        means.set(st.subarray(MEAN), (j - from) * c);
      }
      const enc = this.forward(part, means, z, from, adapt);
      for (let j = from; j < to; j++) {
        const st = this.stateOf(batch, j);
        const p = sigmoid((z[j] ?? 0) + this.bias.offset(st, batch.others, j));
        out[j] = p;
        if (enc === undefined) continue;
        foldInto(st, enc, (j - from) * c, this.historyWindow, COUNT);
        this.bias.learn(st, p, rows.label[j] ?? 0, batch.others, j);
      }
    }
    if (adapt && batch.baseline !== undefined) this.baselineInto(rows, batch.baseline);
    return out;
  }

  /**
   * The baseline of every row into out: count 0, the zero mean, bias 0, no cross-side read, in the
   * chunks `run` uses, so it equals what the `none` over the release scores (FrozenAdapter).
   */
  private baselineInto(rows: RowBatch, out: Float32Array): void {
    const c = this.model.contextDim;
    const z = new Float32Array(rows.n);
    for (let from = 0; from < rows.n; from += this.chunk) {
      const to = Math.min(rows.n, from + this.chunk);
      this.forward(sliceBatch(rows, from, to), new Float32Array((to - from) * c), z, from, false);
    }
    for (let j = 0; j < rows.n; j++) out[j] = sigmoid(z[j] ?? 0);
  }

  /** State j of a checked batch. */
  private stateOf(batch: AdapterBatch, j: number): Float32Array {
    const st = batch.states[j];
    if (st === undefined) throw new ThawError('MODEL_ERROR', `coldnas: no state for event ${j}`);
    return st;
  }

  private checkBatch(batch: AdapterBatch): void {
    checkBatch('coldnas', batch, this.stateSize);
    this.bias.checkBatch(batch);
  }

  /**
   * Model logits of the rows of `part` into z[at…] given their means (part.n × C); with
   * `wantEnc`, also returns their interaction encodings (part.n × C). Hand path up to fastMaxRows.
   */
  private forward(part: RowBatch, means: Float32Array, z: Float32Array, at: number, wantEnc: boolean): Float32Array | undefined {
    const m = this.model;
    const c = m.contextDim;
    if (part.n <= this.fastMax) {
      const enc = wantEnc ? new Float32Array(part.n * c) : undefined;
      this.fast.run(part, means, z, at, enc);
      return enc;
    }
    const compact = this.compact;
    const res = tf.tidy(() => {
      const p = { ...m.dense.tensors(), ...m.arch.tensors() };
      const fields = m.fields(gatherEmb(m.table, part, m.slots), part);
      let logits: tf.Tensor1D;
      if (compact === undefined) {
        const mod = m.modulation(p, tf.tensor2d(means, [part.n, c]));
        logits = m.logits(p, fields, mod, p['cn.alpha']);
      } else {
        logits = this.fixedLogits(p, compact, fields, means, part.n);
      }
      // The encodings reuse the pass's field embeddings: scoring and learning share one forward.
      return wantEnc ? [logits, m.encode(p, fields, tf.tensor1d(part.label))] : [logits];
    });
    try {
      const [logits, encT] = res;
      if (logits !== undefined) z.set(logits.dataSync(), at);
      return wantEnc && encT !== undefined ? (encT.dataSync() as Float32Array).slice() : undefined;
    } finally {
      for (const t of res) t.dispose();
    }
  }
}

/** Throws STATE_CORRUPT unless a state's count is a non-negative integer. */
function checkCount(count: number): void {
  if (!(Number.isInteger(count) && count >= 0)) throw new ThawError('STATE_CORRUPT', `coldnas: state count ${count} is not a count`);
}

/** The used op's columns of the modulation layer per position (see ColdNasAdapter `compact`), frozen. */
function compactModulation(m: ColdNas, ops: readonly number[]): ParamSet {
  const c = m.contextDim;
  const full = 4 * m.modDim;
  const w = m.dense.get('cn.mod.w').data;
  const b = m.dense.get('cn.mod.b').data;
  const cw = new Float32Array(c * m.modDim);
  const cb = new Float32Array(m.modDim);
  let off = 0;
  m.positionDims.forEach((d, pos) => {
    const from = at(ops, pos, 'ColdNAS op of position') * m.modDim + off;
    for (let k = 0; k < c; k++) cw.set(w.subarray(k * full + from, k * full + from + d), k * m.modDim + off);
    cb.set(b.subarray(from, from + d), off);
    off += d;
  });
  const set = new ParamSet();
  set.add('mod.w', [c, m.modDim], cw);
  set.add('mod.b', [m.modDim], cb);
  return set.freeze();
}

/** True if every value of `a` is 0 (or -0). */
function allZero(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) return false;
  return true;
}

/**
 * Folds one interaction encoding (enc[at, at+C)) into the [count, mean (C)] block of a state that
 * starts at `base`, in place, in O(C): mean ← mean + (enc − mean)/min(count+1, window),
 * count ← count+1. With window 0 (or before the window fills) it is the exact running mean
 * (models/coldnas.ts `userStateUpdate`); after, an exponential moving mean with rate 1/window.
 */
export function foldInto(state: Float32Array, enc: Float32Array, at: number, window = 0, base = 0): void {
  const n = (state[base] ?? 0) + 1;
  state[base] = n;
  const div = window > 0 && n > window ? window : n;
  for (let k = base + 1; k < state.length; k++) state[k] = (state[k] ?? 0) + ((enc[at + k - base - 1] ?? 0) - (state[k] ?? 0)) / div;
}
