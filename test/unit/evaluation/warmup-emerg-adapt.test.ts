import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../../models/backend.js';
import type { RowBatch } from '../../../models/ctr-model.js';
import { buildValidationSplit } from '../../../evaluation/validation.js';
import { DEFAULT_EMERG_ADAPT, runWarmupProtocol } from '../../../evaluation/warmup-protocol.js';
import { TINY_LAYOUT, TINY_VOCAB, tinyBatch } from '../models/tiny-data.js';

await initBackend('cpu');

const empty: RowBatch = { n: 0, featIdx: new Int32Array(0), featW: new Float32Array(0), label: new Float32Array(0), entity: new Int32Array(0) };
// 8 hot items of 90 rows; 3 become the "new" items (20 rows per warm batch, 30 test rows each).
const hot = tinyBatch(720, 8, 3);
const split = buildValidationSplit(
  { layout: TINY_LAYOUT, vocabSize: TINY_VOCAB, hotItems: Array.from({ length: 8 }, (_, i) => i), coldItems: [], hot, warmA: empty, warmB: empty, warmC: empty, test: empty },
  { seed: 1, fraction: 0.375, k: 20 },
);
const train = { baseEpochs: 1, metaEpochs: 1, dim: 4, k: 5 };
const aucs = async (emergAdapt?: typeof DEFAULT_EMERG_ADAPT): Promise<number[]> => {
  const res = await runWarmupProtocol(split, { seeds: [3], models: ['emerg'], train, ...(emergAdapt === undefined ? {} : { emergAdapt }) });
  return res.rows.map((r) => r.auc);
};

test("emerg's warm-up uses its own adaptation (default: Adam 0.01 × 12), not the shared SGD rate and steps", async () => {
  assert.deepEqual(DEFAULT_EMERG_ADAPT, { optimizer: 'adam', lr: 0.01, steps: 12 });
  const byDefault = await aucs();
  const explicit = await aucs({ optimizer: 'adam', lr: 0.01, steps: 12 });
  const sgd = await aucs({ optimizer: 'sgd', lr: 0.3, steps: 5 });
  assert.equal(byDefault.length, 4);
  assert.deepEqual(byDefault, explicit);
  assert.equal(byDefault[0], sgd[0], 'the cold phase does not depend on the warm-up');
  assert.notDeepEqual(byDefault.slice(1), sgd.slice(1));
});
