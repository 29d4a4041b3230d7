/**
 * The impression/click join: turns `thaw.impressions` + `thaw.clicks` into labelled events on
 * `thaw.labelled` (eventId = impressionId, event time = impression time, source = 'join').
 *
 * - An impression is stored pending in Redis (hash per impression id, hash-tagged, wall-clock TTL
 *   `pendingTtlMs`) and its deadline (impression time + attribution window) is added to a sorted
 *   set of its impressions partition.
 * - A click within the window claims the impression and emits label 1, once: repeated clicks find
 *   the claim and are counted as duplicates. A click that arrives before its impression is
 *   remembered; the impression then emits label 1 on arrival.
 * - Label 0 comes from the sweep of a partition's deadlines, which runs after each impressions batch
 *   of that partition up to the partition's watermark = (largest impression event time seen) −
 *   `allowedLatenessMs`.
 *
 * Why event time and not the wall clock: a replay of last week's impressions must expire windows as
 * the original stream did, not all at once because "now" is a week later; and a live stream that
 * lags does not expire windows whose clicks are merely queued. The result is deterministic as long as
 * the clicks topic is no further behind the impressions topic than `allowedLatenessMs` of event time;
 * a click processed after its impression was swept is counted as `lateClicks` (label stays 0).
 * Known limit: a partition that receives no new impressions does not advance its watermark, so its
 * pending impressions wait (until `pendingTtlMs`, after which they are dropped and counted as
 * `expiredUnlabelled` when the watermark moves again).
 *
 * Redis work is one pipeline per Kafka batch, plus, for an impressions batch, one after its commit
 * that arms the TTLs of its impressions and removes the deadlines its sweep passed (join-scripts.ts
 * says why a TTL starts only at the commit).
 *
 * Exactly once (streams/transactions.ts): a chunk's labelled events, its dead letters and its
 * consumed offset are one Kafka transaction per input partition. Redis is not part of it, so every
 * Redis claim names who made it (join-scripts.ts): a chunk retried after an abort or a crash claims
 * the same impressions again and emits them again (the first attempt's events were never
 * committed), while a chunk after a committed one does not.
 */
import type { Redis } from 'ioredis';
import { ConfigError, PoisonEventError, ThawError, errorMessage } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { Impression, LabelledEvent } from '../schemas/types.js';
import { BatchConsumer, type BatchConsumerOptions } from './batch-consumer.js';
import { deadLetterOf } from './dead-letters.js';
import { installJoinScripts, type JoinCommands } from './join-scripts.js';
import type { KafkaConnection } from './kafka.js';
import type { MessageBatch, RawMessage } from './message.js';
import type { OutMessage } from './producer.js';
import { decodeClick, decodeImpression, encodeLabelled } from './serde.js';
import { TOPICS } from './topics.js';
import { PartitionTransactions, type ConsumedPosition } from './transactions.js';
import type { ChainableCommander } from 'ioredis';

export interface ImpressionClickJoinOptions {
  kafka: KafkaConnection;
  /** ioredis client (standalone Redis). The join defines three commands on it; it does not close it. */
  redis: Redis;
  logger?: Logger;
  /** Consumer group. @default 'thaw-join' */
  groupId?: string;
  /** @default TOPICS.impressions */
  impressionsTopic?: string;
  /** @default TOPICS.clicks */
  clicksTopic?: string;
  /** @default TOPICS.labelled */
  outputTopic?: string;
  /** @default TOPICS.deadLetters */
  deadLetterTopic?: string;
  /** Prefix of the join's Redis keys; give replays their own. @default 'thaw:join' */
  keyPrefix?: string;
  /** A click counts if its event time is at most this long after the impression's. Milliseconds. @default 1_800_000 (30 min) */
  attributionWindowMs?: number;
  /** How far behind the newest impression the watermark stays (tolerated click lag, in event time). Milliseconds. @default 10_000 */
  allowedLatenessMs?: number;
  /**
   * Wall-clock TTL of an impression's Redis hash, counted from the commit of its impressions chunk;
   * bounds memory when a partition goes idle. An impression neither clicked nor swept within it loses
   * its label (counted in `expiredUnlabelled`). Milliseconds. @default 2 × attributionWindowMs
   */
  pendingTtlMs?: number;
  /** Largest number of expired impressions emitted per sweep round trip. @default 5000 */
  sweepLimit?: number;
  /** Prefix of the transactional ids, one per input partition (streams/transactions.ts). @default groupId */
  transactionalIdPrefix?: string;
  /** Tuning of the underlying BatchConsumer. @default {} */
  consumer?: Omit<BatchConsumerOptions, 'kafka' | 'groupId' | 'topics' | 'logger' | 'offsetCommit' | 'pipelineDepth'>;
}

