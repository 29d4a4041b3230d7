/**
 * `thaw train fm`: trains the shared FM offline on the hot entities of a source's history
 * (trainers/fm-trainer.ts) and publishes it as a release (ReleaseStore publish + promote). Prints the
 * version. The history options are those of every `thaw train` command (trainers/history.ts).
 */
import { resolve } from 'node:path';
import type { TrainFmConfig } from '../../config/commands/train-fm.js';
import { ConfigError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { ReleaseStore } from '../../model-store/releases.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { openSource } from '../../sources/index.js';
import type { BiasFit } from '../../trainers/bias-fit.js';
import { trainFm } from '../../trainers/fm-trainer.js';
import { historyEventCount, resolveHistory, type ResolvedHistory } from '../../trainers/history.js';
import { EXIT, type Command, type CommandContext } from '../context.js';
import { publishFm } from '../fm-release.js';

export const trainFmCommand: Command<TrainFmConfig> = { run: runTrainFm };

/**
 * The history options of `thaw train fm` resolved as every trainer's are (trainers/history.ts), after
 * the deprecated aliases: `--max-events` for `--history-events`, `--min-count` for `--min-events`.
 * Each alias given logs one warning; an alias given together with its new name is a ConfigError.
 */
export function fmHistoryOptions(cfg: Pick<TrainFmConfig, 'historyFraction' | 'historyEvents' | 'minEvents' | 'maxEvents' | 'minCount'>, logger: Pick<Logger, 'warn'>): ResolvedHistory {
  const alias = (old: string, now: string, oldValue: number | undefined, nowValue: number | undefined): number | undefined => {
    if (oldValue === undefined) return nowValue;
    if (nowValue !== undefined) throw new ConfigError(old, `--${old} is a deprecated alias of --${now}: give only --${now}`);
    logger.warn(`--${old} is deprecated: use --${now}`, { [old]: oldValue });
    return oldValue;
  };
  const historyEvents = alias('max-events', 'history-events', cfg.maxEvents, cfg.historyEvents);
  const minEvents = alias('min-count', 'min-events', cfg.minCount, cfg.minEvents);
  const eventsFlag = cfg.maxEvents === undefined ? 'history-events' : 'max-events';
  return resolveHistory({ historyFraction: cfg.historyFraction, historyEvents, minEvents }, 'fm', eventsFlag);
}

/** Events of a source (one pass; a history given as a share of the source needs its length). */
async function countEvents(source: AsyncIterable<LabelledEvent>): Promise<number> {
  let n = 0;
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- counting: for-await needs a binding it never reads
  for await (const _ of source) n++;
  return n;
}

async function runTrainFm(cfg: TrainFmConfig, ctx: CommandContext): Promise<number> {
  const log = ctx.logger;
  if (cfg.side !== undefined) log.warn("--side is deprecated and ignored: FM releases are two-sided (one release serves both sides' workers)", { side: cfg.side });
  const history = fmHistoryOptions(cfg, log);
  const t0 = performance.now();
  let historyEvents: number;
  let counted: { streamEvents: number; historyFraction: number } | undefined;
  if ('events' in history.length) {
    // The trainer stops reading after the history: the rest of the source is never pulled.
    historyEvents = history.length.events;
  } else {
    const streamEvents = await countEvents(openSource(cfg.source));
    if (streamEvents === 0) throw new ConfigError('source', 'has no events');
    historyEvents = historyEventCount(history.length, streamEvents);
    counted = { streamEvents, historyFraction: history.length.fraction };
    log.info('source counted', { events: streamEvents, historyEvents, historyFraction: history.length.fraction });
  }
  const result = await trainFm(openSource(cfg.source), {
    epochs: cfg.epochs,
    k: cfg.k,
    buckets: cfg.buckets,
    crossBuckets: cfg.crossBuckets,
    learningRate: cfg.learningRate,
    minCount: history.minEvents,
    maxEvents: historyEvents,
    seed: cfg.seed,
    onEpoch: (r) => log.info('epoch', { epoch: r.epoch, events: r.events, logloss: round(r.logloss), auc: round(r.auc), ms: Math.round(r.ms) }),
  });
  const last = result.epochs[result.epochs.length - 1];
  const store = new ReleaseStore({ root: resolve(cfg.releaseDir) });
  const manifest = await publishFm(store, cfg.model, result.model, {
    promote: !cfg.noPromote,
    metrics: {
      prefixEvents: result.prefixEvents,
      ...counted,
      minEvents: history.minEvents,
      trainEvents: result.trainEvents,
      hotUsers: result.hotEntities.user,
      hotItems: result.hotEntities.item,
      crossBuckets: result.model.crossBuckets,
      ...Object.fromEntries(Object.entries(result.crossFit ?? {}).map(([size, loss]) => [`crossFitLogloss${size}`, loss])),
      ...(result.biasFit === undefined ? {} : biasFitMetrics(result.biasFit)),
      ...(last === undefined ? {} : { auc: last.auc, logloss: last.logloss }),
    },
  });
  log.info('release published', {
    model: cfg.model,
    version: manifest.version,
    promoted: !cfg.noPromote,
    releaseDir: store.root,
    ms: Math.round(performance.now() - t0),
  });
  ctx.stdout.write(cfg.json ? JSON.stringify(manifest) + '\n' : `${manifest.version}\n`);
  return EXIT.ok;
}

/** The bias filter's chosen prior per side, as manifest metrics. */
function biasFitMetrics(fit: BiasFit): Record<string, number> {
  const out: Record<string, number> = { biasFitLogloss: fit.logLoss };
  for (const side of ['user', 'item'] as const) {
    const p = fit[side];
    Object.assign(out, { [`${side}BiasVariance`]: p.variance, [`${side}BiasDrift`]: p.drift, [`${side}SessionDecay`]: p.sessionDecay, [`${side}SessionVariance`]: p.sessionVariance });
  }
  return out;
}

function round(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}
