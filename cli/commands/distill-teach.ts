/** `thaw distill teach`: one elastic teacher worker (trainers/distill/teach-worker.ts) until SIGTERM/SIGINT. */
import { resolve } from 'node:path';
import type { DistillTeachConfig } from '../../config/commands/distill-teach.js';
import { ReleaseStore } from '../../model-store/releases.js';
import { initBackend } from '../../models/backend.js';
import { ensureTopics } from '../../streams/admin.js';
import { TeachWorker } from '../../trainers/distill/teach-worker.js';
import { createTeacherWatcher } from '../../trainers/distill/teacher.js';
import { EXIT, type Command, type CommandContext } from '../context.js';
import { heartbeatIntervalFor, kafkaConnection, rf } from '../connect.js';
import { aborted } from '../lifecycle.js';
import { checkServices, kafkaCheck } from '../preflight.js';

export const distillTeachCommand: Command<DistillTeachConfig> = { run: runDistillTeach };

async function runDistillTeach(cfg: DistillTeachConfig, ctx: CommandContext): Promise<number> {
  const kafka = kafkaConnection(cfg.kafka);
  await checkServices([kafkaCheck(kafka)]);
  await ensureTopics(
    kafka,
    [cfg.sourceTopic, cfg.softLabelTopic, cfg.deadLetterTopic].map((topic) => ({ topic, ...rf(cfg.replicationFactor) })),
    ctx.logger,
  );
  // The model family runs on TensorFlow.js: pick its backend before the first teacher is built.
  await initBackend('auto', ctx.logger);
  const teachers = createTeacherWatcher({
    store: new ReleaseStore({ root: resolve(cfg.releaseDir) }),
    model: cfg.teacherModel,
    pollIntervalMs: cfg.releasePollMs,
    kafka: { connection: kafka },
    logger: ctx.logger,
  });
  await teachers.start();
  const worker = new TeachWorker({
    kafka,
    teachers,
    logger: ctx.logger,
    groupId: cfg.groupId,
    sourceTopic: cfg.sourceTopic,
    softLabelTopic: cfg.softLabelTopic,
    deadLetterTopic: cfg.deadLetterTopic,
    retry: { retries: cfg.teacherRetries, minTimeoutMs: cfg.teacherRetryMinMs, maxTimeoutMs: cfg.teacherRetryMaxMs },
    consumer: { sessionTimeoutMs: cfg.sessionTimeoutMs, heartbeatIntervalMs: heartbeatIntervalFor(cfg.sessionTimeoutMs), maxBatchMessages: cfg.maxBatchMessages },
  });
  try {
    await worker.start();
  } catch (err) {
    await teachers.stop();
    throw err;
  }
  ctx.logger.info('teacher worker running', { groupId: cfg.groupId, from: cfg.sourceTopic, to: cfg.softLabelTopic, teacher: worker.release });
  const failure = await Promise.race([aborted(ctx.signal).then(() => undefined), worker.failed()]);
  await worker.stop();
  if (failure !== undefined) {
    ctx.logger.error('teacher worker left the group: its teacher kept failing', { code: failure.code, ...worker.stats });
    return EXIT.failure;
  }
  ctx.logger.info('teacher worker stopped', { ...worker.stats });
  return EXIT.ok;
}
