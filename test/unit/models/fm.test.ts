import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FactorizationMachine, mulberry32, viewSize, VIEW_BIAS, VIEW_VARIANCE, VIEW_VECTOR } from '../../../models/fm.js';
import { ThawError } from '../../../lib/errors.js';

function randomModel(): FactorizationMachine {
  const fm = FactorizationMachine.create({ buckets: 64, k: 4, seed: 3, initStd: 0.3, release: 'r-1' });
  const rand = mulberry32(9);
  fm.w0 = -0.4;
  for (let i = 0; i < fm.w.length; i++) fm.w[i] = rand() - 0.5;
  fm.priors.user.vector.set([0.1, -0.2, 0.3, 0.05]);
  fm.priors.user.bias = -0.25;
  fm.priors.user.biasVariance = 0.4;
  fm.priors.user.biasDrift = 0.01;
  fm.priors.item.vector.set([-0.3, 0.2, 0.1, 0.4]);
  fm.priors.item.bias = 0.15;
  fm.priors.item.biasVariance = 0.7;
  fm.priors.item.biasDrift = 0.002;
  return fm;
}

const idx = Int32Array.from([3, 17, 17, 40, 63]); // a repeated row counts twice
const view = (b: number, e: number[]): Float32Array => Float32Array.from([b, 0.5, ...e]);
const user = view(0.7, [0.5, -0.3, 0.2, 0.1]);
const item = view(-0.2, [0.05, 0.4, -0.1, 0.3]);

void test('logit equals the pairwise FM sum with the user and the item as two more features', () => {
  const fm = randomModel();
  const k = fm.k;
  const rows: number[][] = [...idx].map((i) => Array.from(fm.v.subarray(i * k, i * k + k)));
  const vecs = [...rows, Array.from(user.subarray(VIEW_VECTOR)), Array.from(item.subarray(VIEW_VECTOR))];
  const dot = (a: number[], b: number[]): number => a.reduce((s, x, f) => s + x * (b[f] ?? 0), 0);
  let z = fm.w0 + (user[VIEW_BIAS] ?? 0) + (item[VIEW_BIAS] ?? 0);
  for (const i of idx) z += fm.w[i] ?? 0;
  for (let a = 0; a < vecs.length; a++) for (let b = a + 1; b < vecs.length; b++) z += dot(vecs[a] ?? [], vecs[b] ?? []);
  assert.ok(Math.abs(fm.logit(idx, idx.length, idx.length, user, item) - z) < 1e-5);
  // n limits the rows; zero views leave the features alone.
  const zero = new Float32Array(viewSize(k));
  assert.ok(Math.abs(fm.logit(idx, 1, 1, zero, zero) - (fm.w0 + (fm.w[3] ?? 0))) < 1e-6);
  // The variance of a view does not enter the logit.
  const other = Float32Array.from(user);
  other[VIEW_VARIANCE] = 9;
  assert.equal(fm.logit(idx, idx.length, idx.length, other, item), fm.logit(idx, idx.length, idx.length, user, item));
});

