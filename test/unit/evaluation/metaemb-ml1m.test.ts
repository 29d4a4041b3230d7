import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildMetaEmbSplit, isMetaEmbDir, K, METAEMB_SIZES, TEST_FILES, TRAIN_FILES } from '../../../evaluation/metaemb-ml1m.js';
import { formatWarmupTable, runWarmupProtocol } from '../../../evaluation/warmup-protocol.js';

// MovieLens may not be redistributed: the test reads the shared copy outside the repository.
const DIR = process.env.THAW_ML1M_METAEMB ?? path.resolve(import.meta.dirname, '../../../../shared/data/ml-1m-metaemb');
const ML100K = path.resolve(import.meta.dirname, '../../../../shared/data/ml-100k');

test('the Meta-Embedding ML-1M split has the published sizes', () => {
  assert.ok(isMetaEmbDir(DIR));
  const s = buildMetaEmbSplit(DIR);
  assert.equal(s.hotItems.length, METAEMB_SIZES.oldItems);
  assert.equal(s.hotItems.length, 1_058);
  assert.equal(s.coldItems.length, 1_127);
  assert.equal(s.hot.n, 4 * 1_058 * K);
  for (const b of [s.warmA, s.warmB, s.test]) assert.equal(b.n, 1_127 * K);
  for (const f of TRAIN_FILES) assert.equal(s.rowsPerFile[f], 21_160);
  for (const f of TEST_FILES) assert.equal(s.rowsPerFile[f], 22_540);
  // Every new item has exactly K rows in each batch; every old item 4·K hot rows.
  for (const b of [s.warmA, s.warmB, s.test]) {
    const per = new Array<number>(s.coldItems.length).fill(0);
    for (const e of b.entity) per[e]! += 1;
    assert.ok(per.every((c) => c === K));
  }
  const hotPer = new Array<number>(s.hotItems.length).fill(0);
  for (const e of s.hot.entity) hotPer[e]! += 1;
  assert.ok(hotPer.every((c) => c === 4 * K));
  assert.equal(s.layout.fieldNames.length, 8);
  assert.equal(s.layout.slotField.length, s.hot.featIdx.length / s.hot.n);
  // Labels are 0/1 and both occur; every encoded slot is inside the vocabulary.
  assert.ok(s.test.label.some((y) => y === 1) && s.test.label.some((y) => y === 0));
  assert.ok(s.hot.featIdx.every((r) => r >= 0 && r < s.vocabSize));
});

test('format detection: a MovieLens-100K directory is not the Meta-Embedding split', () => {
  assert.equal(isMetaEmbDir(ML100K), false);
});

test('a copy with the wrong sizes is refused with DATA_FORMAT', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'thaw-metaemb-'));
  try {
    const header = 'UserID\tMovieID\ty\tGender\tAge\tOccupation\tYear\tTitle\tGenres\n';
    for (const f of [...TRAIN_FILES, ...TEST_FILES]) {
      const item = f.startsWith('train') ? 1 : 2;
      writeFileSync(path.join(dir, f), header + `1\t${item}\t1\t0\t1\t2\t3\t4 5\t6\n`);
    }
    assert.ok(isMetaEmbDir(dir));
    assert.throws(
      () => buildMetaEmbSplit(dir),
      (e: unknown) => (e as { code?: string }).code === 'DATA_FORMAT',
    );
    const s = buildMetaEmbSplit(dir, { assertSizes: false });
    assert.equal(s.hot.n, 4);
    assert.equal(s.test.n, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the protocol on a split without a third warm batch reports cold, warm-a and warm-b only', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'thaw-metaemb-'));
  try {
    const header = 'UserID\tMovieID\ty\tGender\tAge\tOccupation\tYear\tTitle\tGenres\n';
    for (const f of [...TRAIN_FILES, ...TEST_FILES]) {
      const rows = f.startsWith('train') ? ['1\t10\t1\t0\t1\t2\t3\t4 5\t6', '2\t11\t0\t1\t2\t3\t4\t7\t8 6'] : ['3\t20\t1\t0\t1\t2\t3\t9\t6', '4\t21\t0\t1\t1\t2\t5\t4\t8'];
      writeFileSync(path.join(dir, f), header + rows.join('\n') + '\n');
    }
    const split = buildMetaEmbSplit(dir, { assertSizes: false });
    const res = await runWarmupProtocol(split, { seeds: [1], models: ['finetune'], adaptSteps: 1, train: { baseEpochs: 1, metaEpochs: 0 } });
    assert.deepEqual(
      res.rows.map((r) => r.phase),
      ['cold', 'warm-a', 'warm-b'],
    );
    const table = formatWarmupTable(res.rows);
    assert.ok(table.includes('warm-b AUC') && !table.includes('warm-c'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
