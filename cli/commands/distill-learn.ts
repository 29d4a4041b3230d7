/**
 * `thaw distill learn`: the student trainer of EDL-Dist. The online trainer of an fm release
 * (trainers/online-trainer.ts: its consumer, its publish → promote → commit cycle, its lineage) with
 * two additions: before a chunk is trained it waits (bounded) for the chunk's soft labels
 * (trainers/distill/soft-label-join.ts), and the FM learner steps on the distillation loss
 * (trainers/distill/loss.ts). SIGTERM/SIGINT drain: the last interval is published and committed.
 */
import { resolve } from 'node:path';
import type { DistillLearnConfig } from '../../config/commands/distill-learn.js';
import { ReleaseStore } from '../../model-store/releases.js';
import { ensureTopics } from '../../streams/admin.js';
import { labelledTopicFor } from '../../streams/topics.js';
import { SoftLabelJoin } from '../../trainers/distill/soft-label-join.js';
import { OnlineTrainer } from '../../trainers/online-trainer.js';
import { EXIT, type Command, type CommandContext } from '../context.js';
import { kafkaConnection, rf } from '../connect.js';
import { aborted } from '../lifecycle.js';
import { checkServices, kafkaCheck } from '../preflight.js';
import { waitFailed } from './train-online.js';

export const distillLearnCommand: Command<DistillLearnConfig> = { run: runDistillLearn };

async function runDistillLearn(cfg: DistillLearnConfig, ctx: CommandContext): Promise<number> {
  const kafka = kafkaConnection(cfg.kafka);
  await checkServices([kafkaCheck(kafka)]);
  const topic = cfg.labelledTopic ?? labelledTopicFor(cfg.side);
  await ensureTopics(
    kafka,
    [topic, cfg.softLabelTopic].map((t) => ({ topic: t, ...rf(cfg.replicationFactor) })),
    ctx.logger,
  );
  const join = new SoftLabelJoin({ kafka, topic: cfg.softLabelTopic, waitMs: cfg.softLabelWaitMs, maxPending: cfg.maxPendingSoftLabels, logger: ctx.logger });
  const trainer = new OnlineTrainer({
    kafka,
    store: new ReleaseStore({ root: resolve(cfg.releaseDir) }),
    model: cfg.model,
    side: cfg.side,
    kind: 'fm',
    topic,
    groupId: cfg.groupId ?? `thaw-distill-learn-${cfg.model}-${cfg.side}`,
    syncIntervalMs: cfg.syncIntervalMs,
    syncEveryEvents: cfg.syncEveryEvents,
    maxBatchMessages: cfg.maxBatchMessages,
    fm: { teacher: { logitOf: (ev) => join.take(ev), loss: { alpha: cfg.alpha, temperature: cfg.temperature } } },
    beforeObserve: (events) => join.ready(events),
    attached: { save: () => join.save(), start: (restored) => join.start(restored) },
    resume: cfg.resume,
    checkpointsKept: cfg.keepCheckpoints,
    onRelease: (m, info) => ctx.stdout.write(`${JSON.stringify({ release: m.version, parent: m.parent, events: info.events, offsets: info.offsets, softLabels: { ...join.stats } })}\n`),
    logger: ctx.logger,
  });
  try {
    await trainer.start();
    ctx.logger.info('student trainer running', { model: cfg.model, topic, softLabelTopic: cfg.softLabelTopic, alpha: cfg.alpha, temperature: cfg.temperature });
    await Promise.race([aborted(ctx.signal), waitFailed(trainer, ctx.signal)]);
    if (trainer.state === 'failed') {
      ctx.logger.error('student trainer failed; stopping without a release');
      await trainer.stop();
      return EXIT.failure;
    }
    await trainer.drain();
    ctx.logger.info('student trainer stopped', { softLabels: { ...join.stats } });
    return EXIT.ok;
  } finally {
    await trainer.stop().catch(() => undefined);
    await join.stop();
  }
}
