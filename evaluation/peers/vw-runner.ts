/**
 * Running Vowpal Wabbit: its text file of a stream, the arguments of one setting, and one progressive
 * pass of one VW process (every prediction is written before the example is learned: VW's
 * progressive validation, the same predict-then-learn order as Thaw's adapters).
 */
import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { finished } from 'node:stream/promises';
import { promisify } from 'node:util';
import { ThawError } from '../../lib/errors.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { peerFile } from './python-env.js';
import { vwLine, type VwIds } from './vw-format.js';

const run = promisify(execFile);

/** VW's optimizers the peer chooses among. `sgd` is VW's default: adaptive, normalized, invariant SGD. */
export const VW_OPTIMIZERS = ['sgd', 'ftrl', 'pistol'] as const;
export type VwOptimizer = (typeof VW_OPTIMIZERS)[number];

/** One VW setting: the optimizer and its own step-size parameters. */
export type VwSetting = { optimizer: 'sgd'; /** `-l`. */ learningRate: number } | { optimizer: 'ftrl' | 'pistol'; /** `--ftrl_alpha`. */ ftrlAlpha: number; /** `--ftrl_beta`. */ ftrlBeta: number };

/** VW arguments of one setting: logistic loss and link, user × item quadratic interactions, `2^bits` weights. */
export function vwArgs(setting: VwSetting, bits: number): string[] {
  const base = ['--loss_function', 'logistic', '--link', 'logistic', '-q', 'ui', '-b', String(bits)];
  if (setting.optimizer === 'sgd') return [...base, '-l', String(setting.learningRate)];
  return [...base, `--${setting.optimizer}`, '--ftrl_alpha', String(setting.ftrlAlpha), '--ftrl_beta', String(setting.ftrlBeta)];
}

/** Writes the VW text lines of `events` to `file`, respecting the stream's backpressure. */
export async function writeVwData(events: readonly LabelledEvent[], file: string, ids: VwIds = 'both'): Promise<void> {
  const out = createWriteStream(file, { encoding: 'utf8' });
  const chunk: string[] = [];
  const flush = async (): Promise<void> => {
    if (!out.write(chunk.join('\n') + '\n')) await new Promise<void>((r) => out.once('drain', () => r()));
    chunk.length = 0;
  };
  for (const ev of events) {
    chunk.push(vwLine(ev, ids));
    if (chunk.length === 5000) await flush();
  }
  if (chunk.length > 0) await flush();
  out.end();
  await finished(out);
}

/** Options of `runVw`. */
export interface RunVwOptions {
  /** Interpreter that can `import vowpalwabbit` (python-env.ts ensureVwPython). */
  python: string;
  /** Directory of the data file; the prediction file is written beside it. */
  workDir: string;
  /** Data file name inside workDir (no spaces: VW splits its argument string on them). */
  dataFile: string;
  /** Prediction file name inside workDir. @default `${dataFile}.preds` */
  predFile?: string;
  /** VW arguments (vwArgs). */
  args: readonly string[];
  /** Lines of the data file: a prediction file of another length is an error, not a short result. */
  expected: number;
  /** Time allowed for the process, in ms. @default 1_800_000 */
  timeoutMs?: number;
}

/** One progressive pass of one VW process over a data file; one score per line, in file order. */
export async function runVw(opts: RunVwOptions): Promise<Float64Array> {
  const predFile = opts.predFile ?? `${opts.dataFile}.preds`;
  try {
    await run(opts.python, [peerFile('vw_run.py'), opts.workDir, opts.dataFile, predFile, ...opts.args], { timeout: opts.timeoutMs ?? 30 * 60_000, maxBuffer: 16 << 20 });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new ThawError('MODEL_ERROR', `vowpal wabbit failed on ${opts.dataFile} (${opts.args.join(' ')}): ${stderr.trim().slice(-2000)}`, { cause: err });
  }
  const scores = new Float64Array(opts.expected);
  let n = 0;
  const lines = createInterface({ input: createReadStream(join(opts.workDir, predFile), 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line === '') continue;
    // A prediction line is "score" or "score tag"; the score comes first.
    if (n < scores.length) scores[n] = Number(line.split(' ', 1)[0]);
    n++;
  }
  if (n !== opts.expected) throw new ThawError('MODEL_ERROR', `vowpal wabbit wrote ${n} predictions for ${opts.expected} examples (${opts.dataFile})`);
  return scores;
}
