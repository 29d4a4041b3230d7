/**
 * ONNX exports of the user cold-start models (models/coldnas.ts, models/fixed-adaptive.ts). The
 * user's per-entity state is the graph input:
 *
 *   coldnas         user_state     float [batch, C]  the running mean of the user's interaction encodings
 *   fixed-adaptive  user_adaptive  float [batch, D+1] the user's ID embedding (D) and first-order weight (1)
 *
 * next to `feat_idx` / `feat_w` (see ctr.ts). ColdNAS exports only with a fixed (searched)
 * structure: the supernet's mixture is a training-time device.
 */
import { ThawError } from '../../lib/errors.js';
import { LEAKY } from '../coldnas-common.js';
import { COLDNAS_OPS, type ColdNas } from '../coldnas.js';
import type { FixedAdaptive } from '../fixed-adaptive.js';
import { param, pooledFields } from './ctr.js';
import { exportDeepFmOnnx } from './deepfm.js';
import { GraphBuilder } from './graph.js';
import { at } from '../../lib/at.js';

export const USER_INPUTS = { coldnasState: 'user_state', adaptive: 'user_adaptive' } as const;

function leaky(g: GraphBuilder, x: string): string {
  return g.node('LeakyRelu', [x], { alpha: { float: LEAKY } });
}

function finish(g: GraphBuilder, z: string): void {
  g.output('logit', z, 'float32', ['batch']);
  g.output('prob', g.sigmoid(z), 'float32', ['batch']);
}

/** Serialised `model.onnx` of a ColdNAS model with a chosen structure. */
export function exportColdNasOnnx(model: ColdNas): Uint8Array {
  const structure = model.structure;
  if (structure === undefined) throw new ThawError('MODEL_ERROR', 'ColdNAS export needs a chosen structure (still a supernet)');
  const g = new GraphBuilder('thaw_coldnas');
  const added = new Set<string>();
  const p = (n: string): string => param(g, model, n, added);
  const dense = (i: number | string, x: string): string => g.add(g.matMul(x, p(`cn.w${i}`)), p(`cn.b${i}`));
  const f1 = model.layout.fieldNames.length - 1;
  const fields = g.reshape(pooledFields(g, model.table, model.layout), [-1, f1 * model.dim]);
  const mean = g.input(USER_INPUTS.coldnasState, 'float32', ['batch', model.contextDim]);
  const mod = g.add(g.matMul(mean, p('cn.mod.w')), p('cn.mod.b')); // [B, 4·modDim]
  const one = g.scalar(1);
  const modulate = (x: string, pos: number): string => {
    const op = COLDNAS_OPS.indexOf(at(structure.ops, pos, 'structure.ops'));
    let off = 0;
    for (let i = 0; i < pos; i++) off += at(model.positionDims, i, 'model.positionDims');
    const start = op * model.modDim + off;
    const q = g.slice(mod, 1, start, start + at(model.positionDims, pos, 'model.positionDims'));
    if (op === 0) return g.node('Max', [x, q]);
    if (op === 1) return g.node('Min', [x, q]);
    if (op === 2) return g.mul(x, g.add(q, one));
    return g.add(x, q);
  };
  let x = modulate(fields, 0);
  for (let i = 0; i < 3; i++) x = modulate(dense(i, leaky(g, x)), i + 1);
  finish(g, g.reshape(dense('Out', leaky(g, x)), [-1]));
  return g.toBytes(`Thaw ColdNAS ops=${structure.ops.join(',')}`);
}

/**
 * Serialised `model.onnx` of the fixed/adaptive split: the DeepFM backbone's graph with the user's
 * adaptive params (its ID embedding and first-order weight, the backbone's entity row) as the
 * `user_adaptive` input. Only logit and prob: a new user starts at `fa.init`, which the release's
 * weights carry, so the graph needs no generator.
 */
export function exportFixedAdaptiveOnnx(model: FixedAdaptive): Uint8Array {
  const bb = model.backbone;
  return exportDeepFmOnnx(bb, {
    graphName: 'thaw_fixed_adaptive',
    entityInput: USER_INPUTS.adaptive,
    generator: false,
    docString: `Thaw fixed/adaptive dim=${bb.dim} adaptive=${model.adaptiveSize} hidden=${bb.hidden.join('x')}`,
  });
}
