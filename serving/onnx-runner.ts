/**
 * Scores with a release's `model.onnx` through onnxruntime-node. The shared parameters are baked
 * into the graph; the per-entity parameters (and the feature rows) are fed as inputs on every
 * call, so one session serves every entity state the caller holds (Redis, the cache tier, a request).
 *
 * Batches larger than `maxBatch` are split so a huge request cannot allocate unbounded tensors.
 */
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { defined } from '../lib/at.js';
import { ConfigError, ThawError, errorMessage } from '../lib/errors.js';
import { FM_CROSS_INPUTS, FM_INPUTS } from '../models/onnx/fm.js';

export interface OnnxRunnerOptions {
  /** Threads onnxruntime may use inside one operator. @default 1 (the host's cores belong to the workers) */
  intraOpThreads?: number;
  /** Largest batch sent in one call, in examples; bigger inputs are split. @default 4096 */
  maxBatch?: number;
}

/** One input tensor: data and its dims (the first dim is the batch). */
export interface FeedTensor {
  data: Float32Array | Int32Array;
  dims: readonly number[];
}

/** Examples with a variable number of feature rows, padded into [n, slots] with 0/1 weights. */
export interface PaddedRows {
  n: number;
  slots: number;
  featIdx: Int32Array;
  featW: Float32Array;
}

/** Pads per-example feature rows (e.g. `encodeEvent` outputs) to the longest one. */
export function padRows(rows: readonly Int32Array[]): PaddedRows {
  const slots = Math.max(1, ...rows.map((r) => r.length));
  const featIdx = new Int32Array(rows.length * slots);
  const featW = new Float32Array(rows.length * slots);
  rows.forEach((r, i) => {
    featIdx.set(r, i * slots);
    featW.fill(1, i * slots, i * slots + r.length);
  });
  return { n: rows.length, slots, featIdx, featW };
}

function positiveInt(key: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt;
  if (!Number.isInteger(x) || x < 1) throw new ConfigError(key, `must be a positive integer, got ${String(v)}`);
  return x;
}

export class OnnxRunner {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  private readonly maxBatch: number;

  private constructor(
    private readonly session: ort.InferenceSession,
    maxBatch: number,
  ) {
    this.inputNames = session.inputNames;
    this.outputNames = session.outputNames;
    this.maxBatch = maxBatch;
  }

  /** Opens a session on the serialised model (bytes, e.g. a loaded release's `model.onnx`) or a file path. */
  static async load(model: Uint8Array | string, opts: OnnxRunnerOptions = {}): Promise<OnnxRunner> {
    const threads = positiveInt('onnx.intraOpThreads', opts.intraOpThreads, 1);
    const maxBatch = positiveInt('onnx.maxBatch', opts.maxBatch, 4096);
    try {
      const bytes = typeof model === 'string' ? await readFile(model) : model;
      const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
      return new OnnxRunner(session, maxBatch);
    } catch (err) {
      throw new ThawError('MODEL_ERROR', `cannot load ONNX model: ${errorMessage(err)}`, { cause: err });
    }
  }

  /**
   * Runs the graph on `n` examples and returns the named outputs, each `n × (elements per example)`.
   * Every feed's first dim must be `n`.
   */
  async run(n: number, feeds: Record<string, FeedTensor>, outputs: readonly string[] = ['prob']): Promise<Record<string, Float32Array>> {
    for (const [name, f] of Object.entries(feeds)) {
      if (f.dims[0] !== n) throw new ThawError('MODEL_ERROR', `ONNX input ${name}: first dim ${String(f.dims[0])}, expected batch ${n}`);
    }
    const parts = outputs.map((name) => ({ name, chunks: [] as Float32Array[] }));
    for (let from = 0; from < n; from += this.maxBatch) {
      const to = Math.min(n, from + this.maxBatch);
      const chunk: Record<string, ort.Tensor> = {};
      for (const [name, f] of Object.entries(feeds)) {
        const per = f.data.length / n;
        const data = f.data.subarray(from * per, to * per);
        chunk[name] = data instanceof Int32Array ? new ort.Tensor('int32', data, [to - from, ...f.dims.slice(1)]) : new ort.Tensor('float32', data, [to - from, ...f.dims.slice(1)]);
      }
      let res: ort.InferenceSession.ReturnType;
      try {
        res = await this.session.run(chunk, [...outputs]);
      } catch (err) {
        throw new ThawError('MODEL_ERROR', `ONNX run failed: ${errorMessage(err)}`, { cause: err });
      }
      for (const p of parts) p.chunks.push(defined(res[p.name], `ONNX output ${p.name}`).data as Float32Array);
    }
    const out: Record<string, Float32Array> = {};
    for (const { name: o, chunks: ps } of parts) {
      const total = ps.reduce((a, p) => a + p.length, 0);
      const all = new Float32Array(total);
      let at = 0;
      for (const p of ps) {
        all.set(p, at);
        at += p.length;
      }
      out[o] = all;
    }
    return out;
  }

  /**
   * Click probabilities of an FM release for `rows` with per-example user and item views (n × (k+2)
   * each): the serving path of the `fm-adagrad` adapter's states (state [0, k+2) of each side).
   * A release with a cross term also needs each example's cross rows (`FactorizationMachine.crossRowsOf`, padded).
   */
  async scoreFm(rows: PaddedRows, userViews: Float32Array, itemViews: Float32Array, crossRows?: PaddedRows): Promise<Float32Array> {
    const n = rows.n;
    const width = userViews.length / Math.max(1, n);
    const needsCross = this.inputNames.includes(FM_CROSS_INPUTS.crossIdx);
    if (needsCross && crossRows === undefined) throw new ThawError('USAGE', 'this FM release has a cross term: scoreFm needs the cross rows of each example');
    if (crossRows !== undefined && crossRows.n !== n) throw new ThawError('USAGE', `scoreFm: ${n} examples but ${crossRows.n} rows of crosses`);
    const res = await this.run(n, {
      [FM_INPUTS.featIdx]: { data: rows.featIdx, dims: [n, rows.slots] },
      [FM_INPUTS.featW]: { data: rows.featW, dims: [n, rows.slots] },
      [FM_INPUTS.userView]: { data: userViews, dims: [n, width] },
      [FM_INPUTS.itemView]: { data: itemViews, dims: [n, width] },
      ...(needsCross && crossRows !== undefined
        ? {
            [FM_CROSS_INPUTS.crossIdx]: { data: crossRows.featIdx, dims: [n, crossRows.slots] },
            [FM_CROSS_INPUTS.crossW]: { data: crossRows.featW, dims: [n, crossRows.slots] },
          }
        : {}),
    });
    return defined(res.prob, 'ONNX output prob');
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
