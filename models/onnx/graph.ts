/**
 * A tiny ONNX graph builder over the `onnx-proto` definitions: named nodes, float/int64
 * initializers and typed graph inputs/outputs, serialised to a ModelProto (opset 13, which every
 * onnxruntime build runs). Exporters in this folder use it to write `model.onnx` from the same
 * parameters the TypeScript forward uses, so the two cannot drift apart silently (see the parity tests).
 *
 * Values are referred to by name; `node()` returns its (first) output name so expressions compose.
 */
import onnxProto from 'onnx-proto';
import { ThawError } from '../../lib/errors.js';

const { onnx } = onnxProto;

/** Opset of every exported graph. Softmax(axis=-1), ReduceSum with axes as an input (13+). */
export const OPSET = 13;

export type ElemType = 'float32' | 'int32' | 'int64';
/** A dimension: a fixed size or a symbolic name (e.g. 'batch'). */
export type Dim = number | string;

type AttrValue = number | readonly number[] | string | { float: number };

const ELEM: Record<ElemType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
};

function valueInfo(name: string, type: ElemType, dims: readonly Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM[type],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: Buffer.from(v, 'utf8') };
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new ThawError('MODEL_ERROR', `ONNX attribute ${name}: use { float } for non-integers`);
    return { name, type: T.INT, i: v };
  }
  if ('float' in v) return { name, type: T.FLOAT, f: v.float };
  return { name, type: T.INTS, ints: [...v] };
}

export class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly inits: onnxProto.onnx.ITensorProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly names = new Set<string>();
  private counter = 0;

  constructor(private readonly graphName: string) {}

  private claim(name: string): string {
    if (this.names.has(name)) throw new ThawError('MODEL_ERROR', `ONNX graph ${this.graphName}: value ${name} defined twice`);
    this.names.add(name);
    return name;
  }

  /** A fresh value name with a readable stem. */
  fresh(stem: string): string {
    let name = `${stem}_${this.counter++}`;
    while (this.names.has(name)) name = `${stem}_${this.counter++}`;
    return name;
  }

  /** Declares a graph input (the per-request tensors: feature rows, entity parameters). */
  input(name: string, type: ElemType, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), type, dims));
    return name;
  }

  /** Declares `value` as a graph output named `name` (an Identity node renames it). */
  output(name: string, value: string, type: ElemType, dims: readonly Dim[]): string {
    this.node('Identity', [value], {}, name);
    this.outputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** A float32 initializer (shared parameters baked into the graph). */
  floats(name: string, dims: readonly number[], data: Float32Array | readonly number[]): string {
    const n = dims.reduce((a, d) => a * d, 1);
    if (n !== data.length) throw new ThawError('MODEL_ERROR', `ONNX initializer ${name}: ${data.length} values for [${dims.join(',')}]`);
    const arr = data instanceof Float32Array ? data : Float32Array.from(data);
    // rawData (little-endian bytes) is far smaller and faster than repeated floatData for large tables.
    const raw = new Uint8Array(arr.buffer.slice(arr.byteOffset, arr.byteOffset + arr.byteLength));
    this.inits.push({ name: this.claim(name), dims: [...dims], dataType: ELEM.float32, rawData: raw });
    return name;
  }

  /** An int64 initializer (shapes, axes, indices). */
  ints(name: string, data: readonly number[]): string {
    this.inits.push({ name: this.claim(name), dims: [data.length], dataType: ELEM.int64, int64Data: [...data] });
    return name;
  }

  /** A float32 scalar constant. */
  scalar(value: number, stem = 'c'): string {
    const name = this.fresh(stem);
    this.inits.push({ name: this.claim(name), dims: [], dataType: ELEM.float32, floatData: [value] });
    return name;
  }

  /** Adds a node and returns its output name (`out` or a fresh one). */
  node(op: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, out?: string): string {
    const o = this.claim(out ?? this.fresh(op.toLowerCase()));
    this.nodes.push({
      opType: op,
      name: `${op}_${this.nodes.length}`,
      input: [...inputs],
      output: [o],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return o;
  }

  // Shorthands for the ops the exporters use. Axes-as-input ops follow opset 13.
  matMul(a: string, b: string): string {
    return this.node('MatMul', [a, b]);
  }
  add(a: string, b: string): string {
    return this.node('Add', [a, b]);
  }
  sub(a: string, b: string): string {
    return this.node('Sub', [a, b]);
  }
  mul(a: string, b: string): string {
    return this.node('Mul', [a, b]);
  }
  relu(a: string): string {
    return this.node('Relu', [a]);
  }
  sigmoid(a: string): string {
    return this.node('Sigmoid', [a]);
  }
  reshape(a: string, shape: readonly number[]): string {
    return this.node('Reshape', [a, this.ints(this.fresh('shape'), shape)]);
  }
  reduceSum(a: string, axes: readonly number[], keepdims = false): string {
    return this.node('ReduceSum', [a, this.ints(this.fresh('axes'), axes)], { keepdims: keepdims ? 1 : 0 });
  }
  unsqueeze(a: string, axes: readonly number[]): string {
    return this.node('Unsqueeze', [a, this.ints(this.fresh('axes'), axes)]);
  }
  squeeze(a: string, axes: readonly number[]): string {
    return this.node('Squeeze', [a, this.ints(this.fresh('axes'), axes)]);
  }
  concat(values: readonly string[], axis: number): string {
    return this.node('Concat', values, { axis });
  }
  gather(table: string, idx: string): string {
    return this.node('Gather', [table, idx], { axis: 0 });
  }
  /** Elements [start, end) along `axis`. */
  slice(a: string, axis: number, start: number, end: number): string {
    const s = this.fresh('slice');
    return this.node('Slice', [a, this.ints(`${s}_starts`, [start]), this.ints(`${s}_ends`, [end]), this.ints(`${s}_axes`, [axis])]);
  }

  /** The serialised ModelProto. */
  toBytes(docString = ''): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'thaw',
      producerVersion: '1',
      docString,
      opsetImport: [{ domain: '', version: OPSET }],
      graph: {
        name: this.graphName,
        node: this.nodes,
        initializer: this.inits,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
