import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run as trainRun, usage } from '../../../cli/commands/train-meta.js';
import { ReleaseStore } from '../../../model-store/releases.js';

// MovieLens may not be redistributed: the tests read the shared copy outside the repository.
const ML100K = path.resolve(import.meta.dirname, '../../../../shared/data/ml-100k');
const ML1M_METAEMB = path.resolve(import.meta.dirname, '../../../../shared/data/ml-1m-metaemb');

/** Runs the command with its output captured. */
async function runCaptured(argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await trainRun(argv, { stdout: { write: (s: string) => (out += s) } });
  return { code, out };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'thaw-train-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('--source hands the whole command to the stream trainer', async () => {
  assert.match(usage, /--source/);
  const r = await runCaptured(['emerg', '--source', 'synthetic', '--help']);
  assert.equal(r.code, 0);
  // The stream trainer's own usage, not ours.
  assert.match(r.out, /--history-fraction/);
  assert.doesNotMatch(r.out, /--validate/);
});

test("train deepfm on Meta-Embedding's ML-1M splits: old items, checkpoint, published release", async () => {
  await withDir(async (dir) => {
    const out = path.join(dir, 'ckpt');
    const rel = path.join(dir, 'releases');
    const r = await runCaptured(['deepfm', '--data', ML1M_METAEMB, '--out', out, '--epochs', '1', '--limit-entities', '6', '--backend', 'cpu', '--release-dir', rel]);
    assert.equal(r.code, 0);
    // 6 old items × 4 batches × 20 rows.
    assert.match(r.out, /deepfm: 1 epochs on 480 rows of 6 metaemb-ml1m items/);
    assert.ok(existsSync(path.join(out, 'checkpoint.bin')));
    const version = r.out.trim().split('\n').at(-1)!;
    const store = new ReleaseStore({ root: rel });
    assert.equal(await store.current('deepfm'), version);
    // The release records the final training loss (from the trainer's log).
    const [manifest] = await store.list('deepfm');
    assert.ok(typeof manifest?.metrics.trainLoss === 'number' && manifest.metrics.trainLoss > 0);
  });
});

test('train coldnas and fixed-adaptive checkpoint to --out and continue with --resume', async () => {
  await withDir(async (dir) => {
    const common = ['--data', ML100K, '--limit-entities', '4', '--backend', 'cpu'];
    const cn = path.join(dir, 'coldnas');
    const a = await runCaptured(['coldnas', ...common, '--out', cn, '--search-epochs', '1', '--epochs', '1']);
    assert.match(a.out, /coldnas: 2 epochs, structure/);
    const b = await runCaptured(['coldnas', ...common, '--out', cn, '--search-epochs', '1', '--epochs', '2', '--resume']);
    assert.match(b.out, /coldnas: 3 epochs/);
    const fa = path.join(dir, 'fa');
    const c = await runCaptured(['fixed-adaptive', ...common, '--out', fa, '--epochs', '1', '--meta-epochs', '1']);
    assert.match(c.out, /fixed-adaptive: 2 epochs/);
    assert.ok(existsSync(path.join(fa, 'checkpoint.bin')) && existsSync(path.join(fa, 'base', 'checkpoint.bin')));
    const d = await runCaptured(['fixed-adaptive', ...common, '--out', fa, '--epochs', '1', '--meta-epochs', '2', '--resume']);
    assert.match(d.out, /fixed-adaptive: 3 epochs/);
  });
});

test('train --validate prints the warm-up AUC of held-out hot items per grid point (item side)', async () => {
  const r = await runCaptured(['deepfm', '--data', ML100K, '--validate', '--limit-entities', '8', '--epochs', '1', '--inner-lr', '0.1,0.5', '--inner-steps', '1', '--backend', 'cpu', '--json']);
  assert.equal(r.code, 0);
  const rows = (JSON.parse(r.out) as { rows: { lr: number; steps: number; model: string; phase: string; auc: number }[] }).rows;
  assert.deepEqual([...new Set(rows.map((x) => x.lr))], [0.1, 0.5]);
  assert.deepEqual([...new Set(rows.map((x) => x.model))], ['deepfm', 'finetune']);
  assert.deepEqual([...new Set(rows.map((x) => x.phase))], ['cold', 'warm-a', 'warm-b', 'warm-c']);
  assert.ok(rows.every((x) => x.auc > 0 && x.auc < 1));
});

test('train fixed-adaptive --validate scores held-out hot users', async () => {
  const r = await runCaptured(['fixed-adaptive', '--data', ML100K, '--validate', '--limit-entities', '10', '--epochs', '0', '--meta-epochs', '1', '--backend', 'cpu']);
  assert.equal(r.code, 0);
  assert.match(r.out, /fixed-adaptive +0\.\d{4} +0\.\d{4} +0\.\d{4} +0\.\d{4} +0\.\d{4}/);
  assert.match(r.out, /8 training users, 2 validation users/);
});
