/**
 * The `coldnas` adapter (user side): a user is represented by the mean of the encodings of its
 * history interactions, which the frozen ColdNAS model (models/coldnas.ts) turns into the
 * parameters of its modulation ops. No gradient step ever runs online: scoring a user is one
 * forward pass, and learning from an event is an O(C) running-mean update.
 *
 * State layout (Float32Array, C + 1 floats, C = the model's contextDim):
 *   0          count  interactions folded into the mean so far
 *   [1, C+1)   mean   running mean of their interaction encodings
 *
 * - A user never seen starts with count 0 and the zero mean: its modulation is the modulation
 *   network's bias alone, which is what the trainer used for users without history (an entity
 *   without rows mean-pools to 0, models/coldnas-common.ts `meanPoolMatrix`).
 * - A user without profile features (or an event missing some of them) is still scored and
 *   encoded: the EventEncoder gives missing fields zero-weight padding, so their pooled embeddings
 *   are 0, both in the predictor input and in the interaction encodings folded into the mean.
 * - The mean covers the last ~`historyWindow` interactions (default 60, the trainer's largest
 *   support set): exact while count ≤ window, then an exponential moving mean with rate 1/window.
 * - The count is stored as a float32: it is exact up to 2^24 (16.7 M) events per user; beyond that
 *   it stops growing (with historyWindow 0 the update then has rate 1/(2^24 + 1)).
 * - The mean depends on the shared parameters, so a new release restarts users (the release's
 *   entityStatePolicy is `reinit`, models/onnx/bundle.ts).
 *
 * Small waves (≤ `fastMaxRows`) run a plain-JS copy of the forward (adapters/fast/coldnas.ts): the
 * fixed cost of a TensorFlow.js call dominates them (numbers there).
 *
 * Batching: one forward for a whole AdapterBatch (each row is its own user, so the per-user
 * modulation is computed per row directly, without the model's one-hot gather over users); the
 * same pass yields the rows' interaction encodings, so predict-then-adapt costs one forward.
 */
import * as tf from '@tensorflow/tfjs';
import { ThawError } from '../lib/errors.js';
import { sliceBatch } from '../models/ctr-model.js';
import type { ColdNas } from '../models/coldnas.js';
import { gatherEmb } from '../models/coldnas-common.js';
import { EventEncoder, type EventLayout } from '../models/event-layout.js';
import type { LabelledEvent, Side } from '../schemas/types.js';
import type { Adapter, AdapterBatch } from './types.js';
import { ColdNasFastPath } from './fast/coldnas.js';
import { checkBatch, checkUserLayout, DEFAULT_CHUNK_ROWS, nonNegativeInt, positiveInt } from './user-common.js';

/**
 * Default `fastMaxRows`: the hand path's break-even with the tf path on this project's host (wasm,
 * bench/adapters/per-call.ts --hand): it wins at 1–2 events, ties at 4, loses from 8 on (its
 * ~37k multiply-adds per row in plain JS cost more than tf's fixed cost beyond that).
 */
export const COLDNAS_FAST_MAX_ROWS = 4;

/** Default `historyWindow`: the largest support set of the trainer's default `supportSizes`. */
export const COLDNAS_HISTORY_WINDOW = 60;

/** Options of the `coldnas` adapter. */
export interface ColdNasAdapterOptions {
  /** Rows per forward pass; larger waves are computed in chunks of this many rows (bounds memory). @default 4096 */
  chunkRows?: number;
  /**
   * Waves of at most this many rows run the plain-JS forward (adapters/fast/coldnas.ts, same
   * results to 1e-5) instead of TensorFlow.js, whose fixed per-call cost dominates small waves;
   * 0 always uses TensorFlow.js. @default 4 (COLDNAS_FAST_MAX_ROWS)
   */
  fastMaxRows?: number;
  /**
   * Interactions the user mean covers (events; 0 = all of them, an exact running mean). Once a
   * user has this many, the update becomes an exponential moving mean with rate 1/historyWindow
   * (same state, still O(C)): ColdNAS meta-trains on support sets of at most 60 interactions
   * (trainers/coldnas-trainer.ts `supportSizes` default [0, 20, 40, 60]), and a mean over hundreds
   * of interactions is outside what its modulation network learned (and blind to drift).
   * @default 60 (COLDNAS_HISTORY_WINDOW)
   */
  historyWindow?: number;
}

export class ColdNasAdapter implements Adapter {
  readonly name = 'coldnas';
  readonly side: Side = 'user';
  readonly stateSize: number;
  readonly release: string;
  readonly model: ColdNas;
  readonly encoder: EventEncoder;
  private readonly chunk: number;
  private readonly fastMax: number;
  private readonly fast: ColdNasFastPath;
  /** Resolved historyWindow (0 = exact running mean). */
  readonly historyWindow: number;

