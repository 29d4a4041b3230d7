/**
 * `thaw train fm`: trains the shared FM offline on the hot entities of a source (trainers/fm-trainer.ts)
 * and publishes it as a release (ReleaseStore publish + promote). Prints the version on stdout.
 */
import { resolve } from 'node:path';
import type { TrainFmConfig } from '../../config/commands/train-fm.js';
import { ReleaseStore } from '../../model-store/releases.js';
import { openSource } from '../../sources/index.js';
import type { BiasFit } from '../../trainers/bias-fit.js';
import { trainFm } from '../../trainers/fm-trainer.js';
import { EXIT, type Command, type CommandContext } from '../context.js';
import { publishFm } from '../fm-release.js';

export const trainFmCommand: Command<TrainFmConfig> = { run: runTrainFm };

async function runTrainFm(cfg: TrainFmConfig, ctx: CommandContext): Promise<number> {
  const log = ctx.logger;
  const t0 = performance.now();
  const result = await trainFm(openSource(cfg.source), {
    epochs: cfg.epochs,
    k: cfg.k,
    buckets: cfg.buckets,
    learningRate: cfg.learningRate,
    minCount: cfg.minCount,
    seed: cfg.seed,
    ...(cfg.maxEvents === undefined ? {} : { maxEvents: cfg.maxEvents }),
    onEpoch: (r) => log.info('epoch', { epoch: r.epoch, events: r.events, logloss: round(r.logloss), auc: round(r.auc), ms: Math.round(r.ms) }),
  });
  if (result.trainEvents === 0) {
    log.error('no training events: no entity reached minCount in the source', { prefixEvents: result.prefixEvents, minCount: cfg.minCount });
    return EXIT.failure;
  }
  const last = result.epochs[result.epochs.length - 1];
  const store = new ReleaseStore({ root: resolve(cfg.releaseDir) });
  const manifest = await publishFm(store, cfg.model, result.model, {
    promote: !cfg.noPromote,
    metrics: {
      prefixEvents: result.prefixEvents,
      trainEvents: result.trainEvents,
      hotUsers: result.hotEntities.user,
      hotItems: result.hotEntities.item,
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
  return {
    userBiasVariance: fit.user.variance,
    userBiasDrift: fit.user.drift,
    itemBiasVariance: fit.item.variance,
    itemBiasDrift: fit.item.drift,
    biasFitLogloss: fit.logLoss,
  };
}

function round(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}