void test('gradient check: ∂z/∂e_u = S + e_i, ∂z/∂e_i = S + e_u, ∂z/∂b = 1, ∂z/∂v_r = S − v_r + e_u + e_i', () => {
  const fm = randomModel();
  const k = fm.k;
  const s = new Float32Array(k);
  fm.featureLogit(idx, idx.length, idx.length, s);
  const h = 1e-2; // z is linear in each entity's e and b, quadratic in v: central differences are exact up to rounding
  const num = (f: (d: number) => number): number => (f(h) - f(-h)) / (2 * h);
  for (let f = 0; f < k; f++) {
    const du = num((d) => {
      const u = Float32Array.from(user);
      u[VIEW_VECTOR + f] = (u[VIEW_VECTOR + f] ?? 0) + d;
      return fm.logit(idx, idx.length, idx.length, u, item);
    });
    assert.ok(Math.abs(du - ((s[f] ?? 0) + (item[VIEW_VECTOR + f] ?? 0))) < 1e-3, `e_u[${f}]`);
    const di = num((d) => {
      const it = Float32Array.from(item);
      it[VIEW_VECTOR + f] = (it[VIEW_VECTOR + f] ?? 0) + d;
      return fm.logit(idx, idx.length, idx.length, user, it);
    });
    assert.ok(Math.abs(di - ((s[f] ?? 0) + (user[VIEW_VECTOR + f] ?? 0))) < 1e-3, `e_i[${f}]`);
    // Shared v of row 40 (appears once): the formula the trainers use.
    const at = 40 * k + f;
    const v0 = fm.v[at] ?? 0;
    const dv = num((d) => {
      fm.v[at] = v0 + d;
      const z = fm.logit(idx, idx.length, idx.length, user, item);
      fm.v[at] = v0;
      return z;
    });
    assert.ok(Math.abs(dv - ((s[f] ?? 0) - v0 + (user[VIEW_VECTOR + f] ?? 0) + (item[VIEW_VECTOR + f] ?? 0))) < 1e-3, `v[40][${f}]`);
  }
  const db = num((d) => {
    const u = Float32Array.from(user);
    u[VIEW_BIAS] = (u[VIEW_BIAS] ?? 0) + d;
    return fm.logit(idx, idx.length, idx.length, u, item);
  });
  assert.ok(Math.abs(db - 1) < 1e-3);
});

void test("coldView is each side's prior: [bias, variance, vector]", () => {
  const fm = randomModel();
  assert.deepEqual([...fm.coldView('user')], [...Float32Array.from([-0.25, 0.4, 0.1, -0.2, 0.3, 0.05])]);
  assert.deepEqual([...fm.coldView('item')], [...Float32Array.from([0.15, 0.7, -0.3, 0.2, 0.1, 0.4])]);
});

void test('toBuffer/fromBuffer round-trips every parameter, both priors included', () => {
  const fm = randomModel();
  const buf = fm.toBuffer();
  assert.equal(buf.length, fm.byteLength());
  // An unaligned copy must decode too.
  const shifted = Buffer.alloc(buf.length + 1);
  buf.copy(shifted, 1);
  const back = FactorizationMachine.fromBuffer(shifted.subarray(1));
  assert.equal(back.buckets, 64);
  assert.equal(back.k, 4);
  assert.equal(back.release, 'r-1');
  assert.equal(back.w0, fm.w0);
  assert.deepEqual(back.priors, fm.priors);
  assert.deepEqual(back.w, fm.w);
  assert.deepEqual(back.v, fm.v);
  assert.equal(back.logit(idx, idx.length, idx.length, user, item), fm.logit(idx, idx.length, idx.length, user, item));
});

void test("fromBuffer reads the one-sided format 1 into that side's prior", () => {
  const fm = randomModel();
  const rel = Buffer.from('old-1', 'utf8');
  const k = fm.k;
  const v1 = Buffer.alloc(40 + rel.length + 4 * (k + fm.buckets * (1 + k)));
  v1.writeUInt32LE(0x4d464854, 0);
  v1.writeUInt32LE(1, 4);
  v1.writeUInt32LE(fm.buckets, 8);
  v1.writeUInt32LE(k, 12);
  v1.writeUInt32LE(0, 16); // user side
  v1.writeUInt32LE(rel.length, 20);
  v1.writeDoubleLE(fm.w0, 24);
  v1.writeDoubleLE(-0.5, 32);
  rel.copy(v1, 40);
  let off = 40 + rel.length;
  for (const arr of [Float32Array.from([1, 2, 3, 4]), fm.w, fm.v]) {
    Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength).copy(v1, off);
    off += arr.byteLength;
  }
  const back = FactorizationMachine.fromBuffer(v1);
  assert.equal(back.release, 'old-1');
  assert.deepEqual([...back.priors.user.vector], [1, 2, 3, 4]);
  assert.equal(back.priors.user.bias, -0.5);
  assert.deepEqual([...back.priors.item.vector], [0, 0, 0, 0]);
  assert.deepEqual(back.v, fm.v);
});