  /**
   * @param model the release's ColdNAS; its dense and architecture params are frozen here
   *   (ParamSet.freeze), so the model must not be trained afterwards (trainers work on a copy)
   */
  constructor(model: ColdNas, layout: EventLayout, release: string, opts: ColdNasAdapterOptions = {}) {
    this.chunk = positiveInt('coldnas.chunkRows', opts.chunkRows, DEFAULT_CHUNK_ROWS);
    this.fastMax = nonNegativeInt('coldnas.fastMaxRows', opts.fastMaxRows, COLDNAS_FAST_MAX_ROWS);
    this.historyWindow = nonNegativeInt('coldnas.historyWindow', opts.historyWindow, COLDNAS_HISTORY_WINDOW);
    this.encoder = new EventEncoder(layout);
    checkUserLayout('coldnas', layout, this.encoder.fieldLayout, model.layout, model.table.rows);
    // The release's weights never change here: their tensors are created once, not per call.
    model.dense.freeze();
    model.arch.freeze();
    this.fast = new ColdNasFastPath(model);
    this.model = model;
    this.release = release;
    this.stateSize = model.contextDim + 1;
  }

  /** Count 0 and the zero mean, whatever the event's features (see the file comment). */
  initialState(_event: LabelledEvent): Float32Array {
    return new Float32Array(this.stateSize);
  }

  predict(batch: AdapterBatch): Float32Array {
    return this.run(batch, false);
  }

  /** Releases the frozen model's kept tensors (the model is this adapter's: one per release). */
  dispose(): void {
    this.model.dense.dispose();
    this.model.arch.dispose();
  }

  predictThenAdapt(batch: AdapterBatch): Float32Array {
    return this.run(batch, true);
  }

  private run(batch: AdapterBatch, adapt: boolean): Float32Array {
    checkBatch('coldnas', batch, this.stateSize);
    const n = batch.events.length;
    const out = new Float32Array(n);
    if (n === 0) return out;
    const m = this.model;
    const c = m.contextDim;
    const rows = this.encoder.encode(batch.events);
    for (let from = 0; from < n; from += this.chunk) {
      const to = Math.min(n, from + this.chunk);
      const part = sliceBatch(rows, from, to);
      const means = new Float32Array(part.n * c);
      for (let j = from; j < to; j++) {
        const st = batch.states[j]!;
        const count = st[0]!;
        if (!(Number.isInteger(count) && count >= 0)) throw new ThawError('STATE_CORRUPT', `coldnas: state count ${count} is not a count`);
        means.set(st.subarray(1), (j - from) * c);
      }
      if (part.n <= this.fastMax) {
        const enc = adapt ? new Float32Array(part.n * c) : undefined;
        this.fast.run(part, means, out, from, enc);
        if (enc !== undefined) for (let j = from; j < to; j++) foldInto(batch.states[j]!, enc, (j - from) * c, this.historyWindow);
        continue;
      }
      const res = tf.tidy(() => {
        const p = { ...m.dense.tensors(), ...m.arch.tensors() };
        const fields = m.fields(gatherEmb(m.table, part, m.slots), part);
        const mod = m.modulation(p, tf.tensor2d(means, [part.n, c]));
        const probs = tf.sigmoid(m.logits(p, fields, mod, p['cn.alpha']));
        // The encodings reuse the pass's field embeddings: scoring and learning share one forward.
        return adapt ? [probs, m.encode(p, fields, tf.tensor1d(part.label))] : [probs];
      });
      try {
        out.set(res[0]!.dataSync() as Float32Array, from);
        if (adapt) {
          const enc = res[1]!.dataSync() as Float32Array;
          for (let j = from; j < to; j++) foldInto(batch.states[j]!, enc, (j - from) * c, this.historyWindow);
        }
      } finally {
        for (const t of res) t.dispose();
      }
    }
    return out;
  }
}

/**
 * Folds one interaction encoding (enc[at, at+C)) into a state in place, in O(C):
 * mean ← mean + (enc − mean)/min(count+1, window), count ← count+1. With window 0 (or before the
 * window fills) it is the exact running mean (models/coldnas.ts `userStateUpdate`); after, an
 * exponential moving mean with rate 1/window.
 */
export function foldInto(state: Float32Array, enc: Float32Array, at: number, window = 0): void {
  const n = state[0]! + 1;
  state[0] = n;
  const div = window > 0 && n > window ? window : n;
  for (let k = 1; k < state.length; k++) state[k] = state[k]! + (enc[at + k - 1]! - state[k]!) / div;
}
