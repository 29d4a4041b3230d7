/**
 * The vw peer with a real Vowpal Wabbit, installed on demand as the product does (a venv under the
 * repository's .thaw/, kept between runs; THAW_PYTHON is honoured when it has vowpalwabbit) on a small
 * synthetic stream: one finite score per event, prequential, settings chosen on the history only, and
 * nothing left in the work directory.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { ensureVwPython } from '../../../evaluation/peers/python-env.js';
import { runVwPeer, VW_DEFAULT_TRIALS, type VwPeerOptions, type VwPeerRun } from '../../../evaluation/peers/vw-peer.js';
import { ThawError } from '../../../lib/errors.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { SyntheticStream } from '../../../sources/synthetic.js';

const events: LabelledEvent[] = [];
for await (const e of new SyntheticStream({ events: 600, users: 40, items: 30, seed: 3 })) events.push(e);
const HISTORY = 200;
const workDir = join(tmpdir(), `thaw-vw-peer-${randomUUID()}`);
const opts: VwPeerOptions = { workDir, cacheDir: resolve(import.meta.dirname, '..', '..', '..', '.thaw'), bits: 18 };
const flip = (e: LabelledEvent): LabelledEvent => ({ ...e, label: e.label === 1 ? 0 : 1 });

let base: VwPeerRun;
before(async () => {
  await mkdir(workDir, { recursive: true });
  base = await runVwPeer(events, HISTORY, opts);
});
after(() => rm(workDir, { recursive: true, force: true }));

test('vw peer: one finite score per event, every default setting tried, chosen = the best history AUC, no files left', async () => {
  assert.equal(base.name, 'vw');
  assert.equal(base.scores.length, events.length);
  assert.ok(base.scores.every((s) => Number.isFinite(s) && s >= 0 && s <= 1));
  assert.deepEqual(
    base.trials.map((t) => t.settings),
    VW_DEFAULT_TRIALS,
  );
  assert.ok(base.trials.every((t) => Number.isFinite(t.auc) && Number.isFinite(t.logLoss)));
  const bestAuc = Math.max(...base.trials.map((t) => t.auc));
  assert.equal(base.trials.find((t) => JSON.stringify(t.settings) === JSON.stringify(base.chosen))?.auc, bestAuc);
  assert.ok(base.args.includes('-q') && base.args.includes('ui') && base.args.includes('logistic'));
  assert.match(base.version, /^\d+\.\d+\.\d+/);
  assert.deepEqual(await readdir(workDir), []);
});

test('vw peer is prequential: the label of event j changes later scores only', async () => {
  const j = 400;
  const run = await runVwPeer(
    events.map((e, k) => (k === j ? flip(e) : e)),
    HISTORY,
    opts,
  );
  assert.deepEqual(run.chosen, base.chosen);
  assert.deepEqual(run.scores.subarray(0, j + 1), base.scores.subarray(0, j + 1)); // score j included
  assert.notDeepEqual(run.scores.subarray(j + 1), base.scores.subarray(j + 1));
});

test('vw peer chooses on the history only: labels after historyN leave chosen and trials unchanged', async () => {
  const run = await runVwPeer([...events.slice(0, HISTORY), ...events.slice(HISTORY).map(flip)], HISTORY, opts);
  assert.deepEqual(run.chosen, base.chosen);
  assert.deepEqual(run.trials, base.trials);
  assert.deepEqual(run.scores.subarray(0, HISTORY + 1), base.scores.subarray(0, HISTORY + 1));
  assert.notDeepEqual(run.scores, base.scores);
});

test('ensureVwPython: with no usable Python the ThawError names the commands to run by hand', async () => {
  const python = join(workDir, 'no-such-python');
  await assert.rejects(ensureVwPython({ python, cacheDir: join(workDir, 'cache') }), (err: unknown) => {
    assert.ok(err instanceof ThawError);
    assert.equal(err.code, 'USAGE');
    assert.match(err.message, /install it by hand: .*no-such-python -m venv .*venv-vw && .*venv-vw\/bin\/python -m pip install -r .*evaluation\/peers\/requirements-vw\.txt/);
    return true;
  });
});
