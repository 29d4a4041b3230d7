import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FactorizationMachine, mulberry32 } from '../../../models/fm.js';
import { ThawError } from '../../../lib/errors.js';

function randomModel(): FactorizationMachine {
  const fm = FactorizationMachine.create({ buckets: 64, k: 4, seed: 3, initStd: 0.3, release: 'r-1', side: 'user' });
  const rand = mulberry32(9);
  fm.w0 = -0.4;
  for (let i = 0; i < fm.w.length; i++) fm.w[i] = rand() - 0.5;
  fm.entityInit.set([0.1, -0.2, 0.3, 0.05]);
  fm.entityBiasInit = -0.25;
  return fm;
}

const idx = Int32Array.from([3, 17, 17, 40, 63]); // a repeated row counts twice
const e = Float32Array.from([0.5, -0.3, 0.2, 0.1]);

void test('logit equals the pairwise FM sum with the entity as one more feature', () => {
  const fm = randomModel();
  const k = fm.k;
  const row = (i: number): number[] => Array.from(fm.v.subarray(i * k, i * k + k));
  const dot = (a: number[], b: ArrayLike<number>): number => a.reduce((s, x, f) => s + x * b[f]!, 0);
  let z = fm.w0 + 0.7;
  for (let a = 0; a < idx.length; a++) {
    z += fm.w[idx[a]!]!;
    z += dot(row(idx[a]!), e);
    for (let b = a + 1; b < idx.length; b++) z += dot(row(idx[a]!), row(idx[b]!));
  }
  assert.ok(Math.abs(fm.logit(idx, e, 0.7) - z) < 1e-5);
  // n limits the rows; no entity means no entity term.
  assert.ok(Math.abs(fm.logit(idx, null, 0, 1) - (fm.w0 + fm.w[3]!)) < 1e-6);
});

void test('gradient check: ∂z/∂e = Σv, ∂z/∂b = 1, ∂z/∂v_i = Σv − v_i + e (numerical vs analytic)', () => {
  const fm = randomModel();
  const k = fm.k;
  const s = new Float32Array(k);
  fm.sumV(idx, s);
  const h = 1e-2; // z is linear in e and b, quadratic in v: central differences are exact up to rounding
  for (let f = 0; f < k; f++) {
    const ep = Float32Array.from(e);
    const em = Float32Array.from(e);
    ep[f]! += h;
    em[f]! -= h;
    const num = (fm.logit(idx, ep, 0) - fm.logit(idx, em, 0)) / (2 * h);
    assert.ok(Math.abs(num - s[f]!) < 1e-3, `e[${f}]: numerical ${num} analytic ${s[f]}`);
  }
  const numB = (fm.logit(idx, e, 0.5 + h) - fm.logit(idx, e, 0.5 - h)) / (2 * h);
  assert.ok(Math.abs(numB - 1) < 1e-3);
  // Shared v of row 40 (appears once) — the formula the trainer uses.
  for (let f = 0; f < k; f++) {
    const at = 40 * k + f;
    const v0 = fm.v[at]!;
    const analytic = s[f]! - v0 + e[f]!;
    fm.v[at] = v0 + h;
    const zp = fm.logit(idx, e, 0);
    fm.v[at] = v0 - h;
    const zm = fm.logit(idx, e, 0);
    fm.v[at] = v0;
    assert.ok(Math.abs((zp - zm) / (2 * h) - analytic) < 1e-3, `v[40][${f}]`);
  }
  // Log-loss gradient the adapter applies: (p − y)·Σv.
  const loss = (ee: Float32Array): number => {
    const p = 1 / (1 + Math.exp(-fm.logit(idx, ee, 0)));
    return -Math.log(p); // label 1
  };
  const p = 1 / (1 + Math.exp(-fm.logit(idx, e, 0)));
  for (let f = 0; f < k; f++) {
    const ep = Float32Array.from(e);
    const em = Float32Array.from(e);
    ep[f]! += 1e-3;
    em[f]! -= 1e-3;
    const num = (loss(ep) - loss(em)) / 2e-3;
    assert.ok(Math.abs(num - (p - 1) * s[f]!) < 2e-3, `logloss e[${f}]`);
  }
});

void test('toBuffer/fromBuffer round-trips every parameter', () => {
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
  assert.equal(back.side, 'user');
  assert.equal(back.w0, fm.w0);
  assert.equal(back.entityBiasInit, fm.entityBiasInit);
  assert.deepEqual(back.w, fm.w);
  assert.deepEqual(back.v, fm.v);
  assert.deepEqual(back.entityInit, fm.entityInit);
  assert.equal(back.logit(idx, e, 0.1), fm.logit(idx, e, 0.1));
});

void test('fromBuffer rejects corrupt buffers', () => {
  const buf = randomModel().toBuffer();
  const code = (b: Buffer, c: string): void => assert.throws(() => FactorizationMachine.fromBuffer(b), (err: unknown) => err instanceof ThawError && err.code === c);
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
