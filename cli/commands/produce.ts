/**
 * `thaw produce`: reads an event source, Avro-encodes it and sends it to Kafka in batches at the
 * chosen rate, with progress on stderr. Modes:
 *   labelled            LabelledEvents to --topic (thaw.labelled), for the rekeyer;
 *   labelled --rekeyed  straight to thaw.labelled.by-user / .by-item keyed by entity, so a demo
 *                       production run needs no rekeyer;
 *   impressions         an Impression per event, and a Click (event time + clickDelayMs) for each
 *                       positive, to thaw.impressions / thaw.clicks for the join.
 */
import type { ProduceConfig } from '../../config/commands/produce.js';
import { Progress } from '../../lib/progress.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { openSource } from '../../sources/index.js';
import { ensureTopics } from '../../streams/admin.js';
import { EventProducer, type OutMessage } from '../../streams/producer.js';
import { encodeClick, encodeImpression, encodeLabelled } from '../../streams/serde.js';
import { EXIT, type Command, type CommandContext } from '../context.js';
import { kafkaConnection, rf } from '../connect.js';
import { TokenBucket } from '../token-bucket.js';

/** SyntheticOptions' default length (sources/synthetic.ts), used only for the progress ETA. */
const SYNTHETIC_DEFAULT_EVENTS = 100_000;

export const produceCommand: Command<ProduceConfig> = { run: runProduce };

type Batch = { topic: string; messages: OutMessage[] }[];

/** Kafka batches for one chunk of events, by mode. */
export function toBatches(
  cfg: Pick<ProduceConfig, 'mode' | 'rekeyed' | 'topic' | 'clickDelayMs' | 'byUserTopic' | 'byItemTopic' | 'impressionsTopic' | 'clicksTopic'>,
  events: readonly LabelledEvent[],
): Batch {
  if (cfg.mode === 'impressions') {
    const impressions: OutMessage[] = [];
    const clicks: OutMessage[] = [];
    for (const e of events) {
      const imp = { impressionId: e.eventId, timeMs: e.timeMs, userId: e.userId, itemId: e.itemId, userFeatures: e.userFeatures, itemFeatures: e.itemFeatures };
      impressions.push({ key: e.eventId, value: encodeImpression(imp), timestampMs: e.timeMs });
      const clickMs = e.timeMs + cfg.clickDelayMs;
      if (e.label === 1) clicks.push({ key: e.eventId, value: encodeClick({ impressionId: e.eventId, timeMs: clickMs }), timestampMs: clickMs });
    }
    // Impressions first: the join accepts early clicks, but in-order is the common case.
    return [
      { topic: cfg.impressionsTopic, messages: impressions },
      { topic: cfg.clicksTopic, messages: clicks },
    ];
  }
  // Every record carries its event time as its Kafka timestamp, as `thaw rekey` and the join write
  // them: `thaw replay --from/--to` with ISO times then selects by event time.
  const labelled = events.map((e) => ({ e, value: encodeLabelled(e), timestampMs: e.timeMs }));
  if (cfg.rekeyed) {
    return [
      { topic: cfg.byUserTopic, messages: labelled.map(({ e, value, timestampMs }) => ({ key: e.userId, value, timestampMs })) },
      { topic: cfg.byItemTopic, messages: labelled.map(({ e, value, timestampMs }) => ({ key: e.itemId, value, timestampMs })) },
    ];
  }
  return [{ topic: cfg.topic, messages: labelled.map(({ e, value, timestampMs }) => ({ key: e.eventId, value, timestampMs })) }];
}

/** Events expected, when known up front (a limit, or a synthetic stream's length), for the ETA. */
function totalOf(cfg: ProduceConfig): { total?: number } {
  const known = cfg.source.kind === 'synthetic' ? (cfg.source.events ?? SYNTHETIC_DEFAULT_EVENTS) : undefined;
  const total = cfg.limit === undefined ? known : known === undefined ? cfg.limit : Math.min(known, cfg.limit);
  return total === undefined ? {} : { total };
}

async function runProduce(cfg: ProduceConfig, ctx: CommandContext): Promise<number> {
  const log = ctx.logger;
  const kafka = kafkaConnection(cfg.kafka);
  const topics = cfg.mode === 'impressions' ? [cfg.impressionsTopic, cfg.clicksTopic] : cfg.rekeyed ? [cfg.byUserTopic, cfg.byItemTopic] : [cfg.topic];
  await ensureTopics(
    kafka,
    topics.map((topic) => ({ topic, partitions: cfg.partitions, ...rf(cfg.replicationFactor) })),
    log,
  );
  const producer = new EventProducer({ kafka, logger: log });
  await producer.connect();
  const bucket = new TokenBucket(cfg.rate);
  const progress = new Progress({ label: 'produce', ...totalOf(cfg), stream: ctx.stderr, logger: log });
  let sent = 0;
  let interrupted = false;
  try {
    let chunk: LabelledEvent[] = [];
    const flush = async (): Promise<void> => {
      if (chunk.length === 0) return;
      await bucket.take(chunk.length, ctx.signal);
      await producer.sendMany(toBatches(cfg, chunk));
      sent += chunk.length;
      progress.tick(chunk.length);
      chunk = [];
    };
    for await (const e of openSource(cfg.source)) {
      if (ctx.signal.aborted) break;
      chunk.push(e);
      if (cfg.limit !== undefined && sent + chunk.length >= cfg.limit) break;
      if (chunk.length >= cfg.batchSize) await flush();
    }
    if (!ctx.signal.aborted) await flush();
    interrupted = ctx.signal.aborted;
  } catch (err) {
    if (!(ctx.signal.aborted && (err as { name?: string }).name === 'AbortError')) throw err;
    interrupted = true;
  } finally {
    progress.finish();
    await producer.close();
  }
  log.info('produce finished', { sent, topics, interrupted });
  if (sent === 0 && !interrupted) {
    // Nothing matched (an empty file, a source spec that selects nothing): say so, not a silent exit 0.
    log.warn('the source yielded no event: nothing produced', { source: cfg.source, strict: cfg.strict });
    ctx.stderr.write(`thaw produce: the source yielded no event; nothing produced${cfg.strict ? '' : ' (--strict makes this exit 1)'}\n`);
    if (cfg.strict) return EXIT.failure;
  }
  return interrupted ? EXIT.interrupted : EXIT.ok;
}
