import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { initBackend } from '../../../models/backend.js';
import { trainMeta, type TrainData, type TrainKind } from '../../../trainers/meta-trainer.js';
import { TINY_LAYOUT, TINY_VOCAB, tinyBatch } from './tiny-data.js';

await initBackend('cpu');

const data: TrainData = { layout: TINY_LAYOUT, vocabSize: TINY_VOCAB, hot: tinyBatch(120, 4, 21), hotItemCount: 4 };

for (const kind of ['emerg', 'metaemb'] as TrainKind[]) {
  test(`${kind}: resume after a kill gives the same weights as an uninterrupted run`, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'thaw-ckpt-'));
    try {
      const common = { kind, seed: 5, baseEpochs: 1, metaEpochs: 2, batchSize: 32, k: 5, tasksPerStep: 2, dim: 4 };
      const full = await trainMeta(data, common);
      // Killed after the base epoch and the first meta epoch, then restarted with --resume.
      const first = await trainMeta(data, { ...common, checkpointDir: dir, stopAfterEpochs: 2 });
      assert.equal(first.epochsDone, 2);
      const resumed = await trainMeta(data, { ...common, checkpointDir: dir, resume: true });
      assert.equal(resumed.epochsDone, 3);
      for (const name of full.model.dense.names()) {
        assert.deepEqual(resumed.model.dense.get(name).data, full.model.dense.get(name).data, name);
      }
      assert.deepEqual(resumed.model.table.data, full.model.table.data);
      assert.deepEqual(resumed.idTable.data, full.idTable.data);
      // And training actually moved the weights from their initialisation.
      const fresh = await trainMeta(data, { ...common, baseEpochs: 0, metaEpochs: 0 });
      assert.notDeepEqual(full.model.table.data, fresh.model.table.data);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
