import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { buildUserWarmupSplit, USER_K, USER_SPLIT_SIZES } from '../../../evaluation/user-warmup-split.js';

// MovieLens may not be redistributed: the test reads the shared copy outside the repository.
const DIR = process.env.THAW_ML100K ?? path.resolve(import.meta.dirname, '../../../../shared/data/ml-100k');

test('the MovieLens-100K user warm-up split has the documented sizes', () => {
  const s = buildUserWarmupSplit(DIR);
  assert.deepEqual(USER_SPLIT_SIZES, { hotUsers: 148, hotRows: 43_922, newUsers: 349, warmRows: 6_980, testRows: 19_734 });
  assert.equal(s.hotUsers.length, USER_SPLIT_SIZES.hotUsers);
  assert.equal(s.hot.n, USER_SPLIT_SIZES.hotRows);
  assert.equal(s.newUsers.length, USER_SPLIT_SIZES.newUsers);
  for (const b of [s.warmA, s.warmB, s.warmC]) assert.equal(b.n, USER_SPLIT_SIZES.warmRows);
  assert.equal(s.test.n, USER_SPLIT_SIZES.testRows);
  // Every new user has exactly K rows in each warm batch and at least none in test; hot and new users are disjoint.
  const per = new Array<number>(s.newUsers.length).fill(0);
  for (const e of s.warmC.entity) per[e]! += 1;
  assert.ok(per.every((c) => c === USER_K));
  assert.equal(new Set([...s.hotUsers, ...s.newUsers]).size, s.hotUsers.length + s.newUsers.length);
  // Field 0 is the user (entity); slot 0 is the item ID, a feature row after the shared vocabulary.
  assert.equal(s.layout.fieldNames[0], 'user');
  assert.equal(s.layout.fieldNames[1], 'item');
  const slots = s.layout.slotField.length;
  for (let i = 0; i < s.test.n; i += 97) assert.ok(s.test.featIdx[i * slots]! < s.vocabSize && s.test.featIdx[i * slots]! > 0);
});
