/**
 * Replay of a topic range for backfills: `resolveRange` turns offset or time bounds into exact
 * per-partition `[start, end)` offsets (fixed when the replay starts, so a live topic does not make
 * it endless), and `readRange` reads exactly those records as MessageBatch objects.
 *
 * `readRange` uses a throwaway consumer group (`<groupIdPrefix>-<uuid>`) that never commits, seeks
 * each partition to its start and stops each partition at its end; the group is deleted afterwards.
 * It never touches the offsets of live groups. The iterator pulls: a batch is fetched only while the
 * caller is ready for it (one batch buffered), so a slow backfill never piles records up in memory.
 */
import { randomUUID } from 'node:crypto';
import type { EachBatchPayload } from 'kafkajs';
import { ConfigError, ThawError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { retryRetriable, topicOffsets, withAdmin } from './admin.js';
import { createKafka, kafkaError, type KafkaConnection } from './kafka.js';
import { toRawMessage, type MessageBatch } from './message.js';

/** A bound of a range: an offset (applied to every partition, clamped to what exists) or an event time. */
export type RangeBound = { offset: number } | { timeMs: number };

/** Offsets `[start, end)` of one partition. */
export interface PartitionRange {
  partition: number;
  start: number;
  end: number;
}

function checkBound(key: string, b: RangeBound): void {
  if ('offset' in b) {
    if (!Number.isSafeInteger(b.offset) || b.offset < 0) throw new ConfigError(key, `offset must be an integer >= 0, got ${b.offset}`);
  } else if (!Number.isFinite(b.timeMs) || b.timeMs < 0) {
    throw new ConfigError(key, `timeMs must be a finite number >= 0, got ${b.timeMs}`);
  }
}

/**
 * Per-partition `[start, end)` for `from`..`to`. A time bound maps to the first offset whose Kafka
 * timestamp is >= the time (the high watermark if none), so `to: { timeMs }` excludes that instant.
 * Offsets are clamped to `[low, high]`; `end` is never below `start`.
 */
export async function resolveRange(conn: KafkaConnection, topic: string, from: RangeBound, to: RangeBound, logger?: Logger): Promise<PartitionRange[]> {
  checkBound('replay.from', from);
  checkBound('replay.to', to);
  try {
    // A topic just created may not have its leaders yet: retriable, asked again.
    return await retryRetriable(() =>
      withAdmin(
        conn,
        async (admin) => {
          const ends = await topicOffsets(admin, topic);
          const byTime = async (timeMs: number): Promise<Map<number, number>> => new Map((await admin.fetchTopicOffsetsByTimestamp(topic, timeMs)).map((r) => [r.partition, Number(r.offset)]));
          const fromTimes = 'timeMs' in from ? await byTime(from.timeMs) : undefined;
          const toTimes = 'timeMs' in to ? await byTime(to.timeMs) : undefined;
          return ends.map(({ partition, low, high }) => {
            const clamp = (o: number): number => Math.min(Math.max(o, low), high);
            const start = clamp('offset' in from ? from.offset : (fromTimes?.get(partition) ?? high));
            const end = clamp('offset' in to ? to.offset : (toTimes?.get(partition) ?? high));
            return { partition, start, end: Math.max(start, end) };
          });
        },
        logger,
      ),
    );
  } catch (err) {
    throw err instanceof ThawError ? err : kafkaError(conn, `resolving replay range of ${topic}`, err);
  }
}

export interface ReadRangeOptions {
  logger?: Logger;
  /** Largest batch yielded. Records. @default 2000 */
  maxBatchMessages?: number;
  /** Called after each yielded batch with the records done so far and the total of the range. @default none */
  onProgress?: (p: { done: number; total: number }) => void;
  /** Prefix of the throwaway consumer group. @default 'thaw-replay' */
  groupIdPrefix?: string;
  /** Heartbeat period while the caller holds a batch. Milliseconds. @default 3000 */
  heartbeatIntervalMs?: number;
}

/** Total records of a range. */
export function rangeSize(ranges: readonly PartitionRange[]): number {
  return ranges.reduce((s, r) => s + (r.end - r.start), 0);
}

/** Reads exactly the records of `ranges` of `topic`; finishes when every partition reached its end. */
export async function* readRange(conn: KafkaConnection, topic: string, ranges: readonly PartitionRange[], opts: ReadRangeOptions = {}): AsyncGenerator<MessageBatch> {
  const max = opts.maxBatchMessages ?? 2000;
  if (!Number.isInteger(max) || max < 1) throw new ConfigError('replay.maxBatchMessages', 'must be an integer >= 1');
  const heartbeatMs = opts.heartbeatIntervalMs ?? 3000;
  const logger = (opts.logger ?? silentLogger).child({ component: 'replay', topic });
  const pending = new Map(ranges.filter((r) => r.end > r.start).map((r) => [r.partition, r]));
  const total = rangeSize(ranges);
  if (pending.size === 0) return;

  // A one-slot channel between kafkajs' eachBatch (producer side) and this generator (consumer side).
  const queue: MessageBatch[] = [];
  let wakeReader: (() => void) | undefined;
  let wakeWriter: (() => void) | undefined;
  let finished = false;
  let failure: unknown;
  const notifyReader = (): void => {
    wakeReader?.();
    wakeReader = undefined;
  };
  const notifyWriter = (): void => {
    wakeWriter?.();
    wakeWriter = undefined;
  };

  const groupId = `${opts.groupIdPrefix ?? 'thaw-replay'}-${randomUUID()}`;
  // read_committed (explicit): records of open or aborted transactions are skipped, never replayed.
  const consumer = createKafka(conn, logger).consumer({ groupId, maxWaitTimeInMs: 200, allowAutoTopicCreation: false, readUncommitted: false });
  const pausePartition = (partition: number): void => consumer.pause([{ topic, partitions: [partition] }]);

  const eachBatch = async (p: EachBatchPayload): Promise<void> => {
    const { batch } = p;
    const r = pending.get(batch.partition);
    if (r === undefined) {
      // Done, or not part of the range: stop fetching it.
      pausePartition(batch.partition);
      return;
    }
    if (p.isStale()) return;
    const inRange = batch.messages.filter((m) => {
      const o = Number(m.offset);
      return o >= r.start && o < r.end;
    });
    for (let i = 0; i < inRange.length && !finished; i += max) {
      const slice = inRange.slice(i, i + max);
      queue.push({ topic, partition: batch.partition, messages: slice.map((m) => toRawMessage(topic, batch.partition, m)), highWatermark: Number(batch.highWatermark) });
      notifyReader();
      // Wait until the caller took it, heartbeating so a slow caller does not get us evicted.
      while (queue.length > 0 && !finished) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, heartbeatMs);
          wakeWriter = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        if (queue.length > 0 && !finished) await p.heartbeat();
      }
    }
    const last = batch.messages[batch.messages.length - 1];
    if (last !== undefined) p.resolveOffset(last.offset);
    reached(batch.partition, Number(batch.lastOffset()));
  };
  /** A partition's range is done once a fetch reached its last offset (a record or a commit marker). */
  const reached = (partition: number, lastOffset: number): void => {
    const r = pending.get(partition);
    if (r === undefined || lastOffset < r.end - 1) return;
    pending.delete(partition);
    pausePartition(partition);
    if (pending.size === 0) {
      finished = true;
      notifyReader();
    }
  };
  // A fetch of nothing but commit markers or aborted records (a transactional topic's end) never
  // reaches eachBatch.
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
    if (e.payload.topic === topic && e.payload.batchSize === 0) reached(e.payload.partition, Number(e.payload.lastOffset));
  });

  try {
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: async (p) => {
          try {
            await eachBatch(p);
          } catch (err) {
            failure = err;
            notifyReader();
            throw err;
          }
        },
      });
    } catch (err) {
      throw kafkaError(conn, `replay consumer for ${topic} failed to start`, err);
    }
    // run() resolves after the group join, so seeks apply to our assignment.
    for (const r of ranges) {
      if (pending.has(r.partition)) consumer.seek({ topic, partition: r.partition, offset: String(r.start) });
      else pausePartition(r.partition);
    }
    let done = 0;
    for (;;) {
      if (failure !== undefined) throw kafkaError(conn, `replay of ${topic} failed`, failure);
      const b = queue.shift();
      if (b !== undefined) {
        done += b.messages.length;
        notifyWriter();
        yield b;
        opts.onProgress?.({ done, total });
        continue;
      }
      if (finished) break;
      await new Promise<void>((resolve) => {
        wakeReader = resolve;
      });
    }
    logger.debug('replay finished', { records: done, total });
  } finally {
    finished = true;
    notifyWriter();
    await consumer.disconnect().catch(() => undefined);
    // The group never committed anything; remove it so throwaway groups do not accumulate.
    await withAdmin(conn, (admin) => admin.deleteGroups([groupId])).catch(() => undefined);
  }
}
