/**
 * The `emerg` adapter (item side): each item owns EmerG's item-specific parameters on top of a
 * frozen meta-learned EmerG release: its ID embedding (W values) and its F×F feature graph.
 * - At first sight both are GENERATED from the features on the item's first event, by the release's
 *   ID generator and graph hypernetwork (`initialStates`: one model call for every new item of a
 *   micro-batch), exactly as the meta-training started its tasks.
 * - Every event is scored with the item's parameters as they are (the prequential score), then
 *   both are stepped on that event's log loss. One forward/backward covers the whole AdapterBatch
 *   (`CtrModel.scoreAndGradients`: the forward's probabilities are the returned scores).
 * - Step: AdaGrad-Norm per block (Ward et al. 2019): one accumulator per block (ID, graph) of the
 *   squared gradient NORM, step = lr·g/√(G0 + Σ‖g‖²). Decaying steps like fm-adagrad's, with 2
 *   floats of optimizer state per item instead of W + F² per-coordinate accumulators. `sgd` uses
 *   a constant lr (the meta-training's inner step) and leaves the accumulators untouched.
 * - An L2 pull toward the generated initial values (the meta-learned prior), so a few noisy labels
 *   do not drag a new item far from what its features predict; the initial values are kept in the
 *   state for that (and so the `none` baseline and a reset need no second generator call).
 * - The logit gains the item's bias and the user's bias as the user side's worker last wrote it
 *   (adapters/entity-bias.ts: the cross-side read and the bias filter); the item's bias is the
 *   state's VIEW, which the user side may read.
 * - The baseline (`batch.baseline`, for the worker's safeguard) is the item's score with its
 *   generated e0 and A0, bias 0 and no cross-side read: what the `none` over the release scores.
 *
 * State layout (Float32Array, 2 + 2W + 2G + 2 floats; W = model.width, G = F·F; models/meta-state.ts):
 *   0                   b    item bias (logit), the bias filter's mean
 *   1                   s    its variance
 *   [2, 2+W)            e    item-ID embedding (D values + the first-order weight when the model has one)
 *   [2+W, 2+W+G)        A    item graph, row-major F×F
 *   [2+W+G, 2+2W+G)     e0   generated initial e (the L2 anchor)
 *   [2+2W+G, 2+2W+2G)   A0   generated initial A
 *   2+2W+2G             Ge   AdaGrad-Norm accumulator of e (starts at initialAccumulator)
 *   2+2W+2G+1           GA   AdaGrad-Norm accumulator of A
 *
 * Defaults were measured, not guessed: bench/adapters/emerg-adapter.ts --mode tune meta-trains an
 * EmerG (D 16, 3 layers) on the 137 items with >= 40 events in the first 60% of a 60k-event
 * synthetic stream, then replays the 2,246 events of the 302 items that first appear in the last
 * 40% (never seen in training) in waves, as a worker does. Prequential log loss (AUC):
 *   none (frozen release) 0.5503 (0.519) · sgd 0.1 0.5307 (0.567) · adagrad 0.1 0.5366 (0.547)
 *   adagrad 0.3 0.5267 (0.576) · adagrad 0.5 0.5238 (0.588) · adagrad 1 0.5268 (0.595)
 *   at lr 0.3: G0 0.1 0.5252, G0 10 0.5323; l2 0 0.5266, l2 0.1 0.5280; graph scale 0 0.5273, 3 0.5260.
 * Hence AdaGrad-Norm, lr 0.5, G0 1, graph scale 1, l2 0.01 (l2 and the graph scale matter little
 * on this stream; the graph's step is kept because EmerG's point is item-specific interactions).
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError, ThawError } from '../lib/errors.js';
import type { EntityParams, RowBatch } from '../models/ctr-model.js';
import type { Emerg } from '../models/emerg.js';
import { EventEncoder, type EventLayout } from '../models/event-layout.js';
import type { LabelledEvent, Side } from '../schemas/types.js';
import { emergStateSize, META_OWN, UNRECORDED_BIAS_FILTER, type BiasFilterPrior } from '../models/meta-state.js';
import type { Adapter, AdapterBatch } from './types.js';
import { EntityBias, type EntityBiasOptions } from './entity-bias.js';
import { EmergFastPath } from './fast/emerg.js';

/**
 * Default `fastMaxRows`: waves up to this many rows run the plain-JS path (adapters/fast/emerg.ts).
 * Measured on the synthetic layout's EmerG (D 16, 3 layers, 10 fields; wasm; loaded 2-core host).
 * `bench/adapters/per-call.ts --adapters emerg --hand`, ms per predictThenAdapt call, frozen tf vs
 * hand path: 1 event 16.3 vs 0.63, 4: 15.9 vs 3.0, 32: 29.1 vs 17.2, 256: 120 vs 128, 1024: within
 * the host's noise. A CPU profile of the curves bench's `none` worker (trained release, 130k
 * events) puts the hand path at ~2× TensorFlow.js's per-row cost on large waves (tf's XNNPACK
 * kernels are SIMD, the hand path scalar JS), with tf's fixed ~10-15 ms per call: they cross
 * between about 100 (predict) and 250 (predictThenAdapt) rows. On that stream 2/3 of the
 * 16,900 calls per 130k events hold ≤ 16 events, but 2/3 of the events sit in waves > 256.
 */
