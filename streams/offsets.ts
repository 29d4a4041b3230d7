/**
 * How far a consumer group is from a topic's end as it was at one moment: `TopicEndWatch` snapshots
 * every partition's end offset once (`snapshot()`), then compares the group's committed offsets with
 * that snapshot (`remaining()`). Records produced after the snapshot do not count, so a live topic
 * cannot keep a run that stops at the end (`thaw run --until-end`) going for ever.
 */
import { ThawError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { topicOffsets, withAdmin } from './admin.js';
import { kafkaError, type KafkaConnection } from './kafka.js';

/** One partition's offsets: `low` the first retained record, `high` the offset the next record gets. */
export interface PartitionEnd {
  partition: number;
  low: number;
  high: number;
}

/**
 * Records of `ends` not yet committed, per partition. A partition without a committed offset (-1 or
 * missing) counts from where the group starts on it: `low` from the beginning, else its end (a group
 * that starts at new records has nothing of the snapshot to process there). A committed offset below
 * `low` (records removed by retention) counts from `low`.
 */
export function remainingToEnd(ends: readonly PartitionEnd[], committed: ReadonlyMap<number, number>, fromBeginning = true): { partition: number; remaining: number }[] {
  return ends.map(({ partition, low, high }) => {
    const c = committed.get(partition) ?? -1;
    const from = c < 0 ? (fromBeginning ? low : high) : Math.max(c, low);
    return { partition, remaining: Math.max(0, high - from) };
  });
}

/** The end of one topic for one consumer group (see the file comment). */
export class TopicEndWatch {
  private ends: PartitionEnd[] | undefined;
  private readonly logger: Logger;
  private readonly fromBeginning: boolean;

  /** `fromBeginning`: where the group starts on a partition it has no offset for (as the consumer's option). @default true */
  constructor(
    private readonly conn: KafkaConnection,
    readonly groupId: string,
    readonly topic: string,
    opts: { fromBeginning?: boolean; logger?: Logger } = {},
  ) {
    this.fromBeginning = opts.fromBeginning ?? true;
    this.logger = (opts.logger ?? silentLogger).child({ component: 'topic-end', topic, groupId });
  }

  /** The snapshot taken by `snapshot()`; undefined before. */
  get snapshotEnds(): readonly PartitionEnd[] | undefined {
    return this.ends;
  }

  /** Records every partition's end offset now; later calls of `remaining()` compare against it. */
  async snapshot(): Promise<readonly PartitionEnd[]> {
    try {
      this.ends = await withAdmin(this.conn, (admin) => topicOffsets(admin, this.topic), this.logger);
    } catch (err) {
      throw kafkaError(this.conn, `end offsets of ${this.topic}`, err);
    }
    this.logger.info('end offsets snapshotted', { ends: Object.fromEntries(this.ends.map((e) => [e.partition, e.high])) });
    return this.ends;
  }

  /** The group's committed offsets on the topic, by partition (-1: none). */
  async committed(): Promise<Map<number, number>> {
    try {
      const res = await withAdmin(this.conn, (admin) => admin.fetchOffsets({ groupId: this.groupId, topics: [this.topic] }), this.logger);
      return new Map((res.find((t) => t.topic === this.topic)?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
    } catch (err) {
      throw kafkaError(this.conn, `committed offsets of group ${this.groupId} on ${this.topic}`, err);
    }
  }

  /** Records of the snapshot the group has not committed yet (sum over partitions; 0 = the end is reached). */
  async remaining(): Promise<number> {
    const ends = this.ends;
    if (ends === undefined) throw new ThawError('LIFECYCLE', 'TopicEndWatch.remaining() called before snapshot()');
    return remainingToEnd(ends, await this.committed(), this.fromBeginning).reduce((sum, p) => sum + p.remaining, 0);
  }
}
