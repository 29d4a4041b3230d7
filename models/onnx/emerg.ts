/**
 * ONNX export of EmerG (models/emerg.ts): the item-ID embedding and the item graph are inputs
 * (the item's adapted parameters); the hypernetwork's generated graph and ID embedding are extra
 * outputs for cold items. The forward mirrors `Emerg.head` op for op (same reshapes, the same
 * broadcast-and-sum attention), which is what keeps the parity within float32 rounding.
 */
import type { Emerg } from '../emerg.js';
import { CTR_INPUTS, finishCtrGraph, GEN_OUTPUTS, generateIdOnnx, itemInputOnnx, param, startCtrGraph } from './ctr.js';
import { at } from '../../lib/at.js';

/** Query/key size of the layer attention; must equal ATT_DIM in models/emerg.ts (checked via att.wq's shape). */
function attDim(model: Emerg): number {
  return at(model.dense.get('att.wq').shape, 1, "model.dense.get('att.wq').shape");
}

/** Serialised `model.onnx` of an EmerG model. */
export function exportEmergOnnx(model: Emerg): Uint8Array {
  const c = startCtrGraph(model, 'thaw_emerg');
  const { g } = c;
  const f = model.numFields;
  const d = model.dim;
  const t = model.layers + 1;
  const a = attDim(model);
  const p = (n: string): string => param(g, model, n, c.added);
  const graph = g.input(CTR_INPUTS.entityGraph, 'float32', ['batch', f, f]);

  const full = g.concat([g.unsqueeze(c.id, [1]), c.pooled], 1); // [B,F,W]
  // With DeepFM's first-order term each row carries its weight in column D (W = D+1).
  const firstOrder = model.width === d + 1;
  const h0 = firstOrder ? g.slice(full, 2, 0, d) : full;
  const first = firstOrder ? g.reduceSum(g.slice(full, 2, d, d + 1), [1, 2]) : undefined;
  const flat0 = g.reshape(h0, [-1, d]);
  const hs = [h0];
  let h = h0;
  for (let l = 0; l < model.layers; l++) {
    let al = g.matMul(graph, g.reshape(g.matMul(flat0, p(`gnn.w${l}`)), [-1, f, d]));
    if (l !== model.layers - 1) al = g.node('LeakyRelu', [al], { alpha: { float: 0.01 } });
    h = g.mul(al, h);
    hs.push(h);
  }
  const stacked = g.concat(
    hs.map((x) => g.unsqueeze(x, [1])),
    1,
  ); // [B,T,F,D]
  const tokens = g.reshape(stacked, [-1, f * d]);
  let mixed: string;
  if (model.readout === 'fields') {
    // Attention among the T·F (layer, field) tokens (Emerg.fieldReadout).
    const n = t * f;
    const q = g.reshape(g.matMul(tokens, p('att.wq')), [-1, n, d]);
    const k = g.reshape(g.matMul(tokens, p('att.wk')), [-1, n, d]);
    const kT = g.node('Transpose', [k], { perm: [0, 2, 1] });
    const att = g.node('Softmax', [g.node('Div', [g.matMul(q, kT), g.scalar(Math.sqrt(d))])], { axis: -1 }); // [B,TF,TF]
    const v = g.reshape(g.matMul(g.reshape(stacked, [-1, d]), p('att.wv')), [-1, n, d]);
    mixed = g.matMul(att, v); // [B,TF,D]
  } else {
    const q = g.reshape(g.matMul(tokens, p('att.wq')), [-1, t, 1, a]);
    const k = g.reshape(g.matMul(tokens, p('att.wk')), [-1, 1, t, a]);
    const att = g.node('Softmax', [g.node('Div', [g.reduceSum(g.mul(q, k), [3]), g.scalar(Math.sqrt(a))])], { axis: -1 }); // [B,T,T]
    const v = g.reshape(g.matMul(g.reshape(stacked, [-1, d]), p('att.wv')), [-1, 1, t, f * d]);
    mixed = g.reduceSum(g.mul(g.unsqueeze(att, [3]), v), [2]); // [B,T,F·D]
  }
  const o = g.add(g.matMul(g.reshape(mixed, [-1, d]), p('att.wres')), p('att.bres'));
  const fin = g.relu(g.reduceSum(g.reshape(g.relu(o), [-1, t, f, d]), [1])); // [B,F,D]
  const score = g.reshape(g.matMul(g.reshape(fin, [-1, d]), p('out.score')), [-1, f]);
  const weight = g.sigmoid(g.matMul(g.reshape(fin, [-1, f * d]), p('out.weight')));
  const logit = g.add(g.reduceSum(g.mul(weight, score), [1]), p('out.bias'));
  finishCtrGraph(c, first === undefined ? logit : g.add(logit, first));

  // Cold-item parameters from the hypernetworks (generateGraph / generateIdEmb).
  const x = itemInputOnnx(g, c.pooled, model.layout.itemFields, model.width);
  const xs = g.unsqueeze(x, [0]); // [1,B,in] broadcasts against the per-field weights [F,in,gh]
  const h1 = g.relu(g.add(g.matMul(xs, p('gen.graph.w1')), p('gen.graph.b1')));
  const h2 = g.relu(g.add(g.matMul(h1, p('gen.graph.w2')), p('gen.graph.b2')));
  const rows = g.add(g.matMul(h2, p('gen.graph.w3')), p('gen.graph.b3')); // [F,B,F]
  g.output(GEN_OUTPUTS.graph, g.node('Transpose', [rows], { perm: [1, 0, 2] }), 'float32', ['batch', f, f]);
  g.output(GEN_OUTPUTS.id, generateIdOnnx(c, model, x), 'float32', ['batch', model.width]);
  return g.toBytes(`Thaw EmerG dim=${d} fields=${f} layers=${model.layers}`);
}
