/**
 * Partition ownership as a consumer-group member sees it, free of Kafka client types: what changed
 * at a group join (pure, unit-tested) and the listener a BatchConsumer's user gives to hear of it.
 *
 * Why "moved" and not just "revoked": a member that keeps its member id took part in every
 * generation of the group (a generation completes only once every member rejoined, or was removed),
 * so a partition it holds before and after a join was never anyone else's in between. A member that
 * rejoins under a NEW member id (it was removed: session timeout, a long stall) may have missed
 * generations in which its partitions were someone else's, so all of them count as moved.
 */

/** One partition of one topic. */
export interface TopicPartition {
  topic: string;
  partition: number;
}

/** A member's assignment after a group join (kafkajs GROUP_JOIN: member id and `memberAssignment`). */
export interface GroupAssignment {
  memberId: string;
  partitions: readonly TopicPartition[];
}

/** What a group join changed for this member. */
export interface AssignmentChange {
  /** The whole new assignment. */
  assigned: TopicPartition[];
  /** Partitions this member held before the join and no longer holds. */
  revoked: TopicPartition[];
  /**
   * Partitions whose ownership may have changed since this member last processed them: revoked or
   * newly assigned ones; every old and new one after a rejoin under a new member id. Whatever the
   * member cached of them is stale.
   */
  moved: TopicPartition[];
}

/** Hooks of a BatchConsumer's user into the group's rebalances (streams/batch-consumer.ts). */
export interface PartitionListener {
  /**
   * Called synchronously on every group join, before any batch of the new assignment is handed
   * over and while no batch of this member is in flight (the eager protocol revokes everything
   * first). Must not throw.
   */
  onAssignment?(change: AssignmentChange): void;
  /**
   * Called after every group join for each assigned partition, before any batch of it is fetched
   * (the consumer keeps the assignment paused meanwhile), with the offset the consumer would start
   * from (the group's committed offset, or the reset position) and the partition's high watermark.
   * Resolves to the offset to consume from instead (the consumer seeks there; an offset ahead of its
   * position means every record before it is handled, and the consumer commits it), or undefined to
   * keep the consumer's. A rejection is retried with backoff.
   */
  startOffset?(partition: TopicPartition, position: { fetchedFrom: number; highWatermark: number }): Promise<number | undefined>;
}

/**
 * Thrown by a BatchConsumer handler to have its partition consumed again from `offset` (typically
 * behind what was already handled: the handler's store lost writes). The consumer does not retry the
 * chunk: it lets the chunks in flight settle, seeks the partition to `offset` and refetches.
 */
export class RewindPartition extends Error {
  override readonly name = 'RewindPartition';
  constructor(
    readonly offset: number,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`rewind to offset ${offset}: ${reason}`, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

/** `topic:partition` (Kafka topic names cannot contain `:`). */
export function partitionKey(p: TopicPartition): string {
  return `${p.topic}:${p.partition}`;
}

/** The partitions of kafkajs' `memberAssignment` ({ topic: partitions }), sorted. */
export function partitionsOf(memberAssignment: Readonly<Record<string, readonly number[]>>): TopicPartition[] {
  const out: TopicPartition[] = [];
  for (const [topic, partitions] of Object.entries(memberAssignment)) for (const partition of partitions) out.push({ topic, partition });
  return out.sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
}

/** What changed from `prev` (undefined before the first join) to `next`. */
export function assignmentChange(prev: GroupAssignment | undefined, next: GroupAssignment): AssignmentChange {
  const assigned = [...next.partitions];
  if (prev === undefined) return { assigned, revoked: [], moved: [...assigned] };
  const before = new Map(prev.partitions.map((p) => [partitionKey(p), p]));
  const after = new Map(next.partitions.map((p) => [partitionKey(p), p]));
  const revoked = [...before].filter(([k]) => !after.has(k)).map(([, p]) => p);
  if (prev.memberId !== next.memberId) {
    // Possibly missed generations: nothing this member knew of any partition can be trusted.
    const moved = new Map([...before, ...after]);
    return { assigned, revoked, moved: [...moved.values()] };
  }
  const gained = [...after].filter(([k]) => !before.has(k)).map(([, p]) => p);
  return { assigned, revoked, moved: [...revoked, ...gained] };
}
