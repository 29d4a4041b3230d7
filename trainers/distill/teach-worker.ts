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
 *
 * A chunk whose scoring throws (a release that fails to load, an inference error) is retried with
 * backoff (trainers/distill/teach-retry.ts); when the retries are spent the worker fails: it never
 * begins that chunk's transaction, stops fetching and leaves the group, so another member takes the
 * partition from its last committed offset (`failed` resolves with the TEACHER_FAILED error).
 */
import { PoisonEventError, ThawError, errorMessage } from '../../lib/errors.js';
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
import { scoreWithRetry, teacherRetryOf, type TeacherRetry, type TeacherRetryOptions } from './teach-retry.js';

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
  /** Retries of a failing teacher before the worker leaves the group. @default teacherRetryOf() */
  retry?: TeacherRetryOptions;
  /** Tuning of the underlying BatchConsumer. @default {} */
  consumer?: Omit<BatchConsumerOptions, 'kafka' | 'groupId' | 'topics' | 'logger' | 'offsetCommit' | 'pipelineDepth'>;
}

export interface TeachStats {
  consumed: number;
  softLabels: number;
  deadLettered: number;
  /** Teacher releases switched to while running. */
  releaseSwitches: number;
  /** Failed scoring attempts that were retried. */
  teacherRetries: number;
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
  private readonly retry: TeacherRetry;
  private failure: ThawError | undefined;
  private readonly failedWaiters: ((err: ThawError) => void)[] = [];
  private stopping: Promise<void> | undefined;
  readonly stats: TeachStats = { consumed: 0, softLabels: 0, deadLettered: 0, releaseSwitches: 0, teacherRetries: 0 };

  constructor(opts: TeachWorkerOptions) {
    this.logger = (opts.logger ?? silentLogger).child({ component: 'distill-teach' });
    this.teachers = opts.teachers;
    this.softLabelTopic = opts.softLabelTopic ?? TOPICS.softLabels;
    this.dlq = opts.deadLetterTopic ?? TOPICS.deadLetters;
    this.retry = teacherRetryOf(opts.retry);
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

  /** Finishes the in-flight chunk, commits its transaction, then closes (once; later calls wait for it). */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.consumer.stop();
      await this.transactions.close();
      await this.teachers.stop();
    })();
    return this.stopping;
  }

  /** Resolves with TEACHER_FAILED once the worker gave up on a failing teacher and began leaving the group. */
  failed(): Promise<ThawError> {
    if (this.failure !== undefined) return Promise.resolve(this.failure);
    return new Promise((resolve) => this.failedWaiters.push(resolve));
  }

  /** Gives up: the chunk in hand is not committed, the worker leaves the group (in the background). */
  private giveUp(err: ThawError): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    this.logger.error('teacher keeps failing; leaving the group so another worker takes the partitions', { error: errorMessage(err.cause ?? err) });
    // Not awaited here: stop() waits for this very handler to settle.
    this.stop().catch((e: unknown) => this.logger.warn('stop after teacher failure failed', { error: errorMessage(e) }));
    for (const w of this.failedWaiters.splice(0)) w(err);
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
    // Thrown, not returned: a handler that returns lets the consumer move past the unscored chunk.
    if (this.failure !== undefined) throw this.failure;
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
    let scored: { teacher: TeacherScorer; logits: Float32Array };
    try {
      scored = await scoreWithRetry(
        () => {
          const t = this.currentTeacher();
          return { teacher: t, logits: t.logits(events) };
        },
        this.retry,
        (attempt, err) => {
          this.stats.teacherRetries++;
          this.logger.warn('teacher scoring failed; retrying', { attempt, topic: batch.topic, partition: batch.partition, error: errorMessage(err) });
        },
      );
    } catch (err) {
      if (err instanceof ThawError && err.code === 'TEACHER_FAILED') this.giveUp(err);
      throw err;
    }
    const { teacher, logits } = scored;
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
