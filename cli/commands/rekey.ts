/** `thaw rekey`: runs the re-keyer (thaw.labelled → by-user / by-item) until SIGTERM/SIGINT. */
import type { RekeyConfig } from '../../config/commands/rekey.js';
import { ensureTopics } from '../../streams/admin.js';
import { Rekeyer } from '../../streams/rekey.js';
import { EXIT, type Command, type CommandContext } from '../context.js';
import { heartbeatIntervalFor, kafkaConnection, rf } from '../connect.js';
import { aborted } from '../lifecycle.js';
import { checkServices, kafkaCheck } from '../preflight.js';

export const rekeyCommand: Command<RekeyConfig> = { run: runRekey };

async function runRekey(cfg: RekeyConfig, ctx: CommandContext): Promise<number> {
  const kafka = kafkaConnection(cfg.kafka);
  await checkServices([kafkaCheck(kafka)]);
  await ensureTopics(
    kafka,
    [cfg.sourceTopic, cfg.byUserTopic, cfg.byItemTopic].map((topic) => ({ topic, ...rf(cfg.replicationFactor) })),
    ctx.logger,
  );
  const rekeyer = new Rekeyer({
    kafka,
    logger: ctx.logger,
    consumer: { sessionTimeoutMs: cfg.sessionTimeoutMs, heartbeatIntervalMs: heartbeatIntervalFor(cfg.sessionTimeoutMs) },
    groupId: cfg.groupId,
    sourceTopic: cfg.sourceTopic,
    byUserTopic: cfg.byUserTopic,
    byItemTopic: cfg.byItemTopic,
  });
  await rekeyer.start();
  ctx.logger.info('rekeyer running', { groupId: cfg.groupId, from: cfg.sourceTopic, to: [cfg.byUserTopic, cfg.byItemTopic] });
  await aborted(ctx.signal);
  await rekeyer.stop();
  ctx.logger.info('rekeyer stopped');
  return EXIT.ok;
}