export interface JoinStats {
  impressions: number;
  clicks: number;
  positives: number;
  negatives: number;
  duplicateImpressions: number;
  duplicateClicks: number;
  /** Clicks that arrived before their impression (joined when it arrives). */
  earlyClicks: number;
  /** Clicks after their impression's window was swept (label stays 0). */
  lateClicks: number;
  /** Clicks whose event time is past the window. */
  outsideWindowClicks: number;
  /** Pending impressions whose Redis hash expired before the sweep reached them. */
  expiredUnlabelled: number;
  deadLettered: number;
}

/** An outgoing labelled event and its label (for stats after the ack). */
interface Labelled {
  label: 0 | 1;
  msg: OutMessage;
}

type Resolved = Required<Omit<ImpressionClickJoinOptions, 'logger' | 'redis' | 'consumer' | 'transactionalIdPrefix'>>;

function positive(key: string, v: number): number {
  if (!Number.isInteger(v) || v <= 0) throw new ConfigError(key, `must be a positive integer, got ${v}`);
  return v;
}

export class ImpressionClickJoin {
  private readonly o: Resolved;
  private readonly redis: Redis;
  private readonly pipeline: () => ChainableCommander & JoinCommands;
  private readonly transactions: PartitionTransactions;
  private readonly consumer: BatchConsumer;
  private readonly logger: Logger;
  private readonly watermarks = new Map<number, number>();
  private started = false;
  readonly stats: JoinStats = {
    impressions: 0,
    clicks: 0,
    positives: 0,
    negatives: 0,
    duplicateImpressions: 0,
    duplicateClicks: 0,
    earlyClicks: 0,
    lateClicks: 0,
    outsideWindowClicks: 0,
    expiredUnlabelled: 0,
    deadLettered: 0,
  };

  constructor(opts: ImpressionClickJoinOptions) {
    const window = positive('join.attributionWindowMs', opts.attributionWindowMs ?? 1_800_000);
    this.o = {
      kafka: opts.kafka,
      groupId: opts.groupId ?? 'thaw-join',
      impressionsTopic: opts.impressionsTopic ?? TOPICS.impressions,
      clicksTopic: opts.clicksTopic ?? TOPICS.clicks,
      outputTopic: opts.outputTopic ?? TOPICS.labelled,
      deadLetterTopic: opts.deadLetterTopic ?? TOPICS.deadLetters,
      keyPrefix: opts.keyPrefix ?? 'thaw:join',
      attributionWindowMs: window,
      allowedLatenessMs: opts.allowedLatenessMs ?? 10_000,
      pendingTtlMs: positive('join.pendingTtlMs', opts.pendingTtlMs ?? 2 * window),
      sweepLimit: positive('join.sweepLimit', opts.sweepLimit ?? 5000),
    };
    if (!Number.isInteger(this.o.allowedLatenessMs) || this.o.allowedLatenessMs < 0) throw new ConfigError('join.allowedLatenessMs', 'must be an integer >= 0');
    if (this.o.pendingTtlMs < window) throw new ConfigError('join.pendingTtlMs', 'must be >= attributionWindowMs');
    if (!/^[A-Za-z0-9:._-]+$/.test(this.o.keyPrefix)) throw new ConfigError('join.keyPrefix', 'use letters, digits and : . _ -');
    if (this.o.impressionsTopic === this.o.clicksTopic) throw new ConfigError('join.clicksTopic', 'must differ from impressionsTopic');
    // The sweep script builds hash names itself, so a client-side key prefix would desynchronise them.
    if (opts.redis.options.keyPrefix) throw new ConfigError('join.redis', 'the ioredis client must not use keyPrefix; use join.keyPrefix');
    this.redis = opts.redis;
    this.pipeline = installJoinScripts(opts.redis);
    this.logger = (opts.logger ?? silentLogger).child({ component: 'join' });
    this.transactions = new PartitionTransactions({
      kafka: opts.kafka,
      groupId: this.o.groupId,
      logger: this.logger,
      ...(opts.transactionalIdPrefix !== undefined ? { transactionalIdPrefix: opts.transactionalIdPrefix } : {}),
    });
    this.consumer = new BatchConsumer({
      ...opts.consumer,
      offsetCommit: 'transaction',
      kafka: opts.kafka,
      groupId: this.o.groupId,
      topics: [this.o.impressionsTopic, this.o.clicksTopic],
      logger: this.logger,
    });
  }

