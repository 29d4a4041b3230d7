/**
 * Exactly-once Kafka → Kafka for the stream processors (`thaw rekey`, `thaw join`): the outputs of an
 * input chunk and the chunk's consumed offset are written in ONE Kafka transaction, so after a crash
 * either both are visible to read_committed consumers or neither is, and the restarted process
 * resumes from the last committed offset without writing anything twice.
 *
 * One transactional producer per input partition, with a stable transactional id
 * `${prefix}.${topic}.${partition}`. kafkajs 2.2 commits offsets in a transaction without the
 * consumer's generation (no KIP-447), so fencing a previous owner of the partition (a process killed
 * with -9, a member that lost the partition in a rebalance) relies on the id: initialising the
 * producer of a partition bumps the id's epoch, which aborts the previous owner's open transaction
 * (or waits for it to finish committing) and makes any later write of that owner fail. `claim()`
 * does this when the partition is assigned, BEFORE the committed offset is read, so the offset read
 * already includes any transaction of the previous owner that was committing.
 *
 * Input topics that these producers write must be read with isolation level read_committed
 * (BatchConsumer and replay do); their offsets then have gaps where the commit markers are.
 */
import type { Message, Producer } from 'kafkajs';
import { ConfigError, ThawError, errorMessage } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { withAdmin } from './admin.js';
import { partitionKey, type TopicPartition } from './assignment.js';
import { createKafka, kafkaError, type KafkaConnection } from './kafka.js';
import { chunkBatches, recordingPartitioner, unacknowledged, type OutMessage } from './producer.js';

export interface PartitionTransactionsOptions {
  kafka: KafkaConnection;
  /** Consumer group whose committed offsets the transactions move (the processor's own group). */
  groupId: string;
  logger?: Logger;
  /**
   * Prefix of the transactional ids (one per input partition). Two processes with the same prefix
   * fence each other per partition, so give every logical processor its own. @default groupId
   */
  transactionalIdPrefix?: string;
  /** Upper bound of the value+key bytes in one produce request of a transaction. Bytes. @default 524_288 */
  maxRequestBytes?: number;
  /** Broker acknowledgement timeout per request. Milliseconds. @default 30_000 */
  ackTimeoutMs?: number;
  /**
   * Longest a transaction may stay open before the coordinator aborts it (bounded by the broker's
   * transaction.max.timeout.ms, 15 min by default). Milliseconds. @default 60_000
   */
  transactionTimeoutMs?: number;
}

/** The input position a transaction commits: the next offset to consume of one partition. */
export interface ConsumedPosition {
  topic: string;
  partition: number;
  /** Offset of the last consumed record + 1. */
  nextOffset: number;
}

type Resolved = Required<Omit<PartitionTransactionsOptions, 'logger'>>;

function resolve(o: PartitionTransactionsOptions): Resolved {
  const r: Resolved = {
    kafka: o.kafka,
    groupId: o.groupId,
    transactionalIdPrefix: o.transactionalIdPrefix ?? o.groupId,
    maxRequestBytes: o.maxRequestBytes ?? 524_288,
    ackTimeoutMs: o.ackTimeoutMs ?? 30_000,
    transactionTimeoutMs: o.transactionTimeoutMs ?? 60_000,
  };
  if (r.groupId === '') throw new ConfigError('transactions.groupId', 'must be a non-empty string');
  if (r.transactionalIdPrefix === '') throw new ConfigError('transactions.transactionalIdPrefix', 'must be a non-empty string');
  if (!Number.isInteger(r.maxRequestBytes) || r.maxRequestBytes < 1024) throw new ConfigError('transactions.maxRequestBytes', 'must be an integer >= 1024');
  if (!Number.isInteger(r.ackTimeoutMs) || r.ackTimeoutMs <= 0) throw new ConfigError('transactions.ackTimeoutMs', 'must be a positive integer');
  if (!Number.isInteger(r.transactionTimeoutMs) || r.transactionTimeoutMs < 1000) throw new ConfigError('transactions.transactionTimeoutMs', 'must be an integer >= 1000');
  return r;
}

/** Transactional producers of a processor's input partitions (see the file comment). */
export class PartitionTransactions {
  private readonly opts: Resolved;
  private readonly logger: Logger;
  /** Connected (initialised, fencing) producers by `topic:partition`. */
  private readonly producers = new Map<string, Promise<Producer>>();
  private closed = false;
  /** The partition the partitioner chose for each message object of the transactions in flight. */
  private readonly partitionOf = new WeakMap<Message, number>();

  constructor(opts: PartitionTransactionsOptions) {
    this.opts = resolve(opts);
    this.logger = (opts.logger ?? silentLogger).child({ component: 'transactions' });
  }

