import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chunkProgress, decideStart } from '../../../consumers/progress.js';

describe('decideStart (the stored progress against the consumer position)', () => {
  it('no stored progress: keep the committed offset', () => {
    assert.deepEqual(decideStart(undefined, 10, 100), { action: 'keep', reason: 'no-progress' });
  });
  it('progress + 1 = position: in step', () => {
    assert.deepEqual(decideStart(9, 10, 100), { action: 'keep', reason: 'in-step' });
  });
  it('states ahead of the committed offset (crash between state write and commit): seek ahead', () => {
    assert.deepEqual(decideStart(49, 10, 100), { action: 'seek', offset: 50, direction: 'ahead' });
  });
  it('progress up to the last record: seek to the end', () => {
    assert.deepEqual(decideStart(99, 10, 100), { action: 'seek', offset: 100, direction: 'ahead' });
  });
  it('states behind the committed offset (the store lost its last writes): seek back and re-apply', () => {
    assert.deepEqual(decideStart(3, 10, 100), { action: 'seek', offset: 4, direction: 'behind' });
  });
  it("progress past the partition's end (topic recreated): keep, flagged", () => {
    assert.deepEqual(decideStart(500, 0, 20), { action: 'keep', reason: 'beyond-end' });
  });
});

describe('chunkProgress', () => {
  it('is the last offset of a clean chunk', () => {
    assert.equal(chunkProgress([5, 6, 7], []), 7);
  });
  it('stops before the first poison message (dead letters are sent after the state write)', () => {
    assert.equal(chunkProgress([5, 6, 7, 8], [8, 6]), 5);
  });
  it('records nothing when the chunk starts with poison, or is empty', () => {
    assert.equal(chunkProgress([5, 6], [5]), undefined);
    assert.equal(chunkProgress([], []), undefined);
  });
});
