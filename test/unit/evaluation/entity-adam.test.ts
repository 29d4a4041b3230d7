import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EntityAdam } from '../../../evaluation/entity-adam.js';
import { initBackend } from '../../../models/backend.js';
import type { EntityParams } from '../../../models/ctr-model.js';
import { selectRows } from '../../../models/ctr-model.js';
import { Emerg } from '../../../models/emerg.js';
import { Rng } from '../../../models/rng.js';
import { TINY_LAYOUT, TINY_VOCAB, tinyBatch } from '../models/tiny-data.js';

await initBackend('cpu');

const model = new Emerg({ layout: TINY_LAYOUT, vocab: TINY_VOCAB, dim: 4, seed: 9 });

function entities(count: number, seed: number): EntityParams {
  const rng = new Rng(seed);
  return { count, idEmb: rng.fillUniform(new Float32Array(count * model.width), 0.3), graph: rng.fillUniform(new Float32Array(count * model.graphSize), 0.5) };
}

test('EntityAdam: the first step moves every param with a non-zero gradient by lr against its sign', () => {
  const batch = tinyBatch(30, 3, 5);
  const ent = entities(3, 1);
  const before = { id: ent.idEmb.slice(), graph: ent.graph.slice() };
  const { gId, gGraph } = model.entityGradients(batch, ent, true);
  new EntityAdam(model, ent, { lr: 0.01, graphLrScale: 0.5 }).step(batch);
  const check = (p: Float32Array, p0: Float32Array, g: Float32Array, lr: number): void => {
    for (let i = 0; i < g.length; i++) {
      if (Math.abs(g[i]!) < 1e-4) continue; // ε (1e-8) matters for tinier gradients
      assert.ok(Math.abs(p[i]! - (p0[i]! - lr * Math.sign(g[i]!))) < 1e-5, `param ${i}: ${p[i]} vs ${p0[i]! - lr * Math.sign(g[i]!)}`);
    }
  };
  check(ent.idEmb, before.id, gId, 0.01);
  check(ent.graph, before.graph, gGraph, 0.005);
});

test('EntityAdam: one batched optimiser over several entities equals one optimiser per entity', () => {
  const count = 4;
  const batches = [tinyBatch(24, count, 11), tinyBatch(24, count, 12)];
  const batched = entities(count, 3);
  const start = entities(count, 3);
  const opt = new EntityAdam(model, batched, { lr: 0.02 });
  for (const b of batches) for (let s = 0; s < 3; s++) opt.step(b);
  assert.equal(opt.steps, 6);
  for (let e = 0; e < count; e++) {
    const one: EntityParams = {
      count: 1,
      idEmb: start.idEmb.slice(e * model.width, (e + 1) * model.width),
      graph: start.graph.slice(e * model.graphSize, (e + 1) * model.graphSize),
    };
    const own = new EntityAdam(model, one, { lr: 0.02 });
    for (const b of batches) {
      const rows = [...b.entity.keys()].filter((i) => b.entity[i] === e);
      const sub = { ...selectRows(b, rows), entity: new Int32Array(rows.length) };
      for (let s = 0; s < 3; s++) own.step(sub);
    }
    for (let i = 0; i < model.width; i++) assert.ok(Math.abs(batched.idEmb[e * model.width + i]! - one.idEmb[i]!) < 1e-5, `entity ${e} id ${i}`);
    for (let i = 0; i < model.graphSize; i++) assert.ok(Math.abs(batched.graph[e * model.graphSize + i]! - one.graph[i]!) < 1e-5, `entity ${e} graph ${i}`);
  }
  assert.notDeepEqual(batched.idEmb, start.idEmb);
});

test('EntityAdam: rejects a non-positive learning rate', () => {
  assert.throws(() => new EntityAdam(model, entities(1, 1), { lr: 0 }), /lr/);
});
