/**
 * The meta steps of the fixed/adaptive split against finite differences: the first-order gradients
 * for fa.init and fa.lr must equal the finite differences of the first-order surrogate (inner
 * gradients held constant), and where first order is exact (fa.lr after one inner step) those of
 * the true meta loss.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LabelledEvent } from '../../../schemas/types.js';
import { initBackend } from '../../../models/backend.js';
import { mulberry32 } from '../../../models/fm.js';
import { FixedAdaptive } from '../../../models/fixed-adaptive.js';
import { EventEncoder, fieldLayoutOf, inferEventLayout } from '../../../models/event-layout.js';
import type { RowBatch } from '../../../models/ctr-model.js';
import type { DenseAdam } from '../../../models/params.js';
import { fixedAdaptiveMetaStep } from '../../../trainers/fixed-adaptive-trainer.js';
import { prequentialMetaGradients } from '../../../trainers/online/fa-meta.js';

await initBackend('cpu');

const T = 3; // tasks (users)
const K = 4; // events per task

function setup(lrValue: number): { model: FixedAdaptive; enc: EventEncoder; tasks: LabelledEvent[][] } {
  const rand = mulberry32(11);
  const tasks: LabelledEvent[][] = [];
  for (let t = 0; t < T; t++) {
    const evs: LabelledEvent[] = [];
    for (let j = 0; j < K; j++) {
      const item = Math.floor(rand() * 20);
      evs.push({
        eventId: `e${t}-${j}`,
        timeMs: 1_700_000_000_000 + t * K + j,
        userId: `u${t}`,
        itemId: `i${item}`,
        label: rand() < 0.5 ? 1 : 0,
        userFeatures: { age: [String(t)] },
        itemFeatures: { cat: [String(item % 3)] },
      });
    }
    tasks.push(evs);
  }
  const layout = inferEventLayout('user', tasks.flat(), { vocab: 64 });
  const model = new FixedAdaptive({ layout: fieldLayoutOf(layout), vocab: 64, dim: 3, hidden: [6], seed: 5 });
  // A trained-looking model: non-trivial init, table rows and rates.
  model.table.data.forEach((_, i) => (model.table.data[i] = (rand() - 0.5) * 0.6));
  const init = model.meta.get('fa.init').data;
  init.forEach((_, i) => (init[i] = (rand() - 0.5) * 0.8));
  const lr = model.meta.get('fa.lr').data;
  lr.forEach((_, i) => (lr[i] = lrValue * (0.5 + rand())));
  return { model, enc: new EventEncoder(layout), tasks };
}

function bce(p: Float32Array, y: Float32Array, w?: Float32Array): number {
  let s = 0;
  for (let i = 0; i < p.length; i++) {
    const q = Math.min(Math.max(p[i]!, 1e-7), 1 - 1e-7);
    s -= (w?.[i] ?? 1 / p.length) * (y[i] === 1 ? Math.log(q) : Math.log(1 - q));
  }
  return s;
}

/** Central finite differences of `f` with respect to each value of `x` (restored after); eps small: the MLP's ReLU kinks. */
function fd(x: Float32Array, f: () => number, eps = 1e-3): Float64Array {
  const out = new Float64Array(x.length);
  for (let k = 0; k < x.length; k++) {
    const v = x[k]!;
    x[k] = v + eps;
    const up = f();
    x[k] = v - eps;
    const down = f();
    x[k] = v;
    out[k] = (up - down) / (2 * eps);
  }
  return out;
}

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, rel = 0.03, abs = 3e-4): void {
  assert.equal(got.length, want.length);
  let scale = 0;
  for (let k = 0; k < want.length; k++) scale = Math.max(scale, Math.abs(want[k]!));
  assert.ok(scale > 1e-3, `${what}: the check needs a non-trivial gradient (max |fd| ${scale})`);
  for (let k = 0; k < want.length; k++) {
    const d = Math.abs(got[k]! - want[k]!);
    assert.ok(d <= abs + rel * scale, `${what}[${k}]: analytic ${got[k]} vs finite difference ${want[k]} (|diff| ${d}, scale ${scale})`);
  }
}

function positionsOf(enc: EventEncoder, tasks: LabelledEvent[][], k = K): RowBatch[] {
  const ent = Int32Array.from({ length: tasks.length }, (_, i) => i);
  return Array.from({ length: k }, (_, j) =>
    enc.encode(
      tasks.map((t) => t[j]!),
      ent,
    ),
  );
}

