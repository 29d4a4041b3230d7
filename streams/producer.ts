/**
 * The one Kafka producer shape Thaw uses: idempotent (kafkajs allows it with one request in flight
 * per broker, which also keeps per-partition order across retries), `acks: -1` (all in-sync
 * replicas), large sends split into bounded request batches. `send` resolves only when the brokers
 * acknowledged every message, so callers may commit their input offsets afterwards.
 */
import { Partitioners, type ICustomPartitioner, type Message, type Producer, type RecordMetadata } from 'kafkajs';
import { ConfigError, ThawError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { createKafka, kafkaError, type KafkaConnection } from './kafka.js';

/** A message to produce. */
export interface OutMessage {
  /** Partitioning key (murmur2, Java compatible); null spreads messages. */
  key: string | Buffer | null;
  value: Buffer;
  headers?: Record<string, string>;
  /** Kafka timestamp, unix ms. @default the send time (set by the broker client) */
  timestampMs?: number;
}

export interface EventProducerOptions {
  kafka: KafkaConnection;
  logger?: Logger;
  /** Idempotent producer (no duplicates from internal retries). @default true */
  idempotent?: boolean;
  /** Upper bound of the value+key bytes in one produce request; larger sends are split. Bytes. @default 524_288 */
  maxRequestBytes?: number;
  /** Broker acknowledgement timeout per request. Milliseconds. @default 30_000 */
  ackTimeoutMs?: number;
}

const keyPartitioner = Partitioners.DefaultPartitioner();

/**
 * Re-sends of the messages a request left unacknowledged before `send` fails (each one after
 * kafkajs's own retries). Count.
 */
const MAX_RESENDS = 5;

/**
 * The partition of a topic with `partitions` partitions that `EventProducer` sends a message keyed
 * `key` to (the producer's partitioner: murmur2, Java compatible). Consumers that keep state per
 * partition (the worker's safeguard) can be replayed offline with it.
 */
export function partitionOfKey(key: string, partitions: number): number {
  if (!(Number.isSafeInteger(partitions) && partitions >= 1)) throw new ConfigError('partitions', `must be an integer >= 1, got ${partitions}`);
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionErrorCode: 0, partitionId, leader: 0, replicas: [0], isr: [0] }));
  return keyPartitioner({ topic: 'thaw', partitionMetadata, message: { key, value: null } });
}

export class EventProducer {
  private readonly producer: Producer;
  private readonly opts: Required<Omit<EventProducerOptions, 'logger'>>;
  private readonly logger: Logger;
  private connected = false;
  /** The partition kafkajs's partitioner chose for each message object of the sends in flight. */
  private readonly partitionOf = new WeakMap<Message, number>();

  constructor(opts: EventProducerOptions) {
    this.opts = {
      kafka: opts.kafka,
      idempotent: opts.idempotent ?? true,
      maxRequestBytes: opts.maxRequestBytes ?? 524_288,
      ackTimeoutMs: opts.ackTimeoutMs ?? 30_000,
    };
    if (!Number.isInteger(this.opts.maxRequestBytes) || this.opts.maxRequestBytes < 1024) {
      throw new ConfigError('producer.maxRequestBytes', 'must be an integer >= 1024');
    }
    if (!Number.isInteger(this.opts.ackTimeoutMs) || this.opts.ackTimeoutMs <= 0) throw new ConfigError('producer.ackTimeoutMs', 'must be a positive integer');
    this.logger = (opts.logger ?? silentLogger).child({ component: 'producer' });
    this.producer = createKafka(opts.kafka, this.logger).producer({
      idempotent: this.opts.idempotent,
      // kafkajs requires a single in-flight request for idempotence; it also preserves order.
      maxInFlightRequests: this.opts.idempotent ? 1 : 5,
      allowAutoTopicCreation: false,
      // Explicit (murmur2, Java-compatible) so keys land where Java/Confluent clients put them, and
      // kafkajs does not warn about its changed default on every start.
      // It also records each message's partition, to find the ones a request left unacknowledged.
      createPartitioner: recordingPartitioner(this.partitionOf),
    });
  }

  async connect(): Promise<void> {
    if (this.connected) return;
    try {
      await this.producer.connect();
    } catch (err) {
      throw kafkaError(this.opts.kafka, 'producer connect failed', err);
    }
    this.connected = true;
  }

  /** Produces `msgs` to `topic`; resolves when all are acknowledged (acks = all). */
  async send(topic: string, msgs: readonly OutMessage[]): Promise<void> {
    await this.sendMany([{ topic, messages: msgs }]);
  }

