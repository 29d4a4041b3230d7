/**
 * Dead letters: records that can never be processed are copied, bytes unchanged, to a dead-letter
 * topic with headers saying why and where they came from, so bad input neither stops the stream nor
 * disappears. Original headers are kept; `thaw-*` headers are added: why (`thaw-reason`,
 * `thaw-error-code`), where from (`thaw-source-*`), who gave up on it (`thaw-consumer-group`,
 * `thaw-namespace`, `thaw-adapter`, when the sender says), and `thaw-source-tombstone: true` for a
 * record whose value was null (its copy carries 0 bytes, which a header alone tells from an empty value).
 */
import { ThawError, errorMessage } from '../lib/errors.js';
import { redactUrl } from '../lib/log.js';
import type { RawMessage } from './message.js';
import type { EventProducer, OutMessage } from './producer.js';
import { TOPICS } from './topics.js';

export const DLQ_HEADERS = {
  reason: 'thaw-reason',
  code: 'thaw-error-code',
  topic: 'thaw-source-topic',
  partition: 'thaw-source-partition',
  offset: 'thaw-source-offset',
  timestamp: 'thaw-source-timestamp',
  tombstone: 'thaw-source-tombstone',
  group: 'thaw-consumer-group',
  namespace: 'thaw-namespace',
  adapter: 'thaw-adapter',
} as const;

/** Who sent a record to dead letters (written as headers, each when given). */
export interface DeadLetterContext {
  /** Consumer group that gave up on the record. */
  consumerGroup?: string;
  /** State and analytics namespace of that consumer (`live`, a replay's name). */
  namespace?: string;
  /** Adapter the consumer runs (`fm-adagrad`, ...). */
  adapter?: string;
}

/** Longest reason kept in the header. Characters. */
const MAX_REASON = 1000;

/** The dead-letter copy of `msg` (exported for tests and for callers batching their own sends). */
export function deadLetterOf(msg: RawMessage, err: unknown, context: DeadLetterContext = {}): OutMessage {
  const reason = redactUrl(errorMessage(err));
  return {
    key: msg.key,
    value: msg.value ?? Buffer.alloc(0),
    headers: {
      ...msg.headers,
      [DLQ_HEADERS.reason]: reason.length > MAX_REASON ? reason.slice(0, MAX_REASON - 3) + '...' : reason,
      [DLQ_HEADERS.code]: err instanceof ThawError ? err.code : 'UNKNOWN',
      [DLQ_HEADERS.topic]: msg.topic,
      [DLQ_HEADERS.partition]: String(msg.partition),
      [DLQ_HEADERS.offset]: String(msg.offset),
      [DLQ_HEADERS.timestamp]: String(msg.timestampMs),
      ...(msg.value === null ? { [DLQ_HEADERS.tombstone]: 'true' } : {}),
      ...(context.consumerGroup === undefined ? {} : { [DLQ_HEADERS.group]: context.consumerGroup }),
      ...(context.namespace === undefined ? {} : { [DLQ_HEADERS.namespace]: context.namespace }),
      ...(context.adapter === undefined ? {} : { [DLQ_HEADERS.adapter]: context.adapter }),
    },
  };
}

export class DeadLetterWriter {
  /** Records sent to dead letters by this writer. */
  count = 0;

  constructor(
    private readonly producer: EventProducer,
    readonly topic: string = TOPICS.deadLetters,
  ) {}

  /** Sends one record; resolves when acknowledged. */
  async send(msg: RawMessage, err: unknown, context?: DeadLetterContext): Promise<void> {
    await this.sendMany([{ msg, err }], context);
  }

  /** Sends many records in one produce call (one call per consumed batch, not per record). */
  async sendMany(items: readonly { msg: RawMessage; err: unknown }[], context?: DeadLetterContext): Promise<void> {
    if (items.length === 0) return;
    await this.producer.send(
      this.topic,
      items.map((i) => deadLetterOf(i.msg, i.err, context)),
    );
    this.count += items.length;
  }
}
