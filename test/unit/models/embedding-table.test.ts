import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../models/backend.js';
import { EmbeddingTable, type SparseOptimizer } from '../../../models/embedding-table.js';
import { Rng } from '../../../models/rng.js';

await initBackend('cpu');

const ROWS = 7;
const DIM = 3;
const IDX = [2, 5, 2, 0, 5, 5]; // duplicates must be summed, rows 1, 3, 4, 6 untouched
const TARGET = [0.3, -0.2, 0.5, 0.1, 0.0, -0.4];

/** loss = Σ_i (row_i · c_i − t_i)²: a non-trivial function of the gathered rows. */
function lossOf(rows: tf.Tensor2D, c: tf.Tensor2D): tf.Scalar {
  return rows.mul(c).sum(1).sub(tf.tensor1d(TARGET)).square().sum();
}

for (const opt of ['adagrad', 'adam', 'sgd'] as SparseOptimizer[]) {
  test(`sparse ${opt} on gathered-row gradients equals a dense reference`, () => {
    const table = new EmbeddingTable({ rows: ROWS, dim: DIM, optimizer: opt, lr: 0.1 }).init(new Rng(1), 0.5);
    const dense = table.data.slice();
    const c = tf.tensor2d(new Rng(2).fillUniform(new Float32Array(IDX.length * DIM), 1), [IDX.length, DIM]);
    // Dense reference: gradient through gather into the whole table (fine on cpu for 7 rows).
    const gDense = tf
      .grads((t: tf.Tensor) => lossOf(tf.gather(t, tf.tensor1d(IDX, 'int32')) as tf.Tensor2D, c))([tf.tensor2d(dense, [ROWS, DIM])])[0]!
      .dataSync();
    const acc = new Float32Array(ROWS * DIM).fill(opt === 'adagrad' ? 1e-8 : 0);
    for (let i = 0; i < dense.length; i++) {
      const r = Math.floor(i / DIM);
      if (!IDX.includes(r)) continue; // untouched rows keep their values (lazy update)
      const g = gDense[i]!;
      if (opt === 'sgd') dense[i] = dense[i]! - 0.1 * g;
      else if (opt === 'adagrad') {
        acc[i] = acc[i]! + g * g;
        dense[i] = dense[i]! - (0.1 * g) / Math.sqrt(acc[i]!);
      } else {
        const m = 0.1 * g;
        const v = 0.001 * g * g;
        dense[i] = dense[i]! - (0.1 * (m / 0.1)) / (Math.sqrt(v / 0.001) + 1e-8);
      }
    }
    // Sparse: gradient with respect to the gathered rows only, then scatter-add.
    const gathered = tf.tensor2d(table.gather(IDX), [IDX.length, DIM]);
    const gRows = tf
      .grads((r: tf.Tensor) => lossOf(r as tf.Tensor2D, c))([gathered])[0]!
      .dataSync() as Float32Array;
    table.applyGradients(IDX, gRows);
    for (let i = 0; i < dense.length; i++) assert.ok(Math.abs(table.data[i]! - dense[i]!) < 1e-6, `${opt} differs at ${i}: ${table.data[i]} vs ${dense[i]}`);
  });
}
