/**
 * `thaw replay`: backfills under a namespace of their own, never `live`.
 *   --from A --to B   resolves [A, B) per partition (offsets or times), reads exactly that range with a
 *                     throwaway consumer group (live groups untouched) and runs it through the same
 *                     BatchProcessor as the live worker, with states under the replay's Redis namespace
 *                     and prediction rows under its analytics namespace;
 *   --promote         copies the namespace's states over live's, then drops the namespace's states;
 *   --drop            deletes the namespace's states and its prediction rows.
 */
import { join, resolve } from 'node:path';
import { createAdapter } from '../../adapters/registry.js';
import { ClickHouseSink } from '../../analytics/clickhouse-sink.js';
import { dropNamespaceRows } from '../../analytics/namespaces.js';
import type { ReplayConfig } from '../../config/commands/replay.js';
import { BatchProcessor, type BatchItem } from '../../consumers/processor.js';
import { errorMessage } from '../../lib/errors.js';
import { Progress } from '../../lib/progress.js';
import { dropNamespace, promoteNamespace } from '../../model-store/namespaces.js';
import { createRedis, pingRedis } from '../../model-store/redis.js';
import { RedisEntityStore } from '../../model-store/redis-store.js';
import { rangeSize, readRange, resolveRange } from '../../streams/replay.js';
import { decodeLabelled } from '../../streams/serde.js';
import { labelledTopicFor } from '../../streams/topics.js';
import { EXIT, type Command, type CommandContext } from '../context.js';
import { checkServices, clickhouseCheck, kafkaCheck, redisCheck } from '../preflight.js';
import { clickhouseSinkOptions, kafkaConnection, openSqlTarget, redisConnection } from '../connect.js';
import { loadCurrentFm } from '../fm-release.js';
import { closeAll } from '../lifecycle.js';

export const replayCommand: Command<ReplayConfig> = { run: runReplay };

async function runReplay(cfg: ReplayConfig, ctx: CommandContext): Promise<number> {
  if (cfg.promote) return promote(cfg, ctx);
  if (cfg.drop) return drop(cfg, ctx);
  return replayRange(cfg, ctx);
}

async function promote(cfg: ReplayConfig, ctx: CommandContext): Promise<number> {
  const redis = createRedis(redisConnection(cfg.redis), ctx.logger);
  try {
    await checkServices([redisCheck(cfg.redis.url, () => pingRedis(redis))]);
    const copied = await promoteNamespace(redis, cfg.redis.keyPrefix, cfg.namespace, 'live');
    ctx.logger.info('namespace promoted into live', { namespace: cfg.namespace, states: copied });
    ctx.stdout.write(`promoted ${copied} states from namespace ${cfg.namespace} into live\n`);
  } finally {
    redis.disconnect();
  }
  return EXIT.ok;
}

async function drop(cfg: ReplayConfig, ctx: CommandContext): Promise<number> {
  const redis = createRedis(redisConnection(cfg.redis), ctx.logger);
  const target = openSqlTarget(cfg.clickhouse);
  try {
    await checkServices([redisCheck(cfg.redis.url, () => pingRedis(redis))]);
    const states = await dropNamespace(redis, cfg.redis.keyPrefix, cfg.namespace);
    await dropNamespaceRows(target, cfg.namespace);
    ctx.logger.info('namespace dropped', { namespace: cfg.namespace, states });
    ctx.stdout.write(`dropped namespace ${cfg.namespace}: ${states} states and its prediction rows\n`);
  } finally {
    redis.disconnect();
    await target.close();
  }
  return EXIT.ok;
}

