/**
 * The offline half of the resource manager (JIZHI's): searches the pipeline's stage settings
 * (fetch concurrency, model micro-batch size and max wait, the in-flight bound) by replaying a
 * recorded load (serving/load-recording.ts) against a real pipeline for each candidate setting,
 * and keeps the setting with the best goodput whose answered p99 stays within the deadline.
 * `thaw serve tune` runs it (cli/commands/serve-tune.ts); `thaw serve --settings FILE` serves its
 * output. The online half is serving/shed-controller.ts.
 *
 * The search is coordinate descent over a few values per setting: from the current settings, try
 * each value of one setting with the others held, keep the best, go on to the next setting; a
 * second pass only if the first changed something. Why not a grid: one replay takes the length of
 * the recording (seconds), and the grid of the values below is 5 × 5 × 4 × 4 = 400 replays; one
 * pass of coordinate descent is at most 14. The settings interact little (the fetch stage's
 * concurrency and the model stage's batch act on different queues; the in-flight bound acts only
 * past capacity, where admission already sheds), which is when coordinate descent finds what the
 * grid would. Replays are noisy on a shared machine: a candidate replaces the incumbent only when
 * it beats it by `minGain` (default 3 % of goodput), so the result stays at the defaults unless a
 * setting is clearly better.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../lib/errors.js';
import type { ReplayResult } from './load-replay.js';

/** The settings the resource manager searches. */
export interface StageSettings {
  fetchConcurrency: number;
  modelMaxBatch: number;
  modelMaxWaitMs: number;
  maxInFlight: number;
}

export const STAGE_KEYS = ['fetchConcurrency', 'modelMaxBatch', 'modelMaxWaitMs', 'maxInFlight'] as const satisfies readonly (keyof StageSettings)[];

/** The values tried per setting (the defaults among them). */
export const SEARCH_SPACE: { readonly [K in keyof StageSettings]: readonly number[] } = {
  fetchConcurrency: [1, 2, 4, 8, 16],
  modelMaxBatch: [8, 16, 32, 64, 128],
  modelMaxWaitMs: [0, 0.5, 1, 2],
  maxInFlight: [64, 256, 1024, 2048],
};

export interface Trial {
  settings: StageSettings;
  result: ReplayResult;
  /** The answered requests' p99 is within the deadline. */
  feasible: boolean;
}

export interface SearchOptions {
  deadlineMs: number;
  /** Relative goodput gain a candidate needs to replace the incumbent (ratio). @default 0.03 */
  minGain?: number;
  /** Most passes over the settings. @default 2 */
  maxPasses?: number;
  space?: { readonly [K in keyof StageSettings]: readonly number[] };
  /** Called after each replay (progress). */
  onTrial?: (trial: Trial) => void;
}

export interface SearchResult {
  /** The starting settings' replay. */
  baseline: Trial;
  best: Trial;
  trials: Trial[];
}

/** Whether `a` is better than the incumbent `b`: feasible beats infeasible; among feasible, goodput by `minGain`; among infeasible, the lower p99. */
export function better(a: Trial, b: Trial, minGain: number): boolean {
  if (a.feasible !== b.feasible) return a.feasible;
  if (a.feasible) return a.result.goodputPerSec > b.result.goodputPerSec * (1 + minGain);
  return a.result.p99 < b.result.p99;
}

/** Coordinate descent from `start`, replaying through `evaluate` (which builds a pipeline with the settings and replays the load). */
export async function searchSettings(start: StageSettings, evaluate: (settings: StageSettings) => Promise<ReplayResult>, opts: SearchOptions): Promise<SearchResult> {
  const minGain = opts.minGain ?? 0.03;
  const space = opts.space ?? SEARCH_SPACE;
  const trials: Trial[] = [];
  const seen = new Map<string, Trial>();
  const trial = async (settings: StageSettings): Promise<Trial> => {
    const key = JSON.stringify(settings);
    const known = seen.get(key);
    if (known !== undefined) return known;
    const result = await evaluate(settings);
    const t: Trial = { settings, result, feasible: Number.isFinite(result.p99) && result.p99 <= opts.deadlineMs };
    seen.set(key, t);
    trials.push(t);
    opts.onTrial?.(t);
    return t;
  };
  const baseline = await trial({ ...start });
  let best = baseline;
  for (let pass = 0; pass < (opts.maxPasses ?? 2); pass++) {
    const before = best;
    for (const key of STAGE_KEYS) {
      for (const value of space[key]) {
        if (value === best.settings[key]) continue;
        const candidate = await trial({ ...best.settings, [key]: value });
        if (better(candidate, best, minGain)) best = candidate;
      }
    }
    if (best === before) break;
  }
  return { baseline, best, trials };
}

export const SETTINGS_FORMAT = 'thaw-settings/1';

/** The file `thaw serve tune` writes and `thaw serve --settings` reads: the settings, and how they were found. */
export interface SettingsFile {
  format: typeof SETTINGS_FORMAT;
  settings: StageSettings;
  tuning?: Record<string, unknown>;
}

/** Reads a settings file; throws ConfigError (key `settings`) naming what is wrong. */
export function readSettings(file: string, readFile: (f: string) => string = (f) => readFileSync(f, 'utf8')): StageSettings {
  let raw: unknown;
  try {
    raw = JSON.parse(readFile(file));
  } catch (err) {
    throw new ConfigError('settings', `cannot read ${file} as JSON: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const doc = raw as Partial<SettingsFile> | null;
  if (typeof doc !== 'object' || doc === null || doc.format !== SETTINGS_FORMAT)
    throw new ConfigError('settings', `${file}: format must be ${JSON.stringify(SETTINGS_FORMAT)} (a file of thaw serve tune)`);
  const s = doc.settings as Record<string, unknown> | undefined;
  if (typeof s !== 'object' || s === null) throw new ConfigError('settings', `${file}: settings must be an object`);
  const out: Partial<StageSettings> = {};
  for (const key of STAGE_KEYS) {
    const v = s[key];
    const integer = key !== 'modelMaxWaitMs';
    if (typeof v !== 'number' || !Number.isFinite(v) || v < (integer ? 1 : 0) || (integer && !Number.isSafeInteger(v))) {
      throw new ConfigError(`settings.${key}`, `${file}: must be ${integer ? 'a positive integer' : 'a number ≥ 0'}, got ${JSON.stringify(v)}`);
    }
    out[key] = v;
  }
  for (const key of Object.keys(s)) if (!(STAGE_KEYS as readonly string[]).includes(key)) throw new ConfigError(`settings.${key}`, `${file}: unknown setting (expected ${STAGE_KEYS.join(', ')})`);
  return out as StageSettings;
}
