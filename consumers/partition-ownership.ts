/**
 * Which partitions a worker owns, and what it keeps of each (consumers/worker.ts explains the
 * rebalance rules): on a group join the moved partitions' cached states and pipes are dropped; a
 * newly assigned partition starts right after the progress stored with its states; a store that lost
 * acknowledged writes rewinds the partition to the progress it still has.
 */
import { StoreRegressedError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { EntityStore, StateScope } from '../model-store/types.js';
import type { AssignmentChange, PartitionListener, TopicPartition } from '../streams/assignment.js';
import { RewindPartition } from '../streams/batch-consumer.js';
import type { WorkerMetrics } from './metrics.js';
import { PartitionPipe, scopeKeyOf } from './partition-pipe.js';
import { decideStart } from './progress.js';

export interface PartitionOwnershipOptions {
  store: EntityStore;
  metrics: WorkerMetrics;
  logger: Logger;
  /** Where the states of the release in use live (their progress is read from there). */
  stateScope: () => StateScope;
}

export class PartitionOwnership implements PartitionListener {
  /** Per owned partition: its chain of chunks between prepare and durable. */
  private readonly pipes = new Map<string, PartitionPipe>();

  constructor(private readonly opts: PartitionOwnershipOptions) {}

  /**
   * A group join: drop what this worker cached of every partition whose ownership may have changed
   * (the cache tier's states, the partition pipe's pending states), before any batch of the new
   * assignment. No batch is in flight here (the consumer revokes between batches).
   */
  onAssignment(change: AssignmentChange): void {
    const dropped = this.opts.store.invalidatePartitions?.(change.moved);
    for (const p of change.moved) this.pipes.delete(`${p.topic}\u0000${p.partition}`);
    this.opts.metrics.recordPartitionsMoved(change.moved.length);
    this.opts.logger.info('assignment changed: cached states of moved partitions dropped', {
      assigned: change.assigned.length,
      revoked: change.revoked.map((p) => p.partition),
      moved: change.moved.map((p) => p.partition),
      droppedStates: typeof dropped === 'number' ? dropped : undefined,
    });
  }

  /**
   * The store lost writes it had acknowledged (a Redis crash under `appendfsync everysec`, a failover
   * to a lagging replica) while this worker kept running: its cached states of the partition are
   * newer than the store's and must not be built on. Drop them and have the consumer refetch right
   * after the progress the store still has (a restart would start there too); the per-entity CAS
   * skips whatever survived. Detected at the partition's next state write.
   */
  rewind(pipe: PartitionPipe, err: StoreRegressedError): RewindPartition {
    const dropped = this.opts.store.invalidatePartitions?.([{ topic: err.topic, partition: err.partition }]);
    pipe.written = err.stored;
    const offset = err.stored === undefined ? 0 : err.stored + 1;
    this.opts.metrics.recordPartitionStart('seek_behind');
    this.opts.logger.error('the state store lost acknowledged writes: cached states dropped, re-applying from Kafka', {
      topic: err.topic,
      partition: err.partition,
      storedProgress: err.stored,
      writtenProgress: err.expected,
      offset,
      droppedStates: typeof dropped === 'number' ? dropped : undefined,
    });
    return new RewindPartition(offset, err.message, { cause: err });
  }

  /** Where a newly assigned partition starts: right after its progress stored with the states. */
  async startOffset(tp: TopicPartition, position: { fetchedFrom: number; highWatermark: number }): Promise<number | undefined> {
    const scope = this.opts.stateScope();
    const stored = this.opts.store.getProgress === undefined ? undefined : await this.opts.store.getProgress(scope, tp.topic, tp.partition);
    const pipe = this.pipeOf(tp.topic, tp.partition);
    pipe.written = stored;
    pipe.writtenScope = scopeKeyOf(scope);
    const d = decideStart(stored, position.fetchedFrom, position.highWatermark);
    const fields = { topic: tp.topic, partition: tp.partition, storedProgress: stored, ...position };
    if (d.action === 'seek') {
      this.opts.metrics.recordPartitionStart(d.direction === 'ahead' ? 'seek_ahead' : 'seek_behind');
      const why =
        d.direction === 'ahead' ? 'states are ahead of the committed offset: skipping what is applied' : 'states are behind the committed offset (the store lost writes?): re-applying from Kafka';
      this.opts.logger.warn(`partition starts at its stored progress: ${why}`, { ...fields, offset: d.offset });
      return d.offset;
    }
    this.opts.metrics.recordPartitionStart(d.reason === 'no-progress' ? 'no_progress' : d.reason === 'in-step' ? 'in_step' : 'beyond_end');
    if (d.reason === 'beyond-end') {
      this.opts.logger.warn(
        "stored progress is past the partition's end (topic recreated or truncated?): starting from the committed offset; states recorded against the old offsets may refuse new events",
        fields,
      );
    }
    return undefined;
  }

  pipeOf(topic: string, partition: number): PartitionPipe {
    const key = `${topic}\u0000${partition}`;
    let pipe = this.pipes.get(key);
    if (pipe === undefined) {
      pipe = new PartitionPipe();
      this.pipes.set(key, pipe);
    }
    return pipe;
  }
}