  /** Produces to several topics; one request per broker per chunk of at most `maxRequestBytes`. */
  async sendMany(batches: readonly { topic: string; messages: readonly OutMessage[] }[]): Promise<void> {
    if (!this.connected) throw new ThawError('LIFECYCLE', 'producer is not connected');
    // Sequential chunks (not parallel) so that per-partition order is the order of `batches`.
    for (const chunk of chunkBatches(batches, this.opts.maxRequestBytes)) {
      let pending = chunk;
      for (let resend = 0; ; resend++) {
        let acked: RecordMetadata[];
        try {
          acked = await this.producer.sendBatch({ topicMessages: pending, acks: -1, timeout: this.opts.ackTimeoutMs });
        } catch (err) {
          throw kafkaError(this.opts.kafka, `produce to ${chunk.map((c) => c.topic).join(',')} failed`, err);
        }
        // kafkajs 2.2.4 can resolve a send without producing part of it: when a partition's leader
        // dies mid-request and the partition moves to a broker that already answered for other
        // partitions of the same send, its retry skips that broker and returns the old answer
        // (sendMessages keeps one response per broker). Those messages were never written.
        const missing = unacknowledged(pending, acked, (m) => this.partitionOf.get(m));
        if (missing.length === 0) break;
        const count = missing.reduce((s, t) => s + t.messages.length, 0);
        if (resend >= MAX_RESENDS) {
          throw new ThawError('KAFKA_ERROR', `produce to ${chunk.map((c) => c.topic).join(',')} failed: ${count} messages still unacknowledged after ${MAX_RESENDS} re-sends`);
        }
        this.logger.warn('send left messages unacknowledged (leader change), sending them again', {
          messages: count,
          partitions: missing
            .map(
              (t) =>
                `${t.topic}[${t.messages
                  .map((m) => m.partition)
                  .filter((p, i, a) => a.indexOf(p) === i)
                  .join(',')}]`,
            )
            .join(' '),
        });
        pending = missing;
      }
    }
  }

  async close(): Promise<void> {
    if (!this.connected) return;
    this.connected = false;
    await this.producer.disconnect();
  }
}

/**
 * Splits `batches` into request-sized chunks of at most `maxRequestBytes` (value + key + 64 bytes of
 * overhead per message), in order: sent one after the other, per-partition order is the order of
 * `batches`. Topics without messages are left out.
 */
export function* chunkBatches(batches: readonly { topic: string; messages: readonly OutMessage[] }[], maxRequestBytes: number): Generator<{ topic: string; messages: Message[] }[]> {
  let out: { topic: string; messages: Message[] }[] = [];
  let bytes = 0;
  for (const b of batches) {
    let cur: Message[] = [];
    out.push({ topic: b.topic, messages: cur });
    for (const m of b.messages) {
      const size = m.value.length + (m.key === null ? 0 : m.key.length) + 64;
      if (bytes > 0 && bytes + size > maxRequestBytes) {
        yield out.filter((t) => t.messages.length > 0);
        cur = [];
        out = [{ topic: b.topic, messages: cur }];
        bytes = 0;
      }
      cur.push(toKafkaMessage(m));
      bytes += size;
    }
  }
  const rest = out.filter((t) => t.messages.length > 0);
  if (rest.length > 0) yield rest;
}

/**
 * kafkajs's default partitioner (murmur2, Java compatible) that also records the partition it chose
 * for each message object in `into`, so that `unacknowledged` can tell which messages a send left
 * out.
 */
export function recordingPartitioner(into: WeakMap<Message, number>): ICustomPartitioner {
  return () => {
    const inner = Partitioners.DefaultPartitioner();
    return (args) => {
      const partition = inner(args);
      into.set(args.message, partition);
      return partition;
    };
  };
}

/**
 * The messages of `sent` whose partition has no acknowledgement in `acked`, each pinned to that
 * partition (`partition` set, so a re-send goes where the partitioner put it, even unkeyed). The
 * idempotent producer's sequence numbers make a re-send of a batch the broker did write a no-op.
 * `partitionOf` is the partition the partitioner chose for a message without an explicit one.
 */
export function unacknowledged(
  sent: readonly { topic: string; messages: readonly Message[] }[],
  acked: readonly Pick<RecordMetadata, 'topicName' | 'partition' | 'errorCode'>[],
  partitionOf: (m: Message) => number | undefined,
): { topic: string; messages: Message[] }[] {
  const ok = new Set(acked.filter((r) => r.errorCode === 0).map((r) => `${r.topicName}\u0000${r.partition}`));
  const out: { topic: string; messages: Message[] }[] = [];
  for (const t of sent) {
    const messages: Message[] = [];
    for (const m of t.messages) {
      const partition = m.partition ?? partitionOf(m);
      if (partition === undefined) throw new ThawError('LIFECYCLE', `produce to ${t.topic}: no partition recorded for a message (internal error)`);
      if (!ok.has(`${t.topic}\u0000${partition}`)) messages.push({ ...m, partition });
    }
    if (messages.length > 0) out.push({ topic: t.topic, messages });
  }
  return out;
}

function toKafkaMessage(m: OutMessage): Message {
  const msg: Message = { key: m.key, value: m.value };
  if (m.headers !== undefined) msg.headers = m.headers;
  if (m.timestampMs !== undefined) msg.timestamp = String(Math.trunc(m.timestampMs));
  return msg;
}
