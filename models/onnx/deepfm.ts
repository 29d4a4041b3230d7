/**
 * ONNX export of DeepFM (models/deepfm.ts); with a Meta-Embedding generator (the `metaemb`
 * model) it also outputs `generated_id`, the initial ID embedding of a new item, so serving can
 * initialise cold items from the same graph. The forward mirrors `DeepFm.head` op for op.
 */
import type { DeepFm } from '../deepfm.js';
import { CTR_INPUTS, finishCtrGraph, GEN_OUTPUTS, generateIdOnnx, itemInputOnnx, param, startCtrGraph } from './ctr.js';

export interface DeepFmOnnxOptions {
  /** Graph name. @default 'thaw_deepfm' */
  graphName?: string;
  /** Name of the per-row entity-ID input [batch, D+1]. @default 'entity_id' */
  entityInput?: string;
  /** Add the `generated_id` output when the model has a generator. @default true */
  generator?: boolean;
  /** Model doc string. @default a summary of the sizes */
  docString?: string;
}

/** Serialised `model.onnx` of a DeepFM (or DeepFM + ID generator). */
export function exportDeepFmOnnx(model: DeepFm, opts: DeepFmOnnxOptions = {}): Uint8Array {
  const c = startCtrGraph(model, opts.graphName ?? 'thaw_deepfm', opts.entityInput ?? CTR_INPUTS.entityId);
  const { g } = c;
  const d = model.dim;
  const f = model.numFields;
  const p = (n: string): string => param(g, model, n, c.added);
  const h = g.concat([g.unsqueeze(c.id, [1]), c.pooled], 1); // [B,F,D+1]
  const v = g.slice(h, 2, 0, d);
  const first = g.reduceSum(g.slice(h, 2, d, d + 1), [1, 2]);
  const sumV = g.reduceSum(v, [1]);
  const fm = g.mul(g.reduceSum(g.sub(g.mul(sumV, sumV), g.reduceSum(g.mul(v, v), [1])), [1]), g.scalar(0.5));
  let z = g.reshape(v, [-1, f * d]);
  for (let i = 0; i < model.hidden.length; i++) z = g.relu(g.add(g.matMul(z, p(`fm.w${i}`)), p(`fm.b${i}`)));
  const mlp = g.reshape(g.matMul(z, p('fm.wOut')), [-1]);
  finishCtrGraph(c, g.add(g.add(g.add(mlp, fm), first), p('fm.bias')));
  if (model.generateIdEmb !== undefined && opts.generator !== false) {
    const gen = generateIdOnnx(c, model, itemInputOnnx(g, c.pooled, model.layout.itemFields, model.width));
    g.output(GEN_OUTPUTS.id, gen, 'float32', ['batch', model.width]);
  }
  return g.toBytes(opts.docString ?? `Thaw DeepFM dim=${d} fields=${f} hidden=${model.hidden.join('x')}`);
}
