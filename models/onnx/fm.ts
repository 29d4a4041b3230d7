/**
 * ONNX export of the shared factorization machine (models/fm.ts) with the entity's parameters as
 * graph inputs, so one exported graph scores any entity state the serving path holds:
 *
 *   inputs   feat_idx    int32   [batch, slots]   feature-table rows of each example (padding: any valid row)
 *            feat_w      float   [batch, slots]   1 for a real feature, 0 for padding
 *            entity_vec  float   [batch, k]       the adapted entity's vector e (fm-adagrad state [0, k))
 *            entity_bias float   [batch]          its bias b (fm-adagrad state [k])
 *   outputs  logit, prob float   [batch]
 *
 *   z = w0 + Σ x_i w_i + b + ½(‖Σ x_i v_i‖² − Σ x_i²‖v_i‖²) + e·Σ x_i v_i      (x_i = feat_w)
 *
 * With 0/1 weights this is exactly `FactorizationMachine.logit` over the unpadded rows.
 */
import type { FactorizationMachine } from '../fm.js';
import { GraphBuilder } from './graph.js';

export const FM_INPUTS = { featIdx: 'feat_idx', featW: 'feat_w', entityVec: 'entity_vec', entityBias: 'entity_bias' } as const;
export const ONNX_OUTPUTS = { logit: 'logit', prob: 'prob' } as const;

/** Serialised `model.onnx` of `fm`. */
export function exportFmOnnx(fm: FactorizationMachine): Uint8Array {
  const k = fm.k;
  const g = new GraphBuilder('thaw_fm');
  const idx = g.input(FM_INPUTS.featIdx, 'int32', ['batch', 'slots']);
  const x = g.input(FM_INPUTS.featW, 'float32', ['batch', 'slots']);
  const e = g.input(FM_INPUTS.entityVec, 'float32', ['batch', k]);
  const b = g.input(FM_INPUTS.entityBias, 'float32', ['batch']);
  const V = g.floats('fm_v', [fm.buckets, k], fm.v);
  const W = g.floats('fm_w', [fm.buckets], fm.w);
  const w0 = g.floats('fm_w0', [1], [fm.w0]);

  const lin = g.reduceSum(g.mul(g.gather(W, idx), x), [1]); // [B]
  const xv = g.mul(g.gather(V, idx), g.unsqueeze(x, [2])); // [B,S,k]
  const s = g.reduceSum(xv, [1]); // [B,k]
  const sq = g.reduceSum(g.mul(xv, xv), [1, 2]); // [B]
  const pair = g.mul(g.sub(g.reduceSum(g.mul(s, s), [1]), sq), g.scalar(0.5));
  const ent = g.reduceSum(g.mul(e, s), [1]);
  const z = g.add(g.add(g.add(g.add(lin, pair), ent), b), w0);
  g.output(ONNX_OUTPUTS.logit, z, 'float32', ['batch']);
  g.output(ONNX_OUTPUTS.prob, g.sigmoid(z), 'float32', ['batch']);
  return g.toBytes(`Thaw FM k=${k} buckets=${fm.buckets} side=${fm.side} release=${fm.release}`);
}
