import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../../models/backend.js';
import type { CtrModel, EntityParams } from '../../../models/ctr-model.js';
import { selectRows } from '../../../models/ctr-model.js';
import { DeepFm } from '../../../models/deepfm.js';
import { Emerg } from '../../../models/emerg.js';
import { Rng } from '../../../models/rng.js';
import { TINY_LAYOUT, TINY_VOCAB, tinyBatch } from './tiny-data.js';

await initBackend('cpu');

function entities(m: CtrModel, count: number, seed: number): EntityParams {
  const rng = new Rng(seed);
  return { count, idEmb: rng.fillUniform(new Float32Array(count * m.width), 0.3), graph: rng.fillUniform(new Float32Array(count * m.graphSize), 0.5) };
}

for (const make of [() => new DeepFm({ layout: TINY_LAYOUT, vocab: TINY_VOCAB, dim: 4, seed: 9 }), () => new Emerg({ layout: TINY_LAYOUT, vocab: TINY_VOCAB, dim: 4, seed: 9 })]) {
  const model = make();
  test(`${model.kind}: one batched adaptStep over several entities equals per-entity sequential steps`, () => {
    const count = 5;
    // Uneven row counts per entity (entity e has 2 + e rows), interleaved.
    const full = tinyBatch(40, count, 11);
    const keep: number[] = [];
    const seen = new Array<number>(count).fill(0);
    for (let i = 0; i < full.n; i++) {
      const e = full.entity[i]!;
      if (seen[e]! < 2 + e) {
        keep.push(i);
        seen[e]! += 1;
      }
    }
    const batch = selectRows(full, keep);
    const batched = entities(model, count, 3);
    const sequential = { ...batched, idEmb: batched.idEmb.slice(), graph: batched.graph.slice() };
    for (let step = 0; step < 2; step++) model.adaptStep(batch, batched, 0.5);
    for (let e = 0; e < count; e++) {
      const rows = keep.map((_, i) => i).filter((i) => batch.entity[i] === e);
      const one: EntityParams = {
        count: 1,
        idEmb: sequential.idEmb.slice(e * model.width, (e + 1) * model.width),
        graph: sequential.graph.slice(e * model.graphSize, (e + 1) * model.graphSize),
      };
      const sub = { ...selectRows(batch, rows), entity: new Int32Array(rows.length) };
      for (let step = 0; step < 2; step++) model.adaptStep(sub, one, 0.5);
      sequential.idEmb.set(one.idEmb, e * model.width);
      sequential.graph.set(one.graph, e * model.graphSize);
    }
    const start = entities(model, count, 3);
    assert.notDeepEqual(batched.idEmb, start.idEmb, 'adaptation must move the params');
    for (let i = 0; i < batched.idEmb.length; i++) assert.ok(Math.abs(batched.idEmb[i]! - sequential.idEmb[i]!) < 1e-5, `idEmb ${i}`);
    for (let i = 0; i < batched.graph.length; i++) assert.ok(Math.abs(batched.graph[i]! - sequential.graph[i]!) < 1e-5, `graph ${i}`);
    if (model.graphSize > 0) assert.notDeepEqual(batched.graph, start.graph);
  });
}
