/**
 * One backend's share of the model benchmark, in its own process (bench/models/run.ts spawns it):
 * TensorFlow.js picks its backend once per process (models/backend.ts), and a fresh process keeps
 * one backend's allocator and JIT state from skewing another's numbers.
 *
 *   node --import tsx bench/models/worker.ts --backend wasm|cpu|native --sections train,adapt,forward [--quick] [--data DIR]
 *
 * Prints exactly one JSON line (a WorkerResult) on stdout; progress as JSON lines on stderr.
 */
import { parseArgs } from 'node:util';
import { ConfigError, errorMessage } from '../../lib/errors.js';
import { initBackend, type BackendName, type BackendPreference } from '../../models/backend.js';
import { benchData } from './fixtures.js';
import {
  adaptColdNas,
  adaptCtr,
  adaptFixedAdaptive,
  forward,
  liveTensors,
  microBatches,
  trainMetaSteps,
  trainSupervised,
  type AdaptRate,
  type Budget,
  type ForwardRates,
  type ModelName,
  type Rate,
} from './measure.js';

export const MICRO_BATCH = 1024;

export interface WorkerResult {
  requested: BackendPreference;
  backend: BackendName;
  source: string;
  train: { model: string; step: string; rate: Rate }[];
  adapt: { model: ModelName; rate?: AdaptRate; error?: string }[];
  forward: { model: ModelName; rates?: ForwardRates; error?: string }[];
  liveTensors: number;
}

function progress(msg: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(JSON.stringify({ t: new Date().toISOString(), bench: 'models', msg, ...fields }) + '\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { backend: { type: 'string' }, sections: { type: 'string', default: 'train' }, quick: { type: 'boolean', default: false }, data: { type: 'string' } },
    strict: true,
  });
  const pref = values.backend as BackendPreference | undefined;
  if (pref === undefined || !['native', 'wasm', 'cpu'].includes(pref)) throw new ConfigError('backend', `must be native|wasm|cpu, got "${String(pref)}"`);
  const sections = new Set(values.sections.split(','));
  const quick = values.quick;
  // THAW_TF_BACKEND would override the preference inside initBackend: this process measures what it was asked for.
  delete process.env.THAW_TF_BACKEND;
  const backend = await initBackend(pref);
  const d = benchData(values.data, quick ? 8_192 : 33_480);
  const res: WorkerResult = { requested: pref, backend, source: d.source, train: [], adapt: [], forward: [], liveTensors: 0 };
  // A native request that fell through to wasm/cpu means no native binding here: nothing to measure.
  if (pref === 'native' && backend !== 'tensorflow' && backend !== 'tensorflow-gpu') {
    process.stdout.write(JSON.stringify(res) + '\n');
    return;
  }
  const trainBudget: Budget = quick ? { steps: 40, seconds: 1, warmup: 1 } : { steps: 300, seconds: 8, warmup: 3 };
  const adaptBudget: Budget = quick ? { steps: 20, seconds: 1, warmup: 1 } : { steps: 100, seconds: 5, warmup: 2 };
  const fwdBudget: Budget = quick ? { steps: 20, seconds: 0.7, warmup: 1 } : { steps: 100, seconds: 3, warmup: 2 };

  if (sections.has('train')) {
    for (const kind of ['deepfm', 'emerg'] as const) {
      progress('train', { backend, model: kind, step: 'supervised' });
      res.train.push({ model: kind, step: 'supervised, 256 rows', rate: await trainSupervised(kind, d, trainBudget) });
    }
    for (const kind of ['metaemb', 'emerg'] as const) {
      progress('train', { backend, model: kind, step: 'meta' });
      res.train.push({ model: kind, step: 'meta, 16 tasks × (20+20) rows', rate: await trainMetaSteps(kind, d, trainBudget) });
    }
  }
  if (sections.has('adapt')) {
    const mbs = microBatches(d.adapt, MICRO_BATCH);
    for (const model of ['deepfm', 'metaemb', 'emerg', 'coldnas', 'fixed-adaptive'] as const) {
      progress('adapt', { backend, model });
      try {
        const rate =
          model === 'coldnas' ? await adaptColdNas(d, mbs, adaptBudget) : model === 'fixed-adaptive' ? await adaptFixedAdaptive(d, mbs, adaptBudget) : await adaptCtr(model, d, mbs, adaptBudget);
        res.adapt.push({ model, rate });
      } catch (err) {
        res.adapt.push({ model, error: errorMessage(err) });
      }
    }
  }
  if (sections.has('forward')) {
    for (const model of ['deepfm', 'metaemb', 'emerg', 'coldnas', 'fixed-adaptive'] as const) {
      progress('forward', { backend, model });
      try {
        res.forward.push({ model, rates: await forward(model, d, MICRO_BATCH, fwdBudget) });
      } catch (err) {
        res.forward.push({ model, error: errorMessage(err) });
      }
    }
  }
  res.liveTensors = liveTensors();
  process.stdout.write(JSON.stringify(res) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench models worker failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
