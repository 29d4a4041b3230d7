/** `thaw join`: runs the impression/click join (pending impressions in Redis) until SIGTERM/SIGINT. */
import type { JoinConfig } from '../../config/commands/join.js';
import { ConfigError } from '../../lib/errors.js';
import { createRedis, pingRedis } from '../../model-store/redis.js';
import { ensureTopics } from '../../streams/admin.js';
import { ImpressionClickJoin } from '../../streams/join.js';
import { EXIT, type Command, type CommandContext } from '../context.js';
import { heartbeatIntervalFor, kafkaConnection, redisConnection, rf } from '../connect.js';
import { aborted } from '../lifecycle.js';
import { checkServices, kafkaCheck, redisCheck } from '../preflight.js';

export const joinCommand: Command<JoinConfig> = { run: runJoin };

async function runJoin(cfg: JoinConfig, ctx: CommandContext): Promise<number> {
  if (cfg.redis.cluster) {
    // The join's scripts touch an impression's hash and the window's sorted set: two slots.
    throw new ConfigError('redis.cluster', 'thaw join keeps its pending impressions on a standalone Redis; a Redis Cluster is not supported yet');
  }
  const kafka = kafkaConnection(cfg.kafka);
  const redis = createRedis({ ...redisConnection(cfg.redis), cluster: false }, ctx.logger);
  try {
    // Pending impressions live in Redis: a wrong password would otherwise retry every write for ever.
    await checkServices([kafkaCheck(kafka), redisCheck(cfg.redis.url, () => pingRedis(redis))]);
    await ensureTopics(
      kafka,
      [cfg.impressionsTopic, cfg.clicksTopic, cfg.outputTopic].map((topic) => ({ topic, ...rf(cfg.replicationFactor) })),
      ctx.logger,
    );
    const join = new ImpressionClickJoin({
      kafka,
      redis,
      logger: ctx.logger,
      consumer: { sessionTimeoutMs: cfg.sessionTimeoutMs, heartbeatIntervalMs: heartbeatIntervalFor(cfg.sessionTimeoutMs) },
      groupId: cfg.groupId,
      impressionsTopic: cfg.impressionsTopic,
      clicksTopic: cfg.clicksTopic,
      outputTopic: cfg.outputTopic,
      keyPrefix: cfg.joinKeyPrefix,
      attributionWindowMs: cfg.attributionWindowMs,
      allowedLatenessMs: cfg.allowedLatenessMs,
      ...(cfg.pendingTtlMs !== undefined ? { pendingTtlMs: cfg.pendingTtlMs } : {}),
    });
    await join.start();
    ctx.logger.info('join running', { groupId: cfg.groupId, output: cfg.outputTopic });
    await aborted(ctx.signal);
    await join.stop();
    ctx.logger.info('join stopped');
  } finally {
    redis.disconnect();
  }
  return EXIT.ok;
}
