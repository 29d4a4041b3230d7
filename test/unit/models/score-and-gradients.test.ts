import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initBackend } from '../../../models/backend.js';
import type { EntityParams } from '../../../models/ctr-model.js';
import { DeepFm } from '../../../models/deepfm.js';
import { Emerg } from '../../../models/emerg.js';
import { Rng } from '../../../models/rng.js';
import { TINY_LAYOUT, TINY_VOCAB, tinyBatch } from './tiny-data.js';

await initBackend('cpu');

for (const model of [new DeepFm({ layout: TINY_LAYOUT, vocab: TINY_VOCAB, dim: 4, seed: 3 }), new Emerg({ layout: TINY_LAYOUT, vocab: TINY_VOCAB, dim: 4, seed: 3 })]) {
  test(`${model.kind}: scoreAndGradients gives predict's probabilities and entityGradients' gradients from one pass`, () => {
    const rng = new Rng(4);
    const count = 6;
    const ent: EntityParams = { count, idEmb: rng.fillUniform(new Float32Array(count * model.width), 0.3), graph: rng.fillUniform(new Float32Array(count * model.graphSize), 0.5) };
    const b = tinyBatch(30, count, 8);
    const both = model.scoreAndGradients(b, ent, true);
    const probs = model.predict(b, ent);
    const grads = model.entityGradients(b, ent, true);
    for (let i = 0; i < b.n; i++) assert.ok(Math.abs(both.probs[i]! - probs[i]!) < 1e-6, `prob ${i}`);
    assert.ok(
      both.probs.some((p) => Math.abs(p - 0.5) > 1e-4),
      'not a constant',
    );
    assert.equal(both.loss, grads.loss);
    assert.deepEqual(both.gId, grads.gId);
    assert.deepEqual(both.gGraph, grads.gGraph);
    assert.ok(both.gId.some((g) => g !== 0));
  });
}