void test('fromBuffer rejects corrupt buffers', () => {
  const buf = randomModel().toBuffer();
  const code = (b: Buffer, c: string): void =>
    assert.throws(
      () => FactorizationMachine.fromBuffer(b),
      (err: unknown) => err instanceof ThawError && err.code === c,
    );
  code(buf.subarray(0, 10), 'RELEASE_CORRUPT');
  code(buf.subarray(0, buf.length - 4), 'RELEASE_CORRUPT');
  const badMagic = Buffer.from(buf);
  badMagic[0] = 0;
  code(badMagic, 'RELEASE_CORRUPT');
  const badVersion = Buffer.from(buf);
  badVersion.writeUInt32LE(99, 4);
  code(badVersion, 'RELEASE_INCOMPATIBLE');
  const badK = Buffer.from(buf);
  badK.writeUInt32LE(0, 12);
  code(badK, 'RELEASE_CORRUPT');
});

/** A model with a cross table and random cross weights. */
function crossModel(): FactorizationMachine {
  const fm = FactorizationMachine.create({ buckets: 64, k: 4, seed: 3, initStd: 0.3, release: 'r-x', crossBuckets: 101 });
  const rand = mulberry32(11);
  for (let i = 0; i < fm.c.length; i++) fm.c[i] = rand() - 0.5;
  return fm;
}

void test('cross term: each user row × item row adds its cross weight, user rows first', () => {
  const fm = crossModel();
  const nUser = 2; // rows 3, 17 are the user's; 17, 40, 63 the item's
  const plain = FactorizationMachine.fromBuffer(fm.toBuffer());
  plain.c.fill(0);
  let pairs = 0;
  for (const u of idx.subarray(0, nUser)) for (const i of idx.subarray(nUser)) pairs += fm.c[fm.crossRow(u, i)] ?? 0;
  assert.ok(Math.abs(pairs) > 0.05, 'not vacuous: the pairs carry weight');
  assert.ok(Math.abs(fm.logit(idx, idx.length, nUser, user, item) - (plain.logit(idx, idx.length, nUser, user, item) + pairs)) < 1e-5);
  assert.deepEqual(
    [...fm.crossRowsOf(idx, nUser, idx.length)],
    [...idx.subarray(0, nUser)].flatMap((u) => [...idx.subarray(nUser)].map((i) => fm.crossRow(u, i))),
  );
  // No user rows, or no item rows: no pairs.
  assert.equal(fm.crossLogit(idx, 0, idx.length), 0);
  assert.equal(fm.crossLogit(idx, idx.length, idx.length), 0);
  // The pair is ordered: (u, i) and (i, u) are different crosses.
  assert.notEqual(fm.crossRow(3, 40), fm.crossRow(40, 3));
});

void test("cross term: one Adagrad step moves exactly the event's cross rows against the gradient", () => {
  const fm = crossModel();
  const before = Float32Array.from(fm.c);
  const acc = new Float32Array(fm.crossBuckets).fill(1);
  fm.crossStep(idx, 2, idx.length, 0.5, 0.1, 0, acc);
  const touched = new Set(fm.crossRowsOf(idx, 2, idx.length));
  for (let r = 0; r < fm.crossBuckets; r++) {
    if (touched.has(r)) assert.ok((fm.c[r] ?? 0) < (before[r] ?? 0), `row ${r} moved down (g > 0)`);
    else assert.equal(fm.c[r], before[r]);
  }
});

void test('toBuffer: a cross table is format 3 and round-trips; without one the file stays format 2', () => {
  const fm = crossModel();
  const buf = fm.toBuffer();
  assert.equal(buf.readUInt32LE(4), 3);
  const back = FactorizationMachine.fromBuffer(buf);
  assert.equal(back.crossBuckets, 101);
  assert.deepEqual(back.c, fm.c);
  assert.equal(back.logit(idx, idx.length, 2, user, item), fm.logit(idx, idx.length, 2, user, item));
  assert.equal(randomModel().toBuffer().readUInt32LE(4), 2);
  // A format-2 file that claims a cross table is corrupt.
  const bad = randomModel().toBuffer();
  bad.writeUInt32LE(7, 20);
  assert.throws(
    () => FactorizationMachine.fromBuffer(bad),
    (err: unknown) => err instanceof ThawError && err.code === 'RELEASE_CORRUPT',
  );
});
