/**
 * Dev script: the user protocol (test rows) for ONE seed with default options, printing its runs as
 * JSON, so that seeds can run in parallel processes; `--merge FILE...` prints the table of
 * `thaw eval --protocol warmup --side user` from those files (per-seed runs are independent, so
 * the merged table equals a sequential multi-seed run). Usage:
 *   node --import tsx evaluation/user-protocol-seed.ts SEED [model,model...] > runs-SEED.json
 *   node --import tsx evaluation/user-protocol-seed.ts --merge runs-*.json
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createLogger } from '../lib/log.js';
import { initBackend } from '../models/backend.js';
import { meanStd } from './metrics.js';
import { buildUserWarmupSplit } from './user-warmup-split.js';
import { formatUserWarmupTable, runUserWarmupProtocol, USER_WARMUP_MODELS, type UserWarmupModel, type UserWarmupResult, type UserWarmupRow } from './user-warmup-protocol.js';
import { PHASES } from './warmup-protocol.js';

const args = process.argv.slice(2);
if (args[0] === '--merge') {
  const parts = args.slice(1).map((f) => JSON.parse(readFileSync(f, 'utf8')) as Pick<UserWarmupResult, 'runs' | 'structures'>);
  const runs = parts.flatMap((p) => p.runs);
  const rows: UserWarmupRow[] = [];
  for (const model of USER_WARMUP_MODELS) {
    for (const phase of PHASES) {
      const sel = runs.filter((r) => r.model === model && r.phase === phase);
      if (sel.length === 0) continue;
      const a = meanStd(sel.map((r) => r.auc));
      const f = meanStd(sel.map((r) => r.f1));
      rows.push({ model, phase, auc: a.mean, aucStd: a.std, f1: f.mean, f1Std: f.std });
    }
  }
  process.stdout.write(formatUserWarmupTable(rows) + '\n');
  for (const s of parts.flatMap((p) => p.structures)) process.stdout.write(`coldnas structure (seed ${s.seed}): ${s.structure.ops.join(', ')}\n`);
  process.stdout.write(`seeds ${[...new Set(runs.map((r) => r.seed))].join(',')}\n`);
} else {
  const seed = Number(args[0] ?? 7788);
  await initBackend('wasm');
  const split = buildUserWarmupSplit(path.resolve(import.meta.dirname, '../../shared/data/ml-100k'));
  const models = (args[1]?.split(',') ?? USER_WARMUP_MODELS) as UserWarmupModel[];
  const res = await runUserWarmupProtocol(split, { seeds: [seed], models, logger: createLogger('info') });
  process.stdout.write(JSON.stringify({ runs: res.runs, structures: res.structures, wallSec: res.wallSec, trainSec: res.trainSec }) + '\n');
}