async function replayRange(cfg: ReplayConfig, ctx: CommandContext): Promise<number> {
  const log = ctx.logger.child({ namespace: cfg.namespace, side: cfg.side, adapter: cfg.adapter });
  if (cfg.from === undefined || cfg.to === undefined) throw new Error('unreachable: schema requires from/to');
  const kafka = kafkaConnection(cfg.kafka);
  const topic = cfg.topic ?? labelledTopicFor(cfg.side);
  const { fm } = await loadCurrentFm(resolve(cfg.releaseDir), cfg.model);
  const adapter = createAdapter(cfg.adapter, cfg.side, fm, cfg.adapterOptions['fm-adagrad']);
  const store = new RedisEntityStore({ redis: redisConnection(cfg.redis), keyPrefix: cfg.redis.keyPrefix, logger: log });
  // Its own spool directory: a live worker on this host may own the default one.
  const sink = new ClickHouseSink(clickhouseSinkOptions(cfg.clickhouse, join(resolve(cfg.spoolDir), `replay-${cfg.namespace}`), log));
  let ranges: Awaited<ReturnType<typeof resolveRange>>;
  try {
    // Before reading anything: a wrong password would otherwise retry the first batch for ever.
    await checkServices([kafkaCheck(kafka), redisCheck(cfg.redis.url, () => store.ping()), clickhouseCheck(cfg.clickhouse.url, () => sink.ensureSchema())]);
    ranges = await resolveRange(kafka, topic, cfg.from, cfg.to, log);
  } catch (err) {
    await closeAll([sink, store], () => undefined);
    throw err;
  }
  const total = rangeSize(ranges);
  log.info('replay range resolved', { topic, total, ranges });
  if (total === 0) {
    // Dates or offsets outside the topic (the README's example dates on a fresh topic): say so.
    const span = ranges.map((r) => `p${r.partition}@${r.start}`).join(' ');
    log.warn('the range selects no event: nothing to replay', { topic, from: cfg.from, to: cfg.to, strict: cfg.strict });
    ctx.stderr.write(
      `thaw replay: [--from, --to) selects no event of ${topic} (resolved to ${span || 'no partition'}); check the bounds against the topic's data${cfg.strict ? '' : ' (--strict makes this exit 1)'}\n`,
    );
    if (cfg.strict) {
      await closeAll([sink, store], (err) => log.warn('close failed', { error: errorMessage(err) }));
      return EXIT.failure;
    }
  }

  const processor = new BatchProcessor({ adapter, store, sink, scope: { namespace: cfg.namespace, side: cfg.side, adapter: cfg.adapter }, logger: log });
  const progress = new Progress({ label: 'replay', total, stream: ctx.stderr, logger: log });
  let processed = 0;
  let skipped = 0;
  let undecodable = 0;
  let interrupted = false;
  try {
    await sink.ensureSchema();
    for await (const batch of readRange(kafka, topic, ranges, { logger: log, maxBatchMessages: cfg.batchSize })) {
      const items: BatchItem[] = [];
      for (const m of batch.messages) {
        try {
          if (m.value === null) throw new Error('tombstone');
          items.push({ offset: m.offset, event: decodeLabelled(m.value) });
        } catch (err) {
          // Live already dead-lettered these; a replay only counts them.
          undecodable++;
          log.debug('undecodable message skipped', { partition: m.partition, offset: m.offset, error: errorMessage(err) });
        }
      }
      const r = await processor.process(items);
      processed += r.processed;
      skipped += r.skipped;
      progress.tick(batch.messages.length);
      if (ctx.signal.aborted) {
        interrupted = true;
        break; // leaving the loop closes readRange's consumer
      }
    }
    await sink.flush();
  } finally {
    progress.finish();
    await closeAll([sink, store], (err) => log.warn('close failed', { error: errorMessage(err) }));
  }
  log.info('replay finished', { processed, skipped, undecodable, interrupted });
  ctx.stdout.write(
    `replayed ${processed} events of ${topic} into namespace ${cfg.namespace}` +
      `${skipped > 0 ? ` (${skipped} already applied)` : ''}${undecodable > 0 ? `, ${undecodable} undecodable skipped` : ''}` +
      `${interrupted ? ' (interrupted)' : ''}\n` +
      `compare: thaw curves --namespace ${cfg.namespace}   then: thaw replay --namespace ${cfg.namespace} --promote | --drop\n`,
  );
  return interrupted ? EXIT.interrupted : EXIT.ok;
}
