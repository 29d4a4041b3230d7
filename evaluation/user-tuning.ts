/**
 * Dev script: user-protocol VALIDATION runs (held-out hot users, never the new users' rows) for
 * tuning ColdNAS and the fixed/adaptive split. Usage:
 *   node --import tsx evaluation/user-tuning.ts '<json UserWarmupOptions minus seeds>' model[,model] [valSeed,...]
 * Prints one line per (validation seed, model) and the mean over validation seeds.
 */
import path from 'node:path';
import { createLogger } from '../lib/log.js';
import { initBackend } from '../models/backend.js';
import { buildUserWarmupSplit } from './user-warmup-split.js';
import { runUserValidation } from './validation.js';
import type { UserWarmupModel } from './user-warmup-protocol.js';
import { at, defined } from '../lib/at.js';

const [cfgJson = '{}', modelList = 'coldnas', seedList = '7788,1234'] = process.argv.slice(2);
await initBackend('wasm');
const split = buildUserWarmupSplit(path.resolve(import.meta.dirname, '../../shared/data/ml-100k'));
const models = modelList.split(',') as UserWarmupModel[];
const seeds = seedList.split(',').map(Number);
const cfg = JSON.parse(cfgJson) as Record<string, unknown>;
const acc = new Map<string, number[][]>();
for (const seed of seeds) {
  const t0 = Date.now();
  const { rows } = await runUserValidation(split, { seed, models, protocol: cfg, logger: createLogger('info') });
  for (const m of models) {
    const a = ['cold', 'warm-a', 'warm-b', 'warm-c'].map(
      (p) =>
        defined(
          rows.find((r) => r.model === m && r.phase === p),
          'rows.find((r) => r.model === m && r.phase === p)',
        ).auc,
    );
    process.stdout.write(`seed ${seed} ${m.padEnd(15)} ${a.map((x) => x.toFixed(4)).join(' ')}  (${((Date.now() - t0) / 1000).toFixed(0)}s)\n`);
    acc.set(m, [...(acc.get(m) ?? []), a]);
  }
}
for (const [m, l] of acc) {
  const mean = [0, 1, 2, 3].map((i) => l.reduce((s, a) => s + at(a, i, 'a'), 0) / l.length);
  process.stdout.write(
    `MEAN ${m.padEnd(15)} ${mean.map((x) => x.toFixed(4)).join(' ')}  warm-mean ${((at(mean, 1, 'mean') + at(mean, 2, 'mean') + at(mean, 3, 'mean')) / 3).toFixed(4)}  ${cfgJson}\n`,
  );
}
