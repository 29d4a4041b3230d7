import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { initBackend } from '../../../models/backend.js';
import { trainColdNas, type UserTrainData } from '../../../trainers/coldnas-trainer.js';
import { trainFixedAdaptive } from '../../../trainers/fixed-adaptive-trainer.js';
import { TINY_LAYOUT, TINY_VOCAB, tinyBatch } from '../models/tiny-data.js';

await initBackend('cpu');

// 8 users × 30 rows: enough for 10 support + 10 query rows per episode.
const data: UserTrainData = { layout: TINY_LAYOUT, vocabSize: TINY_VOCAB, hot: tinyBatch(240, 8, 31), hotUserCount: 8 };

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'thaw-ckpt-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const coldnas = { seed: 5, searchEpochs: 2, epochs: 2, usersPerStep: 3, supportSizes: [0, 5], queryRows: 5, dim: 4 };

for (const stopAt of [1, 3]) {
  test(`coldnas: killed after epoch ${stopAt} (${stopAt < 2 ? 'search' : 'retrain'} stage), resume equals an uninterrupted run`, async () => {
    await withDir(async (dir) => {
      const full = await trainColdNas(data, coldnas);
      assert.equal(full.epochsDone, 4);
      const first = await trainColdNas(data, { ...coldnas, checkpointDir: dir, stopAfterEpochs: stopAt });
      assert.equal(first.epochsDone, stopAt);
      const resumed = await trainColdNas(data, { ...coldnas, checkpointDir: dir, resume: true });
      assert.equal(resumed.epochsDone, 4);
      assert.deepEqual(resumed.structure, full.structure);
      assert.deepEqual(resumed.alpha, full.alpha);
      assert.deepEqual(resumed.validationUsers, full.validationUsers);
      for (const name of full.model.dense.names()) assert.deepEqual(resumed.model.dense.get(name).data, full.model.dense.get(name).data, name);
      assert.deepEqual(resumed.model.table.data, full.model.table.data);
      // Training moved the weights: a run without epochs differs.
      const fresh = await trainColdNas(data, { ...coldnas, searchEpochs: 0, epochs: 0, structure: full.structure });
      assert.notDeepEqual(fresh.model.table.data, full.model.table.data);
    });
  });
}

const fa = { seed: 6, baseEpochs: 1, epochs: 2, usersPerStep: 3, supportRows: 10, queryRows: 10, dim: 4, fixedLr: 0.01 };

for (const stopAt of [1, 2]) {
  test(`fixed-adaptive: killed after epoch ${stopAt} (${stopAt < 2 ? 'base' : 'meta'} phase), resume equals an uninterrupted run`, async () => {
    await withDir(async (dir) => {
      const full = await trainFixedAdaptive(data, fa);
      assert.equal(full.epochsDone, 3);
      const first = await trainFixedAdaptive(data, { ...fa, checkpointDir: dir, stopAfterEpochs: stopAt });
      assert.equal(first.epochsDone, stopAt);
      const resumed = await trainFixedAdaptive(data, { ...fa, checkpointDir: dir, resume: true });
      assert.equal(resumed.epochsDone, 3);
      for (const name of full.model.meta.names()) assert.deepEqual(resumed.model.meta.get(name).data, full.model.meta.get(name).data, name);
      for (const name of full.model.backbone.dense.names()) assert.deepEqual(resumed.model.backbone.dense.get(name).data, full.model.backbone.dense.get(name).data, name);
      assert.deepEqual(resumed.model.table.data, full.model.table.data);
      const fresh = await trainFixedAdaptive(data, { ...fa, baseEpochs: 0, epochs: 0 });
      assert.notDeepEqual(fresh.model.meta.get('fa.lr').data, full.model.meta.get('fa.lr').data);
    });
  });
}

test('a checkpoint of another trainer, seed or architecture is refused', async () => {
  await withDir(async (dir) => {
    await trainColdNas(data, { ...coldnas, checkpointDir: dir, stopAfterEpochs: 1 });
    await assert.rejects(trainColdNas(data, { ...coldnas, seed: 9, checkpointDir: dir, resume: true }), /coldnas seed 5, not coldnas seed 9/);
    await assert.rejects(trainFixedAdaptive(data, { ...fa, checkpointDir: dir, resume: true }), /not fixed-adaptive/);
    // Another architecture: every array's length is checked.
    await assert.rejects(trainColdNas(data, { ...coldnas, dim: 6, checkpointDir: dir, resume: true }), /checkpoint lacks dense\.cn\.\S+ of length/);
  });
});
