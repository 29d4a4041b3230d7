/** A tiny synthetic item cold-start data set for model tests (cpu backend, deterministic). */
import type { FieldLayout, RowBatch } from '../../../models/ctr-model.js';
import { Rng } from '../../../models/rng.js';

/** F = 5: item, user, gender, year, genres (bag of 2 slots); item fields = year, genres. */
export const TINY_LAYOUT: FieldLayout = {
  fieldNames: ['item', 'user', 'gender', 'year', 'genres'],
  slotField: Int32Array.from([1, 2, 3, 4, 4]),
  itemFields: [3, 4],
};
export const TINY_VOCAB = 40;

/** n rows over `entities` entities; slot rows drawn per field range; the second genre slot sometimes padding. */
export function tinyBatch(n: number, entities: number, seed: number): RowBatch {
  const rng = new Rng(seed);
  const s = TINY_LAYOUT.slotField.length;
  const featIdx = new Int32Array(n * s);
  const featW = new Float32Array(n * s);
  const label = new Float32Array(n);
  const entity = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const e = i % entities;
    entity[i] = e;
    featIdx[i * s] = 1 + rng.int(10); // user
    featIdx[i * s + 1] = 11 + rng.int(2); // gender
    featIdx[i * s + 2] = 13 + (e % 5); // year: an item feature
    featIdx[i * s + 3] = 20 + (e % 7);
    const two = e % 2 === 0;
    featIdx[i * s + 4] = two ? 30 + (e % 3) : 0;
    featW[i * s] = 1;
    featW[i * s + 1] = 1;
    featW[i * s + 2] = 1;
    featW[i * s + 3] = two ? 0.5 : 1;
    featW[i * s + 4] = two ? 0.5 : 0;
    label[i] = rng.next() < 0.3 + 0.1 * (e % 4) ? 1 : 0;
  }
  return { n, featIdx, featW, label, entity };
}
