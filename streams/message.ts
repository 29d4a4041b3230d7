/** Transport-neutral message shapes: what handlers see, whichever Kafka client is behind them. */
import type { KafkaMessage } from 'kafkajs';

/** One consumed record. */
export interface RawMessage {
  topic: string;
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
  /** Header values as UTF-8 strings (the first value when a header repeats). */
  headers: Record<string, string>;
  /** Kafka timestamp, unix ms. */
  timestampMs: number;
}

/** Consecutive records of one partition. */
export interface MessageBatch {
  topic: string;
  partition: number;
  messages: RawMessage[];
  /** Offset after the last record in the partition when the batch was fetched (lag = highWatermark - last offset - 1). */
  highWatermark: number;
  /**
   * When the records reached the consumer, for latency breakdowns (bench/spine): `requestedAtMs` is
   * when the fetch that returned them was sent (with several brokers: the latest fetch sent to any
   * of them), `receivedAtMs` when the consumer got the fetched batch. Unix ms. Absent when the
   * source does not know (tests' in-memory sources).
   */
  fetch?: { requestedAtMs: number; receivedAtMs: number };
}

/** Converts a kafkajs message. */
export function toRawMessage(topic: string, partition: number, m: KafkaMessage): RawMessage {
  const headers: Record<string, string> = {};
  if (m.headers !== undefined) {
    for (const [k, v] of Object.entries(m.headers)) {
      const first = Array.isArray(v) ? v[0] : v;
      if (first !== undefined) headers[k] = typeof first === 'string' ? first : first.toString('utf8');
    }
  }
  return {
    topic,
    partition,
    offset: Number(m.offset),
    key: m.key ?? null,
    value: m.value ?? null,
    headers,
    timestampMs: Number(m.timestamp),
  };
}
