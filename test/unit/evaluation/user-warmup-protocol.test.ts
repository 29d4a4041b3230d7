import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../../models/backend.js';
import { runUserWarmupProtocol, USER_WARMUP_MODELS } from '../../../evaluation/user-warmup-protocol.js';
import type { UserWarmupSplit } from '../../../evaluation/user-warmup-split.js';
import { PHASES } from '../../../evaluation/warmup-protocol.js';
import { TINY_LAYOUT, TINY_VOCAB, tinyBatch } from '../models/tiny-data.js';

await initBackend('cpu');

test('the user protocol runs every model through every phase; only the adapting models change after cold', async () => {
  const split: UserWarmupSplit = {
    layout: TINY_LAYOUT,
    vocabSize: TINY_VOCAB,
    hotUsers: [1, 2, 3, 4, 5, 6],
    newUsers: [7, 8, 9, 10],
    hot: tinyBatch(360, 6, 1),
    warmA: tinyBatch(20, 4, 2),
    warmB: tinyBatch(20, 4, 3),
    warmC: tinyBatch(20, 4, 4),
    test: tinyBatch(80, 4, 5),
  };
  const res = await runUserWarmupProtocol(split, {
    seeds: [1],
    baseEpochs: 1,
    coldnas: { searchEpochs: 1, epochs: 1, usersPerStep: 3, supportSizes: [0, 5], queryRows: 5, dim: 4 },
    fixedAdaptive: { epochs: 1, usersPerStep: 3, supportRows: 5, queryRows: 5, dim: 4 },
  });
  assert.equal(res.rows.length, USER_WARMUP_MODELS.length * PHASES.length);
  for (const r of res.rows) {
    assert.ok(r.auc > 0 && r.auc < 1, `${r.model} ${r.phase} auc ${r.auc}`);
    assert.ok(r.f1 >= 0 && r.f1 <= 1);
  }
  const aucOf = (m: string, p: string): number => res.rows.find((r) => r.model === m && r.phase === p)!.auc;
  assert.equal(aucOf('deepfm', 'cold'), aucOf('deepfm', 'warm-c'));
  assert.equal(aucOf('deepfm', 'cold'), aucOf('finetune', 'cold'));
  for (const m of ['finetune', 'coldnas', 'fixed-adaptive']) assert.notEqual(aucOf(m, 'cold'), aucOf(m, 'warm-c'), m);
  assert.equal(res.structures.length, 1);
  assert.equal(res.structures[0]!.structure.ops.length, 4);
});