export const EMERG_FAST_MAX_ROWS = 128;

/** Options of the `emerg` adapter (the bias options: adapters/entity-bias.ts). */
export interface EmergAdapterOptions extends EntityBiasOptions {
  /** Step size of the item-ID embedding (dimensionless; AdaGrad-Norm or SGD). @default 0.5 */
  learningRate?: number;
  /** Step size of the item graph as a multiple of learningRate; 0 keeps the generated graph. @default 1 */
  graphLrScale?: number;
  /** L2 penalty pulling e and A back toward their generated initial values, per event. @default 0.01 */
  l2?: number;
  /** `adagrad`: AdaGrad-Norm per block (decaying steps); `sgd`: constant steps. @default 'adagrad' */
  optimizer?: 'adagrad' | 'sgd';
  /**
   * AdaGrad-Norm accumulator at an item's first event (G0). The first step is about
   * lr·g/√(G0 + ‖g‖²): larger is more cautious on the very first events. @default 1
   */
  initialAccumulator?: number;
  /**
   * Waves of at most this many rows (events) run the plain-JS forward/backward
   * (adapters/fast/emerg.ts, the same results to 1e-5) instead of TensorFlow.js, whose fixed
   * per-call cost dominates small waves; 0 always uses TensorFlow.js. Readout 'fields' always uses
   * TensorFlow.js. @default 128 (EMERG_FAST_MAX_ROWS)
   */
  fastMaxRows?: number;
}

/** Resolved options (every default applied), the bias options aside (they default to the release's: `EmergAdapter.bias`). */
export type ResolvedEmergAdapterOptions = Required<Omit<EmergAdapterOptions, keyof EntityBiasOptions>>;

export const EMERG_ADAPTER_DEFAULTS: ResolvedEmergAdapterOptions = {
  learningRate: 0.5,
  graphLrScale: 1,
  l2: 0.01,
  optimizer: 'adagrad',
  initialAccumulator: 1,
  fastMaxRows: EMERG_FAST_MAX_ROWS,
};

function nonNegative(key: string, value: number | undefined, dflt: number, allowZero: boolean): number {
  const v = value ?? dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new ConfigError(key, `must be a finite number ${allowZero ? '>= 0' : '> 0'}, got ${String(value)}`);
  }
  return v;
}

function nonNegativeInt(key: string, value: number | undefined, dflt: number): number {
  const v = value ?? dflt;
  if (!Number.isInteger(v) || v < 0) throw new ConfigError(key, `must be an integer >= 0, got ${String(value)}`);
  return v;
}

/** Validates `opts` and applies the defaults; throws ConfigError naming the bad key. */
export function resolveEmergAdapterOptions(opts: EmergAdapterOptions = {}): ResolvedEmergAdapterOptions {
  const d = EMERG_ADAPTER_DEFAULTS;
  const optimizer = opts.optimizer ?? d.optimizer;
  if (optimizer !== 'adagrad' && optimizer !== 'sgd') throw new ConfigError('emerg.optimizer', `must be 'adagrad' or 'sgd', got ${String(optimizer)}`);
  return {
    learningRate: nonNegative('emerg.learningRate', opts.learningRate, d.learningRate, false),
    graphLrScale: nonNegative('emerg.graphLrScale', opts.graphLrScale, d.graphLrScale, true),
    l2: nonNegative('emerg.l2', opts.l2, d.l2, true),
    optimizer,
    initialAccumulator: nonNegative('emerg.initialAccumulator', opts.initialAccumulator, d.initialAccumulator, false),
    fastMaxRows: nonNegativeInt('emerg.fastMaxRows', opts.fastMaxRows, d.fastMaxRows),
  };
}

export class EmergAdapter implements Adapter {
  readonly name = 'emerg';
  readonly side: Side = 'item';
  readonly stateSize: number;
  readonly viewSize = META_OWN;
  readonly hasBaseline = true;
  readonly release: string;
  readonly options: ResolvedEmergAdapterOptions;
  /** The item's bias and the cross-side read. */
  readonly bias: EntityBias;
  private readonly model: Emerg;
  private readonly encoder: EventEncoder;
  /** W and G. */
  private readonly w: number;
  private readonly g: number;
  /** The plain-JS path for small waves; undefined for readout 'fields'. */
  private readonly fast: EmergFastPath | undefined;

