/**
 * The Vowpal Wabbit side of the peer benchmark: one VW text file of the whole stream in time order,
 * one progressive pass per run (every prediction made before the update, VW's progressive
 * validation), the learning rate chosen on the first part of the stream only.
 */
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { promisify } from 'node:util';
import { ThawError } from '../../lib/errors.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { auc } from '../../evaluation/metrics.js';
import { vwLine, type VwIds } from './vw-format.js';

const run = promisify(execFile);
const HELPER = join(import.meta.dirname, 'vw_run.py');

/** VW settings fixed for every run (the learning rate is the tuned one). */
export interface VwSettings {
  /** Hash bits (-b): 2^bits weights. @default 22 */
  bits?: number;
  /** Extra VW arguments appended verbatim. @default [] */
  extraArgs?: readonly string[];
}

/** VW arguments of one run: logistic loss and link, user × item quadratic interactions. */
export function vwArgs(learningRate: number, settings: VwSettings = {}): string[] {
  return ['--loss_function', 'logistic', '--link', 'logistic', '-q', 'ui', '-b', String(settings.bits ?? 22), '-l', String(learningRate), ...(settings.extraArgs ?? [])];
}

/** Writes the VW text lines of `events` to `file`. */
export async function writeVwData(events: readonly LabelledEvent[], file: string, ids: VwIds = 'both'): Promise<void> {
  const out = createWriteStream(file, { encoding: 'utf8' });
  const chunk: string[] = [];
  for (const ev of events) {
    chunk.push(vwLine(ev, ids));
    if (chunk.length === 5000) {
      // Respect backpressure: wait for drain when the buffer is full.
      if (!out.write(chunk.join('\n') + '\n')) await new Promise<void>((r) => out.once('drain', () => r()));
      chunk.length = 0;
    }
  }
  if (chunk.length > 0) out.write(chunk.join('\n') + '\n');
  out.end();
  await finished(out);
}

/**
 * One progressive pass of VW over `dataFile` (a file name inside `workDir`); returns one score
 * per line. `expected` is the number of lines, checked so a short prediction file cannot pass silently.
 */
export async function runVw(python: string, workDir: string, dataFile: string, args: readonly string[], expected: number): Promise<Float64Array> {
  const predFile = `${dataFile}.preds`;
  try {
    await run(python, [HELPER, workDir, dataFile, predFile, ...args], { timeout: 30 * 60_000, maxBuffer: 16 << 20 });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new ThawError('MODEL_ERROR', `vowpal wabbit failed on ${dataFile}: ${stderr.trim().slice(-2000)}`, { cause: err });
  }
  const lines = (await readFile(join(workDir, predFile), 'utf8')).split('\n').filter((s) => s !== '');
  if (lines.length !== expected) throw new ThawError('MODEL_ERROR', `vowpal wabbit wrote ${lines.length} predictions for ${expected} examples`);
  // A prediction line is "score" or "score tag"; the score comes first.
  return Float64Array.from(lines, (s) => Number(s.split(' ')[0]));
}

/** Progressive AUC of one learning rate on the tuning prefix. */
export interface LrTrial {
  learningRate: number;
  auc: number;
  logLoss: number;
}

/**
 * Tries each learning rate on the prefix file (one progressive pass each) and returns the trials and
 * the best by progressive AUC (log loss breaks ties). Only the prefix is read: the evaluation window
 * plays no part in the choice.
 */
export async function tuneLearningRate(
  python: string,
  workDir: string,
  prefixFile: string,
  labels: ArrayLike<number>,
  rates: readonly number[],
  settings: VwSettings = {},
): Promise<{ trials: LrTrial[]; best: LrTrial }> {
  const trials: LrTrial[] = [];
  for (const lr of rates) {
    const scores = await runVw(python, workDir, prefixFile, vwArgs(lr, settings), labels.length);
    let loss = 0;
    for (let j = 0; j < scores.length; j++) {
      const p = Math.min(1 - 1e-7, Math.max(1e-7, scores[j]!));
      loss -= labels[j] === 1 ? Math.log(p) : Math.log(1 - p);
    }
    trials.push({ learningRate: lr, auc: auc(Array.from(scores), Array.from(labels)), logLoss: loss / scores.length });
  }
  const best = trials.reduce((a, b) => (b.auc > a.auc || (b.auc === a.auc && b.logLoss < a.logLoss) ? b : a));
  return { trials, best };
}