  /** The transactional id of an input partition. */
  transactionalIdOf(tp: TopicPartition): string {
    return `${this.opts.transactionalIdPrefix}.${tp.topic}.${tp.partition}`;
  }

  /**
   * Takes over an input partition: initialises its producer (fencing the previous owner, see the
   * file comment), then reads the group's committed offset of it. Undefined when the group has none.
   */
  async claim(tp: TopicPartition): Promise<number | undefined> {
    await this.producerOf(tp);
    const { groupId, kafka } = this.opts;
    try {
      const committed = await withAdmin(kafka, (admin) => admin.fetchOffsets({ groupId, topics: [tp.topic] }), this.logger);
      const offset = Number(committed.find((t) => t.topic === tp.topic)?.partitions.find((p) => p.partition === tp.partition)?.offset ?? -1);
      return offset >= 0 ? offset : undefined;
    } catch (err) {
      throw kafkaError(kafka, `committed offset of ${partitionKey(tp)} for group ${groupId}`, err);
    }
  }

  /**
   * Produces `outputs` and commits `consumed` for the group in one transaction; resolves once it is
   * committed. On failure the transaction is aborted (nothing of it becomes visible, the offset does
   * not move) and the error is thrown: the caller retries the same input.
   */
  async commit(consumed: ConsumedPosition, outputs: readonly { topic: string; messages: readonly OutMessage[] }[]): Promise<void> {
    const producer = await this.producerOf(consumed);
    const { kafka, groupId, maxRequestBytes, ackTimeoutMs } = this.opts;
    const transaction = await producer.transaction().catch((err: unknown) => {
      this.drop(consumed);
      throw kafkaError(kafka, `begin transaction of ${partitionKey(consumed)}`, err);
    });
    try {
      for (const chunk of chunkBatches(outputs, maxRequestBytes)) {
        const acked = await transaction.sendBatch({ topicMessages: chunk, acks: -1, timeout: ackTimeoutMs });
        // kafkajs can resolve a send that skipped a partition whose leader moved (see EventProducer):
        // abort rather than commit a transaction that lacks those outputs; the caller retries.
        const missing = unacknowledged(chunk, acked, (m) => this.partitionOf.get(m));
        if (missing.length > 0) throw new ThawError('KAFKA_ERROR', `${missing.reduce((s, t) => s + t.messages.length, 0)} outputs unacknowledged (a partition leader moved mid-send)`);
      }
      await transaction.sendOffsets({
        consumerGroupId: groupId,
        topics: [{ topic: consumed.topic, partitions: [{ partition: consumed.partition, offset: String(consumed.nextOffset) }] }],
      });
      await transaction.commit();
    } catch (err) {
      await transaction.abort().catch((abortErr: unknown) => {
        this.logger.warn('aborting a failed transaction failed; the next one re-initialises the producer (which aborts it)', { partition: partitionKey(consumed), error: errorMessage(abortErr) });
      });
      // A fenced or confused producer cannot be reused; a new one re-initialises the id, which also
      // aborts whatever this one left open.
      this.drop(consumed);
      throw kafkaError(kafka, `transaction of ${partitionKey(consumed)} (outputs ${outputs.map((o) => o.topic).join(',')}) aborted`, err);
    }
  }

  /** Disconnects every producer (an open transaction is aborted by the coordinator at its timeout). */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.producers.values()];
    this.producers.clear();
    await Promise.all(all.map((p) => p.then((producer) => producer.disconnect()).catch(() => undefined)));
  }

  private producerOf(tp: TopicPartition): Promise<Producer> {
    if (this.closed) return Promise.reject(new ThawError('LIFECYCLE', 'transactions are closed'));
    const key = partitionKey(tp);
    const known = this.producers.get(key);
    if (known !== undefined) return known;
    const { kafka, transactionTimeoutMs } = this.opts;
    const producer = createKafka(kafka, this.logger).producer({
      transactionalId: this.transactionalIdOf(tp),
      transactionTimeout: transactionTimeoutMs,
      idempotent: true,
      // Required by kafkajs for idempotence; also keeps per-partition order across retries.
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: recordingPartitioner(this.partitionOf),
    });
    // connect() initialises the producer id of the transactional id: this is the fencing step.
    const ready = producer.connect().then(
      () => producer,
      (err: unknown) => {
        this.producers.delete(key);
        throw kafkaError(kafka, `connecting transactional producer ${this.transactionalIdOf(tp)}`, err);
      },
    );
    this.producers.set(key, ready);
    return ready;
  }

  private drop(tp: TopicPartition): void {
    const key = partitionKey(tp);
    const p = this.producers.get(key);
    this.producers.delete(key);
    void p?.then((producer) => producer.disconnect()).catch(() => undefined);
  }
}
