/**
 * The `vw` peer: Vowpal Wabbit with `--loss_function logistic --link logistic -q ui`, namespaces u
 * (user id + user features) and i (item id + item features) (vw-format.ts). Its optimizer and that
 * optimizer's own step sizes are chosen on the history only: each setting of the grid is one VW
 * process over the history file (events [0, historyN)), scored by progressive AUC; then one VW
 * process with the chosen setting over the whole stream gives the prequential scores.
 *
 * Default grid (VW_DEFAULT_GRID), 22 settings:
 * - `sgd`, VW's default optimizer (adaptive, normalized, invariant SGD): `-l` 0.1, 0.25, 0.5 (VW's
 *   default), 1, 2.
 * - `--ftrl` (per-coordinate FTRL-proximal, McMahan et al. 2013): the step of a weight is
 *   alpha / (beta + sqrt(Σ g²)); `--ftrl_alpha` 0.005 (VW's default), 0.02, 0.1, 0.5 ×
 *   `--ftrl_beta` 0.1 (VW's default), 1 (the paper's usual value; smaller first steps).
 * - `--pistol` (PiSTOL, Orabona 2014, parameter-free): VW's weight is linear in `--ftrl_beta` (the
 *   scale of the bet) and `--ftrl_alpha` divides the exponent's growth; 0.25, 0.5 (VW's default),
 *   1 × 0.5, 1 (VW's default), 2.
 * No L1/L2 (VW's defaults, 0). The defaults are those of ftrl.cc/gd.cc in VW 9.11.9.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError } from '../../lib/errors.js';
import { silentLogger, type Logger } from '../../lib/log.js';
import { mapLimit } from '../../lib/map-limit.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { ensureVwPython, vwVersion } from './python-env.js';
import { checkHistory, chooseTrial, scoreTrial } from './select.js';
import type { PeerRun } from './types.js';
import type { VwIds } from './vw-format.js';
import { runVw, VW_OPTIMIZERS, vwArgs, writeVwData, type VwSetting } from './vw-runner.js';

/** The settings tried by default, per optimizer (see the module comment for why). */
export const VW_DEFAULT_GRID = {
  sgd: { learningRate: [0.1, 0.25, 0.5, 1, 2] },
  ftrl: { ftrlAlpha: [0.005, 0.02, 0.1, 0.5], ftrlBeta: [0.1, 1] },
  pistol: { ftrlAlpha: [0.5, 1, 2, 4], ftrlBeta: [0.125, 0.25, 0.5, 1] },
} as const;

/** VW_DEFAULT_GRID as a list, in the order tried (ties go to the earlier). */
export const VW_DEFAULT_TRIALS: readonly VwSetting[] = [
  ...VW_DEFAULT_GRID.sgd.learningRate.map((learningRate): VwSetting => ({ optimizer: 'sgd', learningRate })),
  ...(['ftrl', 'pistol'] as const).flatMap((optimizer) =>
    VW_DEFAULT_GRID[optimizer].ftrlAlpha.flatMap((ftrlAlpha) => VW_DEFAULT_GRID[optimizer].ftrlBeta.map((ftrlBeta): VwSetting => ({ optimizer, ftrlAlpha, ftrlBeta }))),
  ),
];

/** The vw peer's run: a PeerRun whose choice is a VwSetting, with the VW arguments and version used. */
export interface VwPeerRun extends PeerRun {
  name: 'vw';
  chosen: VwSetting;
  /** VW arguments of the final pass (besides `-d`, `-p`, `--quiet`). */
  args: string[];
  /** vowpalwabbit package version. */
  version: string;
}

/** Options of `runVwPeer`. */
export interface VwPeerOptions {
  /** Parent of this run's work directory (a fresh `vw-<uuid>` inside it: data and prediction files). @default '.thaw/peers' */
  workDir?: string;
  /** Keep the run's work directory instead of removing it at the end. @default false */
  keepFiles?: boolean;
  /** Where the VW venv is made on first use (`<cacheDir>/venv-vw`, python-env.ts). @default '.thaw' */
  cacheDir?: string;
  /** Python that creates the venv, or has vowpalwabbit already. @default process.env.THAW_PYTHON ?? 'python3' */
  python?: string;
  /** Hash bits (`-b`): 2^bits weights per process. @default 22 */
  bits?: number;
  /** Which entity ids are features (`user`/`item`: only that side's id). @default 'both' */
  ids?: VwIds;
  /** Settings tried on the history, in order (ties go to the earlier). @default VW_DEFAULT_TRIALS */
  trials?: readonly VwSetting[];
  /** VW processes at a time while trying settings (one process per setting). @default 2 */
  concurrency?: number;
  /** Time allowed for one VW process, ms. @default 1_800_000 */
  timeoutMs?: number;
  /** @default silent */
  logger?: Logger;
}

