/**
 * Re-keying: consumes `thaw.labelled` (own consumer group) and writes every event, bytes unchanged,
 * to `thaw.labelled.by-user` keyed by userId and `thaw.labelled.by-item` keyed by itemId, so each
 * entity's events land in one partition and have one writer downstream. Undecodable or invalid
 * records go to dead letters with the reason.
 *
 * Exactly once (streams/transactions.ts): a chunk's two copies, its dead letters and its consumed
 * offset are one Kafka transaction per input partition. A crash (kill -9) before the commit leaves
 * nothing visible to read_committed consumers and the restarted re-keyer starts the chunk again; a
 * crash after it leaves the offset past the chunk. Readers of the output must read committed (every
 * Thaw consumer does).
 */
import { PoisonEventError, ThawError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { BatchConsumer, type BatchConsumerOptions } from './batch-consumer.js';
import { deadLetterOf } from './dead-letters.js';
import type { KafkaConnection } from './kafka.js';
import type { MessageBatch } from './message.js';
import type { OutMessage } from './producer.js';
import { decodeLabelled } from './serde.js';
import { TOPICS } from './topics.js';
import { PartitionTransactions } from './transactions.js';

export interface RekeyOptions {
  kafka: KafkaConnection;
  logger?: Logger;
  /** Consumer group of the re-keyer. @default 'thaw-rekey' */
  groupId?: string;
  /** Input topic. @default TOPICS.labelled */
  sourceTopic?: string;
  /** Output keyed by userId. @default TOPICS.byUser */
  byUserTopic?: string;
  /** Output keyed by itemId. @default TOPICS.byItem */
  byItemTopic?: string;
  /** Dead-letter topic. @default TOPICS.deadLetters */
  deadLetterTopic?: string;
  /** Prefix of the transactional ids, one per input partition (streams/transactions.ts). @default groupId */
  transactionalIdPrefix?: string;
  /** Tuning of the underlying BatchConsumer (maxBatchMessages, backoff, ...). @default {} */
  consumer?: Omit<BatchConsumerOptions, 'kafka' | 'groupId' | 'topics' | 'logger' | 'offsetCommit' | 'pipelineDepth'>;
}

export interface RekeyStats {
  consumed: number;
  rekeyed: number;
  deadLettered: number;
}

export class Rekeyer {
  private readonly transactions: PartitionTransactions;
  private readonly consumer: BatchConsumer;
  private readonly logger: Logger;
  private readonly byUser: string;
  private readonly byItem: string;
  private readonly dlq: string;
  private started = false;
  readonly stats: RekeyStats = { consumed: 0, rekeyed: 0, deadLettered: 0 };

  constructor(opts: RekeyOptions) {
    this.logger = (opts.logger ?? silentLogger).child({ component: 'rekey' });
    this.byUser = opts.byUserTopic ?? TOPICS.byUser;
    this.byItem = opts.byItemTopic ?? TOPICS.byItem;
    this.dlq = opts.deadLetterTopic ?? TOPICS.deadLetters;
    const groupId = opts.groupId ?? 'thaw-rekey';
    this.transactions = new PartitionTransactions({
      kafka: opts.kafka,
      groupId,
      logger: this.logger,
      ...(opts.transactionalIdPrefix !== undefined ? { transactionalIdPrefix: opts.transactionalIdPrefix } : {}),
    });
    this.consumer = new BatchConsumer({
      ...opts.consumer,
      offsetCommit: 'transaction',
      kafka: opts.kafka,
      groupId,
      topics: [opts.sourceTopic ?? TOPICS.labelled],
      logger: this.logger,
    });
  }

  async start(): Promise<void> {
    if (this.started) throw new ThawError('LIFECYCLE', 'Rekeyer already started');
    this.started = true;
    try {
      // Each assigned partition starts where its last committed transaction left it, read after
      // its producer fenced the previous owner.
      await this.consumer.start((b) => this.handle(b), { startOffset: (tp) => this.transactions.claim(tp) });
    } catch (err) {
      await this.transactions.close();
      throw err;
    }
  }

  /** Finishes the in-flight batch, commits its transaction, then closes. */
  async stop(): Promise<void> {
    await this.consumer.stop();
    await this.transactions.close();
  }

  /** Records not yet re-keyed. */
  lag(): Promise<number> {
    return this.consumer.lag();
  }

  private async handle(batch: MessageBatch): Promise<void> {
    const nowMs = Date.now();
    const users: OutMessage[] = [];
    const items: OutMessage[] = [];
    const dead: OutMessage[] = [];
    for (const m of batch.messages) {
      try {
        if (m.value === null) throw new PoisonEventError('DECODE_FAILED', 'record has no value (tombstone)');
        const e = decodeLabelled(m.value, nowMs);
        // Event time as the Kafka timestamp: replays of the re-keyed topics by time select by event time.
        users.push({ key: e.userId, value: m.value, headers: m.headers, timestampMs: e.timeMs });
        items.push({ key: e.itemId, value: m.value, headers: m.headers, timestampMs: e.timeMs });
      } catch (err) {
        if (!(err instanceof PoisonEventError)) throw err;
        dead.push(deadLetterOf(m, err));
      }
    }
    const last = batch.messages[batch.messages.length - 1];
    if (last === undefined) return;
    await this.transactions.commit({ topic: batch.topic, partition: batch.partition, nextOffset: last.offset + 1 }, [
      { topic: this.byUser, messages: users },
      { topic: this.byItem, messages: items },
      { topic: this.dlq, messages: dead },
    ]);
    this.stats.consumed += batch.messages.length;
    this.stats.rekeyed += users.length;
    this.stats.deadLettered += dead.length;
    if (dead.length > 0) this.logger.warn('records sent to dead letters', { count: dead.length, topic: batch.topic, partition: batch.partition });
  }
}