  /**
   * @param model the release's EmerG; its dense params are frozen here (ParamSet.freeze), so the
   *   model must not be trained afterwards (trainers work on their own copy)
   * @param layout the release's `architecture.eventLayout` (item side)
   * @param release release id recorded in prediction rows, e.g. `emerg/20240101T000000000Z`
   * @param biasFilter the release's `architecture.biasFilter` (@default UNRECORDED_BIAS_FILTER: biases frozen at 0)
   */
  constructor(model: Emerg, layout: EventLayout, release: string, opts: EmergAdapterOptions = {}, biasFilter: BiasFilterPrior = UNRECORDED_BIAS_FILTER) {
    if (layout.side !== 'item') throw new ThawError('RELEASE_INCOMPATIBLE', `emerg: release ${release} has a ${layout.side}-side event layout; EmerG adapts items`);
    const names = layout.fields.map((f) => f.name);
    if (names.join('\u0000') !== model.layout.fieldNames.join('\u0000')) {
      throw new ThawError('RELEASE_INCOMPATIBLE', `emerg: release ${release}'s event layout fields [${names.join(', ')}] differ from the model's [${model.layout.fieldNames.join(', ')}]`);
    }
    if (layout.vocab !== model.table.rows) throw new ThawError('RELEASE_INCOMPATIBLE', `emerg: release ${release}'s event layout has ${layout.vocab} rows, the model's table ${model.table.rows}`);
    this.options = resolveEmergAdapterOptions(opts);
    this.bias = new EntityBias('emerg', 'item', biasFilter, opts);
    // The release's weights never change here: their tensors are created once, not per call.
    model.dense.freeze();
    this.model = model;
    this.encoder = new EventEncoder(layout);
    if (this.encoder.slots !== model.slots) throw new ThawError('RELEASE_INCOMPATIBLE', `emerg: release ${release}'s event layout has ${this.encoder.slots} slots, the model ${model.slots}`);
    this.release = release;
    this.w = model.width;
    this.g = model.graphSize;
    this.stateSize = emergStateSize(this.w, this.g);
    this.fast = model.readout === 'layers' ? new EmergFastPath(model) : undefined;
  }

  /** The plain-JS path when a wave of `n` rows runs it, else undefined. */
  private fastFor(n: number): EmergFastPath | undefined {
    return n <= this.options.fastMaxRows ? this.fast : undefined;
  }

  initialState(event: LabelledEvent): Float32Array {
    const [st] = this.initialStates([event]);
    if (st === undefined) throw new ThawError('MODEL_ERROR', 'emerg: no initial state generated');
    return st;
  }

  /** Releases the frozen model's kept tensors (the model is this adapter's: one per release). */
  dispose(): void {
    this.model.dense.dispose();
  }

  /** Generated ID embeddings and graphs of every new item, from one model call. */
  initialStates(events: readonly LabelledEvent[]): Float32Array[] {
    const n = events.length;
    if (n === 0) return [];
    const b = this.encoder.encode(events);
    const m = this.model;
    const [idT, graphT] = tf.tidy((): [tf.Tensor2D, tf.Tensor3D] => {
      const p = m.dense.tensors();
      const pooled = m.pooledOf(b);
      return [m.generateIdEmb(p, pooled), m.generateGraph(p, pooled)];
    });
    const ids = idT.dataSync() as Float32Array;
    const graphs = graphT.dataSync() as Float32Array;
    idT.dispose();
    graphT.dispose();
    const { w, g } = this;
    const o = META_OWN;
    const out: Float32Array[] = [];
    for (let i = 0; i < n; i++) {
      const st = new Float32Array(this.stateSize);
      this.bias.init(st);
      const e = ids.subarray(i * w, i * w + w);
      const a = graphs.subarray(i * g, i * g + g);
      st.set(e, o);
      st.set(a, o + w);
      st.set(e, o + w + g);
      st.set(a, o + 2 * w + g);
      st[o + 2 * w + 2 * g] = this.options.initialAccumulator;
      st[o + 2 * w + 2 * g + 1] = this.options.initialAccumulator;
      out.push(st);
    }
    return out;
  }

  predict(batch: AdapterBatch): Float32Array {
    this.checkBatch(batch);
    const n = batch.events.length;
    if (n === 0) return new Float32Array(0);
    const rows = this.encoder.encode(batch.events);
    return this.score(rows, this.paramsOf(batch.states, META_OWN), this.offsets(batch));
  }

