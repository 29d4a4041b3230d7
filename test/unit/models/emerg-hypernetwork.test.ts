import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../models/backend.js';
import { Emerg } from '../../../models/emerg.js';
import { EmbeddingTable } from '../../../models/embedding-table.js';
import { DenseAdam } from '../../../models/params.js';
import { metaStep, supervisedStep } from '../../../trainers/steps.js';
import { TINY_LAYOUT, TINY_VOCAB, tinyBatch } from './tiny-data.js';

await initBackend('cpu');

function snapshot(m: Emerg, names: string[]): Float32Array[] {
  return names.map((n) => m.dense.get(n).data.slice());
}

test('EmerG hypernetwork weights get non-zero gradients and change in a meta-step', () => {
  const m = new Emerg({ layout: TINY_LAYOUT, vocab: TINY_VOCAB, dim: 4, seed: 3 });
  const gen = m.generatorParams();
  assert.ok(gen.some((n) => n.startsWith('gen.graph.')) && gen.some((n) => n.startsWith('gen.id.')));
  const support = tinyBatch(24, 6, 1);
  const query = tinyBatch(24, 6, 2);
  // Non-zero gradient of the loss with respect to every hypernetwork weight.
  const grads = tf.tidy(() => {
    const fixed = m.dense.tensors();
    const pooled = m.pooledOf(support);
    const f = (...t: tf.Tensor[]): tf.Scalar => {
      const p = { ...fixed };
      gen.forEach((n, i) => (p[n] = t[i]!));
      const z = m.head(p, { pooled, id: m.generateIdEmb(p, pooled), graph: m.generateGraph(p, pooled) });
      return tf.losses.sigmoidCrossEntropy<tf.Tensor, tf.Scalar>(tf.tensor1d(support.label), z);
    };
    return tf
      .grads(f)(gen.map((n) => fixed[n]!))
      .map((g) => g.abs().sum().dataSync()[0]!);
  });
  grads.forEach((g, i) => assert.ok(g > 0, `zero gradient for ${gen[i]}`));
  const before = snapshot(m, gen);
  metaStep(m, support, query, 6, new DenseAdam(0.01), { trainable: m.dense.names(), trainTable: true, innerLr: 0.1 });
  const after = snapshot(m, gen);
  gen.forEach((n, i) => assert.notDeepEqual(after[i], before[i], `${n} did not change`));
});

test('the graph hypernetwork also learns in supervised (base) steps', () => {
  const m = new Emerg({ layout: TINY_LAYOUT, vocab: TINY_VOCAB, dim: 4, seed: 4 });
  const graphGen = m.generatorParams().filter((n) => n.startsWith('gen.graph.'));
  const before = snapshot(m, graphGen);
  const ids = new EmbeddingTable({ rows: 6, dim: m.width });
  supervisedStep(m, tinyBatch(30, 6, 5), ids, new DenseAdam(0.01), { trainable: m.dense.names().filter((n) => !n.startsWith('gen.id.')), trainTable: true });
  const after = snapshot(m, graphGen);
  graphGen.forEach((n, i) => assert.notDeepEqual(after[i], before[i], `${n} did not change`));
});