test('prequential meta gradients = finite differences of the first-order surrogate (fa.init and fa.lr)', () => {
  const { model, enc, tasks } = setup(0.3);
  const pos = positionsOf(enc, tasks);
  const g = prequentialMetaGradients(model, pos, T);
  // The inner gradient sums C_j at the current params, replayed as the worker does.
  const ps = model.adaptiveSize;
  const lr = model.meta.get('fa.lr').data;
  const init = model.meta.get('fa.init').data;
  const C: Float32Array[] = [];
  const users = model.initUsers(T);
  const cum = new Float32Array(T * ps);
  for (const b of pos) {
    C.push(cum.slice());
    const gj = model.userGradients(b, users, T).grads;
    for (let i = 0; i < gj.length; i++) {
      cum[i] = cum[i]! + gj[i]!;
      users[i] = users[i]! - lr[i % ps]! * gj[i]!;
    }
  }
  const surrogate = (): number => {
    let s = 0;
    pos.forEach((b, j) => {
      const th = new Float32Array(T * ps);
      for (let i = 0; i < th.length; i++) th[i] = init[i % ps]! - lr[i % ps]! * C[j]![i]!;
      s += bce(model.predict(b, th), b.label) / K;
    });
    return s;
  };
  assert.ok(Math.abs(g.loss - surrogate()) < 1e-5, 'the reported loss is the mean prequential loss');
  assertClose(g.init, fd(init, surrogate), 'd/d fa.init');
  assertClose(g.lr, fd(lr, surrogate), 'd/d fa.lr');
});

test('prequential meta gradients: fa.lr exact for a 2-event window, fa.init close to the true gradient at small rates', () => {
  const { model, enc, tasks } = setup(0.3);
  const pos = positionsOf(enc, tasks, 2);
  const lr = model.meta.get('fa.lr').data;
  // The true prequential loss: replay the worker's steps at the perturbed params.
  const truth = (): number => {
    const users = model.initUsers(T);
    let s = 0;
    for (const b of pos) {
      s += bce(model.predict(b, users), b.label) / pos.length;
      model.adaptStep(b, users, T, 1);
    }
    return s;
  };
  const g = prequentialMetaGradients(model, pos, T);
  assertClose(g.lr, fd(lr, truth), 'd/d fa.lr (true loss)');
  const small = setup(0.01);
  const posS = positionsOf(small.enc, small.tasks, 2);
  const truthS = (): number => {
    const users = small.model.initUsers(T);
    let s = 0;
    for (const b of posS) {
      s += bce(small.model.predict(b, users), b.label) / posS.length;
      small.model.adaptStep(b, users, T, 1);
    }
    return s;
  };
  assertClose(prequentialMetaGradients(small.model, posS, T).init, fd(small.model.meta.get('fa.init').data, truthS), 'd/d fa.init (true loss, small rates)', 0.05, 1e-3);
});

test('split meta step (fixedAdaptiveMetaStep): its fa.init/fa.lr gradients match finite differences', () => {
  const { model, enc, tasks } = setup(0.3);
  const a = 0.1;
  const split = 2;
  const encRows = (pick: (t: LabelledEvent[]) => LabelledEvent[]): RowBatch => {
    const evs: LabelledEvent[] = [];
    const ent: number[] = [];
    tasks.forEach((t, i) => pick(t).forEach((e) => (evs.push(e), ent.push(i))));
    return enc.encode(evs, Int32Array.from(ent));
  };
  const support = encRows((t) => t.slice(0, split));
  const query = encRows((t) => t.slice(split));
  const ps = model.adaptiveSize;
  const lr = model.meta.get('fa.lr').data;
  const init = model.meta.get('fa.init').data;
  const G = model.userGradients(support, model.initUsers(T), T).grads;
  const perUser = (b: RowBatch): Float32Array => {
    const c = new Float32Array(T);
    for (const e of b.entity) c[e] = c[e]! + 1;
    return Float32Array.from(b.entity, (e) => 1 / (c[e]! * T));
  };
  const adapted = (): Float32Array => {
    const th = new Float32Array(T * ps);
    for (let i = 0; i < th.length; i++) th[i] = init[i % ps]! - lr[i % ps]! * G[i]!;
    return th;
  };
  // First-order surrogate: G held at its value; the true loss for fa.lr (G does not depend on it).
  const surrogate = (): number => a * bce(model.predict(support, model.initUsers(T)), support.label, perUser(support)) + (1 - a) * bce(model.predict(query, adapted()), query.label, perUser(query));
  const truth = (): number => {
    const users = model.initUsers(T);
    const ls = bce(model.predict(support, users), support.label, perUser(support));
    model.adaptStep(support, users, T, 1);
    return a * ls + (1 - a) * bce(model.predict(query, users), query.label, perUser(query));
  };
  const wantInit = fd(init, surrogate);
  const wantLr = fd(lr, surrogate);
  const wantLrTrue = fd(lr, truth);
  let captured: Map<string, Float32Array> | undefined;
  const capture = { apply: (_p: unknown, g: Map<string, Float32Array>) => (captured = new Map([...g].map(([k, v]) => [k, v.slice()]))) } as unknown as DenseAdam;
  fixedAdaptiveMetaStep(model, { support, query, count: T }, capture, capture, { supportWeight: a, trainFixed: false });
  assert.ok(captured !== undefined);
  assertClose(captured.get('fa.init')!, wantInit, 'split d/d fa.init');
  assertClose(captured.get('fa.lr')!, wantLr, 'split d/d fa.lr');
  assertClose(captured.get('fa.lr')!, wantLrTrue, 'split d/d fa.lr (true loss)');
});