function checkSetting(s: VwSetting): VwSetting {
  const values = s.optimizer === 'sgd' ? [s.learningRate] : [s.ftrlAlpha, s.ftrlBeta];
  if (!VW_OPTIMIZERS.includes(s.optimizer) || values.some((v) => !Number.isFinite(v) || v <= 0)) {
    throw new ConfigError('vw.trials', `each setting needs optimizer sgd|ftrl|pistol and finite step sizes > 0, got ${JSON.stringify(s)}`);
  }
  return s;
}

function resolveOptions(opts: VwPeerOptions): Required<Omit<VwPeerOptions, 'python'>> & Pick<VwPeerOptions, 'python'> {
  const bits = opts.bits ?? 22;
  if (!Number.isInteger(bits) || bits < 10 || bits > 30) throw new ConfigError('vw.bits', `must be an integer in [10, 30], got ${bits}`);
  const concurrency = opts.concurrency ?? 2;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new ConfigError('vw.concurrency', `must be an integer >= 1, got ${concurrency}`);
  const trials = (opts.trials ?? VW_DEFAULT_TRIALS).map(checkSetting);
  if (trials.length === 0) throw new ConfigError('vw.trials', 'must hold at least one setting');
  return {
    workDir: opts.workDir ?? join('.thaw', 'peers'),
    keepFiles: opts.keepFiles ?? false,
    cacheDir: opts.cacheDir ?? '.thaw',
    python: opts.python,
    bits,
    ids: opts.ids ?? 'both',
    trials,
    concurrency,
    timeoutMs: opts.timeoutMs ?? 30 * 60_000,
    logger: opts.logger ?? silentLogger,
  };
}

/**
 * Chooses VW's optimizer and step size on events [0, historyN) (one VW process per setting,
 * `concurrency` at a time, progressive AUC), then one prequential VW pass over the whole stream
 * with the choice. Installs vowpalwabbit on first use (python-env.ts).
 */
export async function runVwPeer(events: readonly LabelledEvent[], historyN: number, opts: VwPeerOptions = {}): Promise<VwPeerRun> {
  const t0 = performance.now();
  checkHistory(historyN, events.length);
  const o = resolveOptions(opts);
  const python = await ensureVwPython({ cacheDir: o.cacheDir, logger: o.logger, ...(o.python === undefined ? {} : { python: o.python }) });
  const version = await vwVersion(python);
  const dir = resolve(o.workDir, `vw-${randomUUID()}`);
  await mkdir(dir, { recursive: true });
  try {
    // The history file holds events [0, historyN) only: no trial can read past the history.
    await writeVwData(events.slice(0, historyN), join(dir, 'history.vw'), o.ids);
    const historyLabels = Uint8Array.from(events.slice(0, historyN), (e) => e.label);
    const vw = (dataFile: string, predFile: string, setting: VwSetting, expected: number): Promise<Float64Array> =>
      runVw({ python, workDir: dir, dataFile, predFile, args: vwArgs(setting, o.bits), expected, timeoutMs: o.timeoutMs });
    const trials = await mapLimit(o.trials, o.concurrency, async (setting, k) => {
      const trial = scoreTrial(setting, await vw('history.vw', `history-${k}.preds`, setting, historyN), historyLabels);
      o.logger.debug('vw trial', { ...trial });
      return trial;
    });
    const chosen = chooseTrial(trials).settings;
    const args = vwArgs(chosen, o.bits);
    o.logger.info('vw setting chosen on the history', { historyN, chosen, args: args.join(' ') });
    await writeVwData(events, join(dir, 'stream.vw'), o.ids);
    const scores = await vw('stream.vw', 'stream.preds', chosen, events.length);
    return { name: 'vw', scores, chosen, trials, args, version, ms: performance.now() - t0 };
  } finally {
    if (!o.keepFiles) await rm(dir, { recursive: true, force: true });
  }
}
