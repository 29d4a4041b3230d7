/**
 * The join of `thaw distill learn`: labelled events (consumed by the online trainer) with their
 * soft labels (topic thaw.soft-labels, written by `thaw distill teach`), by event id.
 *
 * The soft-label topic is read by a consumer of its own (read_committed, a fresh group per process
 * reading from the beginning: the soft labels of events after the newest release are needed again
 * after a restart, and committed offsets would skip them). Soft labels wait in a bounded map until
 * their event is trained; a batch of labelled events waits at most `waitMs` for its soft labels,
 * then trains the events still without one on the hard label alone and counts them (`late`).
 *
 * For an exact resume (thaw distill learn --resume) the join is checkpointed with the trainer
 * (`save`, between chunks): its pending soft labels and the soft-label offsets they correspond to
 * (every soft label before them is pending, taken or evicted). Started from that state, it reads on
 * from those offsets, so the events after the checkpoint find the same soft labels again.
 */
import { randomUUID } from 'node:crypto';
import { ConfigError, ThawError, errorMessage } from '../../lib/errors.js';
import { silentLogger, type Logger } from '../../lib/log.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { BatchConsumer, type MessageBatch } from '../../streams/batch-consumer.js';
import type { CheckpointData } from '../checkpoint.js';
import { bytesArray, bytesValue, f64Array, f64Values } from '../checkpoint.js';
import type { KafkaConnection } from '../../streams/kafka.js';
import { decodeSoftLabel } from '../../streams/serde.js';

export interface SoftLabelJoinOptions {
  kafka: KafkaConnection;
  /** Soft-label topic. */
  topic: string;
  /** Longest a batch of labelled events waits for its soft labels. Milliseconds. */
  waitMs: number;
  /** Soft labels held at most (oldest dropped first). Count. @default 1_000_000 */
  maxPending?: number;
  logger?: Logger;
}

/** Counters of the join. */
export interface SoftLabelJoinStats {
  /** Soft labels read. */
  received: number;
  /** Events trained with their soft label. */
  joined: number;
  /** Events trained on the hard label alone: their soft label came later than waitMs. */
  late: number;
  /** Soft labels dropped unread because more than maxPending were held. */
  evicted: number;
  /** Undecodable soft-label records skipped. */
  poison: number;
}

export class SoftLabelJoin {
  private readonly o: Required<Omit<SoftLabelJoinOptions, 'logger'>>;
  private readonly log: Logger;
  private readonly pending = new Map<string, number>();
  private waiters: (() => void)[] = [];
  private consumer: BatchConsumer | undefined;
  /** Next soft-label offset per partition read (`<partition>` → offset). */
  private positions: Record<string, number> = {};
  readonly stats: SoftLabelJoinStats = { received: 0, joined: 0, late: 0, evicted: 0, poison: 0 };

  constructor(opts: SoftLabelJoinOptions) {
    const maxPending = opts.maxPending ?? 1_000_000;
    if (!Number.isInteger(opts.waitMs) || opts.waitMs < 0) throw new ConfigError('distill.softLabelWaitMs', `must be an integer >= 0, got ${String(opts.waitMs)}`);
    if (!Number.isInteger(maxPending) || maxPending < 1) throw new ConfigError('distill.maxPendingSoftLabels', `must be an integer >= 1, got ${String(maxPending)}`);
    this.o = { kafka: opts.kafka, topic: opts.topic, waitMs: opts.waitMs, maxPending };
    this.log = (opts.logger ?? silentLogger).child({ component: 'soft-label-join' });
  }

  /** The pending soft labels, the offsets they correspond to and the counters (call between chunks). */
  save(): CheckpointData {
    const ids = [...this.pending.keys()];
    return {
      meta: { positions: { ...this.positions }, stats: { ...this.stats } },
      arrays: new Map([
        ['pending.ids', bytesArray(Buffer.from(JSON.stringify(ids), 'utf8'))],
        ['pending.logits', f64Array([...this.pending.values()])],
      ]),
    };
  }

