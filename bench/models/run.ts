/**
 * `npm run bench -- --only models`: how fast the models learn and adapt, per TensorFlow.js backend.
 *
 *   node --import tsx bench/models/run.ts [--quick] [--data DIR] [--out .thaw/bench/models.json]
 *
 * 1. Training examples/s per backend (native bindings if installed, else a "not installed" row;
 *    wasm; cpu): DeepFM and EmerG supervised steps of 256 rows, Meta-Embedding and EmerG episodic
 *    meta-steps (trainers/steps.ts), each for up to 300 steps or 8 s (--quick: 40 steps / 1.5 s).
 * 2. Adaptation throughput per model on the backend workers pick (wasm here), micro-batches of 1024
 *    events: `adaptStep` of DeepFM / Meta-Embedding / EmerG (models/ctr-model.ts), ColdNAS's batched
 *    interaction encoding + O(1) running-mean update, the fixed/adaptive split's Meta-SGD step;
 *    beside each model's forward-only rate (same batches) through onnxruntime-node on its release
 *    `model.onnx` (serving/onnx-runner.ts) and through TensorFlow.js `predict`.
 * Each backend runs in its own child process (bench/models/worker.ts). Prints Markdown on stdout,
 * progress on stderr, writes JSON to --out. Never asserts.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { markdownTable } from '../stats.js';
import { detectBackends } from './backends.js';
import type { WorkerResult } from './worker.js';

/** Whole examples per second with thousands separators (markdownTable would print 836 as "836.0"). */
const rate = (x: number): string => Math.round(x).toLocaleString('en-US');

const ROOT = path.resolve(import.meta.dirname, '../..');
const WORKER = path.join(import.meta.dirname, 'worker.ts');

function runWorker(args: string[]): Promise<WorkerResult | { error: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.on('error', (err) => resolve({ error: err.message }));
    child.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        if (code !== 0) throw new Error(`exit code ${String(code)}`);
        resolve(JSON.parse(line) as WorkerResult);
      } catch (err) {
        resolve({ error: `worker ${args.join(' ')} failed: ${err instanceof Error ? err.message : String(err)}` });
      }
    });
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { quick: { type: 'boolean', default: false }, data: { type: 'string' }, out: { type: 'string', default: '.thaw/bench/models.json' } },
    strict: true,
  });
  const started = Date.now();
  const common = [...(values.quick ? ['--quick'] : []), ...(values.data !== undefined ? ['--data', values.data] : [])];
  const backends = detectBackends();
  const nativeInstalled = backends.some((b) => (b.backend === 'tensorflow' || b.backend === 'tensorflow-gpu') && b.installed);
  const results: Record<string, WorkerResult | { error: string }> = {};
  if (nativeInstalled) results.native = await runWorker(['--backend', 'native', '--sections', 'train', ...common]);
  results.wasm = await runWorker(['--backend', 'wasm', '--sections', 'train,adapt,forward', ...common]);
  results.cpu = await runWorker(['--backend', 'cpu', '--sections', 'train', ...common]);

  const trainRows: (string | number)[][] = [];
  for (const b of backends) {
    if (!b.installed) {
      trainRows.push([b.backend, b.pkg, '–', '–', 'not installed', '–']);
      continue;
    }
    const key = b.backend === 'wasm' || b.backend === 'cpu' ? b.backend : 'native';
    const r = results[key];
    if (r === undefined || 'error' in r) {
      trainRows.push([b.backend, b.pkg, '–', '–', r === undefined ? 'not run' : r.error, '–']);
      continue;
    }
    // models/backend.ts prefers the GPU binding: with both installed only it is measured.
    if (r.backend !== b.backend) {
      trainRows.push([b.backend, b.pkg, '–', '–', `installed, not selected (backend.ts chose ${r.backend})`, '–']);
      continue;
    }
    for (const t of r.train) trainRows.push([b.backend, b.pkg, t.model, t.step, rate(t.rate.perSec), String(t.rate.steps)]);
  }

  const w = results.wasm;
  const adaptRows: (string | number)[][] = [];
  const what: Record<string, string> = {
    deepfm: 'adaptStep: SGD on item-ID embedding',
    metaemb: 'adaptStep: SGD on item-ID embedding',
    emerg: 'adaptStep: SGD on item-ID embedding + item graph',
    coldnas: 'encode interactions + O(1) running-mean update',
    'fixed-adaptive': 'Meta-SGD step on the adaptive part',
  };
  if (w !== undefined && !('error' in w)) {
    for (const a of w.adapt) {
      const f = w.forward.find((x) => x.model === a.model);
      const failed = `failed: ${(f?.error ?? 'not run').slice(0, 60)}`;
      const onnx = f?.rates !== undefined ? rate(f.rates.onnx.perSec) : failed;
      const tfjs = f?.rates !== undefined ? rate(f.rates.tfjs.perSec) : failed;
      if (a.rate === undefined) adaptRows.push([a.model, what[a.model] ?? '', `failed: ${a.error ?? ''}`, '–', '–', onnx, tfjs]);
      else adaptRows.push([a.model, what[a.model] ?? '', rate(a.rate.perSec), rate(a.rate.entitiesPerSec), String(Math.round(a.rate.entitiesPerBatch)), onnx, tfjs]);
    }
  }

  const load = loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  const wallSec = (Date.now() - started) / 1000;
  const source = w !== undefined && !('error' in w) ? w.source : (values.data ?? 'synthetic');
  const lines = [
    `## models: training and adaptation throughput${values.quick ? ' (--quick)' : ''}`,
    '',
    `Rows: ${source}. Host: ${cpus().length} cores, load average ${load}. Wall ${wallSec.toFixed(0)} s.`,
    '',
    '### Training examples/s per TensorFlow.js backend',
    '',
    markdownTable(['backend', 'package', 'model', 'step', 'examples/s', 'steps timed'], trainRows),
    '',
    `### Adaptation, micro-batches of 1024 events (backend ${w !== undefined && !('error' in w) ? w.backend : 'wasm'}), beside forward-only scoring of the same batches`,
    '',
    adaptRows.length > 0
      ? markdownTable(['model', 'adaptation step', 'events/s', 'entities/s', 'entities/batch', 'ONNX fwd rows/s', 'TF.js fwd rows/s'], adaptRows)
      : `adaptation not measured: ${w !== undefined && 'error' in w ? w.error : 'wasm worker did not run'}`,
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
  const out = path.resolve(ROOT, values.out);
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify({ bench: 'models', quick: values.quick, source, host: { cores: cpus().length, loadavg: loadavg() }, wallSec, backends, results }, null, 2) + '\n');
  process.stderr.write(`bench models: wrote ${path.relative(ROOT, out)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench models failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
