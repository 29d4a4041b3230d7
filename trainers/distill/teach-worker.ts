/**
 * `thaw distill teach`: an elastic teacher worker of EDL-Dist. Members of one consumer group over
 * the labelled topic score each event with the current teacher release (trainers/distill/teacher.ts)
 * and write one soft label {eventId, teacherLogit, teacherRelease} per event to the soft-label topic.
 *
 * Members join and leave at any time; a member killed with -9 loses its partitions to the others.
 * Exactly once, as the re-keyer (streams/rekey.ts): a chunk's soft labels, its dead letters and its
 * consumed offset are one Kafka transaction per input partition (streams/transactions.ts), whose
 * producer fences the partition's previous owner when the partition is claimed. A chunk a killed
 * member was scoring is aborted or never begun, and the new owner scores it again from the
 * committed offset; read_committed readers (thaw distill learn) see each event's soft label once.
 *
 * The teacher release is swapped between chunks (ReleaseWatcher.take), so a chunk is scored by one
 * release, named in each of its soft labels.
 */
import { PoisonEventError, ThawError } from '../../lib/errors.js';
import { silentLogger, type Logger } from '../../lib/log.js';
import type { ReleaseWatcher } from '../../model-store/release-sync.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { BatchConsumer, type BatchConsumerOptions } from '../../streams/batch-consumer.js';
import { deadLetterOf } from '../../streams/dead-letters.js';
import type { KafkaConnection } from '../../streams/kafka.js';
import type { MessageBatch } from '../../streams/message.js';
import type { OutMessage } from '../../streams/producer.js';
import { decodeLabelled, encodeSoftLabel } from '../../streams/serde.js';
import { TOPICS } from '../../streams/topics.js';
import { PartitionTransactions } from '../../streams/transactions.js';
import type { TeacherScorer } from './teacher.js';

export interface TeachWorkerOptions {
  kafka: KafkaConnection;
  /** The teacher releases to follow (started by the caller; stopped by `stop()`). */
  teachers: ReleaseWatcher<TeacherScorer>;
  logger?: Logger;
  /** Consumer group of the teacher workers. @default 'thaw-distill-teach' */
  groupId?: string;
  /** Labelled topic scored. @default TOPICS.labelled */
  sourceTopic?: string;
  /** Soft-label topic. @default TOPICS.softLabels */
  softLabelTopic?: string;
  /** Dead-letter topic. @default TOPICS.deadLetters */
  deadLetterTopic?: string;
  /** Prefix of the transactional ids, one per input partition. @default groupId */
  transactionalIdPrefix?: string;
  /** Tuning of the underlying BatchConsumer. @default {} */
  consumer?: Omit<BatchConsumerOptions, 'kafka' | 'groupId' | 'topics' | 'logger' | 'offsetCommit' | 'pipelineDepth'>;
}

export interface TeachStats {
  consumed: number;
  softLabels: number;
  deadLettered: number;
  /** Teacher releases switched to while running. */
  releaseSwitches: number;
}

export class TeachWorker {
  private readonly transactions: PartitionTransactions;
  private readonly consumer: BatchConsumer;
  private readonly teachers: ReleaseWatcher<TeacherScorer>;
  private readonly logger: Logger;
  private readonly softLabelTopic: string;
  private readonly dlq: string;
  private teacher: TeacherScorer | undefined;
  private started = false;
  readonly stats: TeachStats = { consumed: 0, softLabels: 0, deadLettered: 0, releaseSwitches: 0 };

  constructor(opts: TeachWorkerOptions) {
    this.logger = (opts.logger ?? silentLogger).child({ component: 'distill-teach' });
    this.teachers = opts.teachers;
    this.softLabelTopic = opts.softLabelTopic ?? TOPICS.softLabels;
    this.dlq = opts.deadLetterTopic ?? TOPICS.deadLetters;
    const groupId = opts.groupId ?? 'thaw-distill-teach';
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

  /** The teacher release in use (`<model>/<version>`), once started. */
  get release(): string | undefined {
    return this.teacher?.release;
  }

  /** Joins the group; the teacher watcher must have been started (it holds the first release). */
  async start(): Promise<void> {
    if (this.started) throw new ThawError('LIFECYCLE', 'TeachWorker already started');
    this.started = true;
    const active = this.teachers.activeRelease();
    if (active === undefined) throw new ThawError('LIFECYCLE', 'TeachWorker.start(): start the teacher watcher first');
    this.teacher = active.value;
    try {
      // Each assigned partition starts where its last committed transaction left it, read after
      // its producer fenced the previous owner.
      await this.consumer.start((b) => this.handle(b), { startOffset: (tp) => this.transactions.claim(tp) });
    } catch (err) {
      await this.transactions.close();
      throw err;
    }
  }

  /** Finishes the in-flight chunk, commits its transaction, then closes. */
  async stop(): Promise<void> {
    await this.consumer.stop();
    await this.transactions.close();
    await this.teachers.stop();
  }

  /** Records not yet scored. */
  lag(): Promise<number> {
    return this.consumer.lag();
  }

  private currentTeacher(): TeacherScorer {
    const next = this.teachers.take();
    if (next !== undefined) {
      this.teacher?.dispose();
      this.teacher = next.value;
      this.stats.releaseSwitches++;
    }
    if (this.teacher === undefined) throw new ThawError('LIFECYCLE', 'no teacher release');
    return this.teacher;
  }

  private async handle(batch: MessageBatch): Promise<void> {
    const last = batch.messages[batch.messages.length - 1];
    if (last === undefined) return;
    const teacher = this.currentTeacher();
    const nowMs = Date.now();
    const events: LabelledEvent[] = [];
    const dead: OutMessage[] = [];
    for (const m of batch.messages) {
      try {
        if (m.value === null) throw new PoisonEventError('DECODE_FAILED', 'record has no value (tombstone)');
        events.push(decodeLabelled(m.value, nowMs));
      } catch (err) {
        if (!(err instanceof PoisonEventError)) throw err;
        dead.push(deadLetterOf(m, err));
      }
    }
    const logits = teacher.logits(events);
    const soft: OutMessage[] = events.map((e, i) => ({
      key: e.eventId,
      value: encodeSoftLabel({ eventId: e.eventId, teacherLogit: logits[i] ?? 0, teacherRelease: teacher.release }),
      timestampMs: e.timeMs,
    }));
    await this.transactions.commit({ topic: batch.topic, partition: batch.partition, nextOffset: last.offset + 1 }, [
      { topic: this.softLabelTopic, messages: soft },
      { topic: this.dlq, messages: dead },
    ]);
    this.stats.consumed += batch.messages.length;
    this.stats.softLabels += soft.length;
    this.stats.deadLettered += dead.length;
    if (dead.length > 0) this.logger.warn('records sent to dead letters', { count: dead.length, topic: batch.topic, partition: batch.partition });
  }
}