  predictThenAdapt(batch: AdapterBatch): Float32Array {
    this.checkBatch(batch);
    const n = batch.events.length;
    if (n === 0) return new Float32Array(0);
    const rows: RowBatch = this.encoder.encode(batch.events);
    const ent = this.paramsOf(batch.states, META_OWN);
    const offset = this.offsets(batch);
    const o = this.options;
    const { w, g } = this;
    let probs: Float32Array;
    let gId: Float32Array;
    let gGraph: Float32Array;
    const fast = this.fastFor(n);
    if (fast !== undefined) {
      probs = new Float32Array(n);
      gId = new Float32Array(n * w);
      gGraph = new Float32Array(n * g);
      fast.run(rows, ent.idEmb, ent.graph, probs, 0, gId, gGraph, offset);
    } else {
      ({ probs, gId, gGraph } = this.model.scoreAndGradients(rows, ent, o.graphLrScale > 0, offset));
    }
    // The baseline: the generated e0 and A0, bias 0, no cross-side read (the `none` of the release).
    if (batch.baseline !== undefined) batch.baseline.set(this.score(rows, this.paramsOf(batch.states, META_OWN + w + g)));
    const at = META_OWN;
    const acc = at + 2 * w + 2 * g;
    batch.states.forEach((st, j) => {
      this.step(st, at, at + w + g, gId, j * w, w, acc, o.learningRate);
      if (o.graphLrScale > 0) this.step(st, at + w, at + 2 * w + g, gGraph, j * g, g, acc + 1, o.learningRate * o.graphLrScale);
      const ev = batch.events[j];
      if (ev !== undefined) this.bias.learn(st, probs[j] ?? 0.5, ev.label, batch.others, j);
    });
    return probs;
  }

  /** Scores of `rows` with entity params `ent` and, if given, per-row logit offsets (hand path for small waves). */
  private score(rows: RowBatch, ent: EntityParams, offset?: Float32Array): Float32Array {
    const fast = this.fastFor(rows.n);
    if (fast === undefined) return this.model.predict(rows, ent, undefined, offset);
    const out = new Float32Array(rows.n);
    fast.run(rows, ent.idEmb, ent.graph, out, 0, undefined, undefined, offset);
    return out;
  }

  /** b_item + b_user of every event of the batch (adapters/entity-bias.ts). */
  private offsets(batch: AdapterBatch): Float32Array {
    const out = new Float32Array(batch.events.length);
    batch.states.forEach((st, j) => (out[j] = this.bias.offset(st, batch.others, j)));
    return out;
  }

  /** One step of block [at, at+len) of `st` (anchor at `anchor`, accumulator at `acc`) on grads[from…]. */
  private step(st: Float32Array, at: number, anchor: number, grads: Float32Array, from: number, len: number, acc: number, lr: number): void {
    const l2 = this.options.l2;
    const gi = new Float64Array(len);
    let sq = 0;
    for (let k = 0; k < len; k++) {
      const v = (grads[from + k] ?? 0) + l2 * ((st[at + k] ?? 0) - (st[anchor + k] ?? 0));
      gi[k] = v;
      sq += v * v;
    }
    let scale = lr;
    if (this.options.optimizer === 'adagrad') {
      const G = (st[acc] ?? 0) + sq;
      st[acc] = G;
      scale = lr / Math.sqrt(G);
    }
    for (let k = 0; k < len; k++) st[at + k] = (st[at + k] ?? 0) - scale * (gi[k] ?? 0);
  }

  /**
   * The e and A blocks of `states` as the model's EntityParams (entity j = state j): the current
   * ones (`from` = META_OWN) or the generated e0, A0 (`from` = META_OWN + W + G).
   */
  private paramsOf(states: readonly Float32Array[], from: number): EntityParams {
    const { w, g } = this;
    const n = states.length;
    const idEmb = new Float32Array(n * w);
    const graph = new Float32Array(n * g);
    states.forEach((st, j) => {
      idEmb.set(st.subarray(from, from + w), j * w);
      graph.set(st.subarray(from + w, from + w + g), j * g);
    });
    return { count: n, idEmb, graph };
  }

  private checkBatch(batch: AdapterBatch): void {
    if (batch.states.length !== batch.events.length) {
      throw new ThawError('MODEL_ERROR', `emerg: ${batch.events.length} events but ${batch.states.length} states`);
    }
    this.bias.checkBatch(batch);
    for (const st of batch.states) {
      if (st.length !== this.stateSize) throw new ThawError('STATE_CORRUPT', `emerg: state has ${st.length} floats, expected ${this.stateSize}`);
    }
  }
}
