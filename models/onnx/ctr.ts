/**
 * What the ONNX exports of the CtrModel family (DeepFM, Meta-Embedding, EmerG) share: the
 * per-request inputs, the feature pooling, the item-ID generator, and the dense params baked in
 * as initializers under their ParamSet names.
 *
 *   inputs  feat_idx   int32  [batch, slots]   feature-table rows (RowBatch.featIdx)
 *           feat_w     float  [batch, slots]   pooling weights (RowBatch.featW; 0 for padding)
 *           entity_id  float  [batch, width]   the item's ID embedding (its entity parameter)
 *           entity_graph float [batch, F, F]   the item graph (EmerG only)
 */
import { poolingMatrix, type CtrModel, type FieldLayout } from '../ctr-model.js';
import type { EmbeddingTable } from '../embedding-table.js';
import type { ParamSet } from '../params.js';
import { GraphBuilder } from './graph.js';
import { at } from '../../lib/at.js';

export const CTR_INPUTS = { featIdx: 'feat_idx', featW: 'feat_w', entityId: 'entity_id', entityGraph: 'entity_graph' } as const;
/** Extra outputs for cold entities: the generated initial parameters, when the model has generators. */
export const GEN_OUTPUTS = { id: 'generated_id', graph: 'generated_graph' } as const;

/** Adds dense param `name` of `model` as an initializer (once) and returns its value name. */
export function param(g: GraphBuilder, model: { dense: ParamSet }, name: string, added: Set<string>): string {
  if (!added.has(name)) {
    const p = model.dense.get(name);
    g.floats(name, p.shape, p.data);
    added.add(name);
  }
  return name;
}

export interface CtrGraphStart {
  g: GraphBuilder;
  /** Pooled non-ID field embeddings [B, F-1, W]. */
  pooled: string;
  /** Item-ID embedding per row [B, W]. */
  id: string;
  added: Set<string>;
}

/**
 * Declares `feat_idx` and `feat_w`, bakes in the table, and pools the slots into fields
 * [B, F-1, W] exactly as `pool()` in ctr-model.ts.
 */
export function pooledFields(g: GraphBuilder, table: EmbeddingTable, layout: FieldLayout): string {
  const s = layout.slotField.length;
  const idx = g.input(CTR_INPUTS.featIdx, 'int32', ['batch', s]);
  const fw = g.input(CTR_INPUTS.featW, 'float32', ['batch', s]);
  const t = g.floats('table', [table.rows, table.dim], table.data);
  const pm = g.floats('pooling', [layout.fieldNames.length - 1, s], poolingMatrix(layout));
  const weighted = g.mul(g.gather(t, idx), g.unsqueeze(fw, [2])); // [B,S,W]
  return g.matMul(pm, weighted); // [F-1,S] @ [B,S,W] broadcasts to [B,F-1,W]
}

/**
 * Declares the shared inputs and pools the feature rows exactly as `CtrModel.pooledOf`.
 * `entityInput` names the per-row entity-ID input (the fixed/adaptive user model calls it `user_adaptive`).
 */
export function startCtrGraph(model: CtrModel, name: string, entityInput: string = CTR_INPUTS.entityId): CtrGraphStart {
  const g = new GraphBuilder(name);
  const pooled = pooledFields(g, model.table, model.layout);
  const id = g.input(entityInput, 'float32', ['batch', model.width]);
  return { g, pooled, id, added: new Set() };
}

/** Item-field input of the generators [B, k·W], as `itemInput` in meta-embedding.ts. */
export function itemInputOnnx(g: GraphBuilder, pooled: string, itemFields: readonly number[], width: number): string {
  const parts = itemFields.map((f) => g.reshape(g.slice(pooled, 1, f - 1, f), [-1, width]));
  return parts.length === 1 ? at(parts, 0, 'parts') : g.concat(parts, 1);
}

/** The Meta-Embedding generator `generateId` [B, out] from item input x. */
export function generateIdOnnx(c: CtrGraphStart, model: CtrModel, x: string, prefix = 'gen.id'): string {
  const p = (n: string): string => param(c.g, model, `${prefix}.${n}`, c.added);
  const h = c.g.relu(c.g.add(c.g.matMul(x, p('w1')), p('b1')));
  return c.g.add(c.g.matMul(h, p('w2')), p('b2'));
}

/** Declares logit and prob outputs from logits [B]. */
export function finishCtrGraph(c: CtrGraphStart, z: string): void {
  c.g.output('logit', z, 'float32', ['batch']);
  c.g.output('prob', c.g.sigmoid(z), 'float32', ['batch']);
}