  /**
   * Starts reading the soft-label topic: from its beginning, or (`restored`, what `save` returned)
   * with that state and from its offsets.
   */
  async start(restored?: CheckpointData): Promise<void> {
    if (restored !== undefined) this.restore(restored);
    const positions = { ...this.positions };
    const consumer = new BatchConsumer({
      kafka: this.o.kafka,
      groupId: `thaw-distill-soft-${randomUUID()}`,
      topics: [this.o.topic],
      fromBeginning: true,
      maxWaitTimeMs: 100,
      logger: this.log,
    });
    this.consumer = consumer;
    await consumer.start((batch) => this.onBatch(batch), { startOffset: (tp) => Promise.resolve(positions[String(tp.partition)]) });
  }

  private onBatch(batch: MessageBatch): Promise<void> {
    for (const m of batch.messages) {
      if (m.value === null) continue;
      try {
        const s = decodeSoftLabel(m.value);
        this.add(s.eventId, s.teacherLogit);
      } catch (err) {
        this.stats.poison++;
        this.log.warn('undecodable soft label skipped', { partition: batch.partition, offset: m.offset, error: errorMessage(err) });
      }
    }
    const last = batch.messages[batch.messages.length - 1];
    if (last !== undefined) this.positions[String(batch.partition)] = last.offset + 1;
    for (const w of this.waiters.splice(0)) w();
    return Promise.resolve();
  }

  private restore(ck: CheckpointData): void {
    const meta = ck.meta as { positions?: Record<string, number>; stats?: SoftLabelJoinStats };
    const idsArr = ck.arrays.get('pending.ids');
    const logitsArr = ck.arrays.get('pending.logits');
    if (meta.positions === undefined || meta.stats === undefined || idsArr === undefined || logitsArr === undefined) throw new ThawError('STATE_CORRUPT', 'checkpoint lacks the soft-label join');
    const ids = JSON.parse(bytesValue(idsArr).toString('utf8')) as unknown;
    const logits = f64Values(logitsArr);
    if (!Array.isArray(ids) || ids.length !== logits.length) throw new ThawError('STATE_CORRUPT', 'checkpoint: pending soft-label ids and logits differ in number');
    this.pending.clear();
    ids.forEach((id, i) => this.pending.set(String(id), logits[i] ?? 0));
    this.positions = { ...meta.positions };
    Object.assign(this.stats, meta.stats);
  }

  async stop(): Promise<void> {
    const c = this.consumer;
    this.consumer = undefined;
    for (const w of this.waiters.splice(0)) w();
    await c?.stop();
  }

  /** Adds a soft label (what the consumer does; public for tests of the join alone). */
  add(eventId: string, teacherLogit: number): void {
    this.stats.received++;
    this.pending.delete(eventId);
    this.pending.set(eventId, teacherLogit);
    if (this.pending.size > this.o.maxPending) {
      const oldest = this.pending.keys().next();
      if (oldest.done !== true) {
        this.pending.delete(oldest.value);
        this.stats.evicted++;
      }
    }
  }

  /** Resolves once every event of `events` has its soft label, or `waitMs` after the call. */
  async ready(events: readonly LabelledEvent[]): Promise<void> {
    const deadline = Date.now() + this.o.waitMs;
    while (events.some((e) => !this.pending.has(e.eventId))) {
      const left = deadline - Date.now();
      if (left <= 0 || this.consumer === undefined) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The event's teacher logit, taken out of the map (counted joined), or undefined (counted late). */
  take(ev: LabelledEvent): number | undefined {
    const t = this.pending.get(ev.eventId);
    if (t === undefined) {
      this.stats.late++;
      return undefined;
    }
    this.pending.delete(ev.eventId);
    this.stats.joined++;
    return t;
  }
}
