import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../../models/backend.js';
import { trainMeta } from '../../../trainers/meta-trainer.js';
import { TINY_LAYOUT, TINY_VOCAB, tinyBatch } from '../models/tiny-data.js';

await initBackend('cpu');

const data = { layout: TINY_LAYOUT, vocabSize: TINY_VOCAB, hot: tinyBatch(80, 4, 3), hotItemCount: 4 };
const opts = { kind: 'emerg' as const, seed: 5, baseEpochs: 0, metaEpochs: 1, k: 3, tasksPerStep: 2, dim: 4 };

function changed(a: Float32Array, b: Float32Array): boolean {
  return a.some((x, i) => x !== b[i]);
}

test("emerg meta scope 'generators' (default) trains the hypernetworks only; 'all' trains the backbone and table too", async () => {
  const init = await trainMeta(data, { ...opts, metaEpochs: 0 });
  const gen = await trainMeta(data, opts);
  const all = await trainMeta(data, { ...opts, emergMetaScope: 'all' });
  const p = (r: typeof init, n: string): Float32Array => r.model.dense.get(n).data;
  assert.ok(changed(p(gen, 'gen.graph.w1'), p(init, 'gen.graph.w1')), 'graph generator must train');
  assert.ok(changed(p(gen, 'gen.id.w1'), p(init, 'gen.id.w1')) || changed(p(gen, 'gen.id.w2'), p(init, 'gen.id.w2')), 'ID generator must train');
  assert.deepEqual(p(gen, 'gnn.w0'), p(init, 'gnn.w0'));
  assert.deepEqual(p(gen, 'out.weight'), p(init, 'out.weight'));
  assert.deepEqual(gen.model.table.data, init.model.table.data);
  assert.ok(changed(p(all, 'gnn.w0'), p(init, 'gnn.w0')));
  assert.ok(changed(all.model.table.data, init.model.table.data));
});