  async start(): Promise<void> {
    if (this.started) throw new ThawError('LIFECYCLE', 'ImpressionClickJoin already started');
    this.started = true;
    try {
      await this.consumer.start((b) => (b.topic === this.o.impressionsTopic ? this.onImpressions(b) : this.onClicks(b)), {
        // Each assigned partition starts where its last committed transaction left it, read after
        // its producer fenced the previous owner.
        startOffset: (tp) => this.transactions.claim(tp),
      });
    } catch (err) {
      await this.transactions.close();
      throw err;
    }
  }

  /** Finishes and commits the in-flight batch, then closes Kafka clients (not the Redis client). */
  async stop(): Promise<void> {
    await this.consumer.stop();
    await this.transactions.close();
  }

  lag(): Promise<number> {
    return this.consumer.lag();
  }

  private hashKey(id: string): string {
    return `${this.o.keyPrefix}:imp:{${id}}`;
  }

  private deadlineKey(partition: number): string {
    return `${this.o.keyPrefix}:deadlines:${this.o.impressionsTopic}:${partition}`;
  }

  private async onImpressions(batch: MessageBatch): Promise<void> {
    const nowMs = Date.now();
    const { attributionWindowMs: window } = this.o;
    const zkey = this.deadlineKey(batch.partition);
    const pipe = this.pipeline();
    const accepted: Impression[] = [];
    const dead: OutMessage[] = [];
    let maxTime = Number.NEGATIVE_INFINITY;
    for (const m of batch.messages) {
      try {
        const imp = decodeImpression(valueOf(m), nowMs);
        accepted.push(imp);
        maxTime = Math.max(maxTime, imp.timeMs);
        pipe.thawJoinImpression(this.hashKey(imp.impressionId), zkey, valueOf(m), imp.timeMs, imp.timeMs + window, imp.impressionId, sourceOf(m), window);
      } catch (err) {
        if (!(err instanceof PoisonEventError)) throw err;
        dead.push(deadLetterOf(m, err));
      }
    }
    const first = batch.messages[0];
    const last = batch.messages[batch.messages.length - 1];
    if (first === undefined || last === undefined) return;
    const prev = this.watermarks.get(batch.partition) ?? Number.NEGATIVE_INFINITY;
    const watermark = Math.max(prev, maxTime - this.o.allowedLatenessMs);
    this.watermarks.set(batch.partition, watermark);
    const sweeping = Number.isFinite(watermark);
    const sweep = (p: ChainableCommander & JoinCommands, skip: number): void => {
      p.thawJoinSweepBuffer(zkey, watermark, this.o.sweepLimit, `${this.o.keyPrefix}:imp:`, first.offset, last.offset, skip);
    };
    if (sweeping) sweep(pipe, 0);

    const results = await execPipeline(pipe);
    const out: Labelled[] = [];
    let duplicates = 0;
    accepted.forEach((imp, i) => {
      const status = String(results[i]);
      if (status === 'emit') out.push(this.labelledOf(imp, 1));
      else if (status === 'dup') duplicates++;
    });
    const swept: Buffer[] = [];
    let round = sweeping ? this.collectSwept(results[accepted.length], out) : { kept: [], due: 0 };
    swept.push(...round.kept);
    // More rounds only when a sweep was cut by sweepLimit (a large watermark jump); each skips the
    // entries this chunk kept (they stay in the set until its transaction is committed).
    while (round.due >= this.o.sweepLimit) {
      const p = this.pipeline();
      sweep(p, swept.length);
      round = this.collectSwept((await execPipeline(p))[0], out);
      swept.push(...round.kept);
    }
    await this.send(positionAfter(batch), out, dead);
    this.stats.impressions += accepted.length;
    this.stats.duplicateImpressions += duplicates;
    await this.afterCommit(zkey, accepted, swept);
  }

  private async onClicks(batch: MessageBatch): Promise<void> {
    const nowMs = Date.now();
    const pipe = this.pipeline();
    let n = 0;
    const dead: OutMessage[] = [];
    for (const m of batch.messages) {
      try {
        const c = decodeClick(valueOf(m), nowMs);
        pipe.thawJoinClickBuffer(this.hashKey(c.impressionId), c.timeMs, sourceOf(m), this.o.pendingTtlMs, this.o.attributionWindowMs);
        n++;
      } catch (err) {
        if (!(err instanceof PoisonEventError)) throw err;
        dead.push(deadLetterOf(m, err));
      }
    }
    const results = n > 0 ? await execPipeline(pipe) : [];
    const out: Labelled[] = [];
    const counts = { duplicateClicks: 0, lateClicks: 0, earlyClicks: 0, outsideWindowClicks: 0 };
    for (const r of results) {
      const [status, imp] = r as [Buffer, Buffer | null | undefined];
      switch (status.toString()) {
        case 'emit':
          if (imp) out.push(this.labelledOf(decodeImpression(imp, Number.POSITIVE_INFINITY), 1));
          break;
        case 'dup':
          counts.duplicateClicks++;
          break;
        case 'late':
          counts.lateClicks++;
          break;
        case 'early':
          counts.earlyClicks++;
          break;
        case 'outside':
          counts.outsideWindowClicks++;
          break;
      }
    }
    await this.send(positionAfter(batch), out, dead);
    // Stats move only once the batch is committed, so a retried batch is not counted twice.
    this.stats.clicks += n;
    for (const [k, v] of Object.entries(counts)) this.stats[k as keyof typeof counts] += v;
  }

