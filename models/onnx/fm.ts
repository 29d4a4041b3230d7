/**
 * ONNX export of the shared factorization machine (models/fm.ts) with both entities' views as graph
 * inputs, so one exported graph scores any pair of entity states the serving path holds:
 *
 *   inputs   feat_idx    int32   [batch, slots]   feature-table rows of each example (padding: any valid row)
 *            feat_w      float   [batch, slots]   1 for a real feature, 0 for padding
 *            user_view   float   [batch, k + 2]   the user's view [b, variance, e] (fm-adagrad state [0, k+2))
 *            item_view   float   [batch, k + 2]   the item's view
 *   and, when the model has a cross term (`crossBuckets` > 0):
 *            cross_idx   int32   [batch, pairs]   cross-table rows of each example (`FactorizationMachine.crossRowsOf`)
 *            cross_w     float   [batch, pairs]   1 for a real pair, 0 for padding
 *   outputs  logit, prob float   [batch]
 *
 *   z = w0 + Σ x_i w_i + ½(‖S‖² − Σ x_i²‖v_i‖²) + b_u + b_i + e_u·(S + e_i) + e_i·S [+ Σ x_p c_p],  S = Σ x_i v_i  (x = the weights)
 *
 * With 0/1 weights this is exactly `FactorizationMachine.logit` over the unpadded rows.
 */
import type { FactorizationMachine } from '../fm.js';
import { viewSize, VIEW_BIAS, VIEW_VECTOR } from '../fm.js';
import { GraphBuilder } from './graph.js';

export const FM_INPUTS = { featIdx: 'feat_idx', featW: 'feat_w', userView: 'user_view', itemView: 'item_view' } as const;
export const FM_CROSS_INPUTS = { crossIdx: 'cross_idx', crossW: 'cross_w' } as const;

/** The graph inputs of `fm`'s export. */
export function fmOnnxInputs(fm: FactorizationMachine): string[] {
  return [...Object.values(FM_INPUTS), ...(fm.crossBuckets > 0 ? Object.values(FM_CROSS_INPUTS) : [])];
}
export const ONNX_OUTPUTS = { logit: 'logit', prob: 'prob' } as const;

/** Serialised `model.onnx` of `fm`. */
export function exportFmOnnx(fm: FactorizationMachine): Uint8Array {
  const k = fm.k;
  const g = new GraphBuilder('thaw_fm');
  const idx = g.input(FM_INPUTS.featIdx, 'int32', ['batch', 'slots']);
  const x = g.input(FM_INPUTS.featW, 'float32', ['batch', 'slots']);
  const uv = g.input(FM_INPUTS.userView, 'float32', ['batch', viewSize(k)]);
  const iv = g.input(FM_INPUTS.itemView, 'float32', ['batch', viewSize(k)]);
  const V = g.floats('fm_v', [fm.buckets, k], fm.v);
  const W = g.floats('fm_w', [fm.buckets], fm.w);
  const w0 = g.floats('fm_w0', [1], [fm.w0]);

  const lin = g.reduceSum(g.mul(g.gather(W, idx), x), [1]); // [B]
  const xv = g.mul(g.gather(V, idx), g.unsqueeze(x, [2])); // [B,S,k]
  const s = g.reduceSum(xv, [1]); // [B,k]
  const sq = g.reduceSum(g.mul(xv, xv), [1, 2]); // [B]
  const pair = g.mul(g.sub(g.reduceSum(g.mul(s, s), [1]), sq), g.scalar(0.5));
  const bu = g.squeeze(g.slice(uv, 1, VIEW_BIAS, VIEW_BIAS + 1), [1]); // [B]
  const bi = g.squeeze(g.slice(iv, 1, VIEW_BIAS, VIEW_BIAS + 1), [1]);
  const eu = g.slice(uv, 1, VIEW_VECTOR, VIEW_VECTOR + k); // [B,k]
  const ei = g.slice(iv, 1, VIEW_VECTOR, VIEW_VECTOR + k);
  const ent = g.add(g.reduceSum(g.mul(eu, g.add(s, ei)), [1]), g.reduceSum(g.mul(ei, s), [1]));
  let z = g.add(g.add(g.add(g.add(g.add(lin, pair), ent), bu), bi), w0);
  if (fm.crossBuckets > 0) {
    const cIdx = g.input(FM_CROSS_INPUTS.crossIdx, 'int32', ['batch', 'pairs']);
    const cW = g.input(FM_CROSS_INPUTS.crossW, 'float32', ['batch', 'pairs']);
    const C = g.floats('fm_c', [fm.crossBuckets], fm.c);
    z = g.add(z, g.reduceSum(g.mul(g.gather(C, cIdx), cW), [1]));
  }
  g.output(ONNX_OUTPUTS.logit, z, 'float32', ['batch']);
  g.output(ONNX_OUTPUTS.prob, g.sigmoid(z), 'float32', ['batch']);
  return g.toBytes(`Thaw FM k=${k} buckets=${fm.buckets} crossBuckets=${fm.crossBuckets} two-sided release=${fm.release}`);
}