  /**
   * Adds label-0 events for a sweep reply. Returns the ids it left in the deadline set (to remove, with
   * their TTLs armed, after the commit) and how many due entries the reply held.
   */
  private collectSwept(reply: unknown, out: Labelled[]): { kept: Buffer[]; due: number } {
    const flat = (reply ?? []) as (Buffer | number | null)[];
    const kept: Buffer[] = [];
    let due = 0;
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const id = flat[i];
      const imp = flat[i + 1];
      if (!Buffer.isBuffer(id)) continue;
      due++;
      if (imp == null) {
        this.stats.expiredUnlabelled++;
        continue;
      }
      kept.push(id);
      if (typeof imp === 'number') continue; // claimed before; only its removal is left
      try {
        out.push(this.labelledOf(decodeImpression(imp, Number.POSITIVE_INFINITY), 0));
      } catch (err) {
        // Stored bytes were validated on the way in; a failure here means Redis data was damaged.
        this.logger.error('pending impression in Redis is unreadable; dropped', { id: id.toString(), error: errorMessage(err) });
      }
    }
    return { kept, due };
  }

  /** After an impressions chunk is committed: arms the TTLs of its impressions and of the swept ones, and removes the swept deadlines. */
  private async afterCommit(zkey: string, accepted: readonly Impression[], swept: readonly Buffer[]): Promise<void> {
    const ttl = this.o.pendingTtlMs;
    const pipe = this.pipeline();
    for (const imp of accepted) pipe.thawJoinArm(this.hashKey(imp.impressionId), ttl);
    for (const id of swept) pipe.thawJoinArm(this.hashKey(id.toString()), ttl);
    if (swept.length > 0) pipe.zrem(zkey, ...swept);
    if (accepted.length + swept.length > 0) await execPipeline(pipe);
  }

  private labelledOf(imp: Impression, label: 0 | 1): Labelled {
    const e: LabelledEvent & { source: string } = {
      eventId: imp.impressionId,
      timeMs: imp.timeMs,
      userId: imp.userId,
      itemId: imp.itemId,
      label,
      userFeatures: imp.userFeatures,
      itemFeatures: imp.itemFeatures,
      source: 'join',
    };
    return { label, msg: { key: e.eventId, value: encodeLabelled(e), timestampMs: e.timeMs } };
  }

  /** Commits the chunk: its labelled events, its dead letters and its input position in one transaction. */
  private async send(consumed: ConsumedPosition, out: Labelled[], dead: OutMessage[]): Promise<void> {
    await this.transactions.commit(consumed, [
      { topic: this.o.outputTopic, messages: out.map((l) => l.msg) },
      { topic: this.o.deadLetterTopic, messages: dead },
    ]);
    for (const l of out) {
      if (l.label === 1) this.stats.positives++;
      else this.stats.negatives++;
    }
    this.stats.deadLettered += dead.length;
  }
}

/** The input position after a chunk (the offset its transaction commits). */
function positionAfter(batch: MessageBatch): ConsumedPosition {
  const last = batch.messages[batch.messages.length - 1];
  return { topic: batch.topic, partition: batch.partition, nextOffset: (last?.offset ?? -1) + 1 };
}

function valueOf(m: RawMessage): Buffer {
  if (m.value === null) throw new PoisonEventError('DECODE_FAILED', 'record has no value (tombstone)');
  return m.value;
}

function sourceOf(m: RawMessage): string {
  return `${m.topic}:${m.partition}:${m.offset}`;
}

async function execPipeline(pipe: ChainableCommander): Promise<unknown[]> {
  let res: [Error | null, unknown][] | null;
  try {
    res = await pipe.exec();
  } catch (err) {
    throw new ThawError('REDIS_ERROR', `join: Redis pipeline failed: ${errorMessage(err)}`, { cause: err });
  }
  if (res === null) throw new ThawError('REDIS_ERROR', 'join: Redis pipeline was discarded');
  return res.map(([err, value]) => {
    if (err) throw new ThawError('REDIS_ERROR', `join: Redis command failed: ${errorMessage(err)}`, { cause: err });
    return value;
  });
}
