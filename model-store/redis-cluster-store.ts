/**
 * RedisEntityStore's writes and progress on a Redis Cluster (redis-cluster.ts says how batches are
 * split): one CLUSTER_CAS_SCRIPT call per master per batch, the masters in parallel.
 *
 * Progress: with a ProgressWrite, EVERY master gets the partition's progress in its call, in a key
 * tagged for a slot it owns, also when the batch has no entity there. A node that crashes loses a
 * suffix of its own writes (AOF, `appendfsync everysec`), so its progress regresses together with
 * its states; the MIN over masters is therefore a restart point no node is behind of, and the
 * per-entity CAS skips what the other nodes already applied.
 */
import type { Cluster } from 'ioredis';
import { ThawError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { CLUSTER_CAS_SCRIPT, CLUSTER_CAS_SCRIPT_SHA, casCall, casCounts, type CasGroup } from './cas-script.js';
import { nodeProgressKey, progressField } from './keys.js';
import { groupByNode, mastersWithFirstSlot, slotTag, withTopologyRetry } from './redis-cluster.js';
import { redisError } from './redis.js';
import type { StateScope } from './types.js';

/** Progress to record with a cluster write. */
export interface ClusterProgress {
  prefix: string;
  scope: StateScope;
  topic: string;
  partition: number;
  offset: number;
  /** The progress every master must hold at least (ProgressWrite.expectAtLeast). */
  expectAtLeast?: number;
}

/** Calls made by one store, per master (`host:port`): the one-call-per-node property, observable. */
export type CallsByNode = Map<string, number>;

/**
 * Writes `groups` (standalone CAS groups, unbounded) with one script call per master; returns the
 * summed [written, skipped, evicted] per group. Retried as a whole after a topology change: states
 * a first attempt wrote count as skipped then.
 */
export async function clusterPut(
  cluster: Cluster,
  groups: readonly CasGroup[],
  ttlSeconds: number,
  progress: ClusterProgress | undefined,
  log: Logger,
  calls?: CallsByNode,
): Promise<[number, number, number][]> {
  return withTopologyRetry(
    cluster,
    async () => {
      const totals = groups.map((): [number, number, number] => [0, 0, 0]);
      // Per node, per group: the positions of the group's entries that node owns.
      const perNode = new Map<string, Map<number, number[]>>();
      groups.forEach((g, gi) => {
        for (const [node, slots] of groupByNode(cluster, g.keys)) {
          let own = perNode.get(node);
          if (own === undefined) perNode.set(node, (own = new Map<number, number[]>()));
          own.set(
            gi,
            [...slots.values()].flat().sort((a, b) => a - b),
          );
        }
      });
      const firstSlots = mastersWithFirstSlot(cluster);
      if (progress !== undefined) for (const node of firstSlots.keys()) if (!perNode.has(node)) perNode.set(node, new Map());
      await Promise.all(
        [...perNode].map(async ([node, own]) => {
          const order = [...own.keys()];
          const nodeGroups: CasGroup[] = order.map((gi) => {
            const g = groups[gi];
            const at = own.get(gi) ?? [];
            if (g === undefined) throw new RangeError(`no group ${gi}`);
            return { head: g.head, keys: at.map((i) => g.keys[i] ?? ''), values: at.map((i) => g.values[i] ?? Buffer.alloc(0)) };
          });
          const firstSlot = firstSlots.get(node);
          const trailer =
            progress === undefined
              ? undefined
              : firstSlot === undefined
                ? failNoSlots(node)
                : {
                    key: nodeProgressKey(progress.prefix, progress.scope, slotTag(firstSlot)),
                    field: progressField(progress.topic, progress.partition),
                    offset: progress.offset,
                    ...(progress.expectAtLeast === undefined ? {} : { expectAtLeast: progress.expectAtLeast }),
                  };
          const { keys, args } = casCall(nodeGroups, ttlSeconds, 0, trailer);
          const anchor = trailer?.key ?? keys[0];
          if (anchor === undefined) return;
          calls?.set(node, (calls.get(node) ?? 0) + 1);
          const reply = await evalClusterCas(cluster, anchor, keys, args);
          casCounts(reply, nodeGroups.length).forEach((c, j) => {
            const total = totals[order[j] ?? -1];
            if (total !== undefined) for (let k = 0; k < 3; k++) total[k] = (total[k] ?? 0) + (c[k] ?? 0);
          });
        }),
      );
      return totals;
    },
    (err, attempt) => log.info('redis cluster topology changed; refreshing the slot map and retrying the batch', { attempt, error: errorMessage(err) }),
  );
}

function failNoSlots(node: string): never {
  throw new ThawError('REDIS_ERROR', `redis cluster: node ${node} owns no slot (CLUSTERDOWN: the slot map is out of date)`);
}

/** EVALSHA on the node owning `anchor`'s slot; on NOSCRIPT loads the script on every master and retries once. */
async function evalClusterCas(cluster: Cluster, anchor: string, keys: string[], args: (Buffer | string | number)[]): Promise<unknown> {
  const call = (): Promise<unknown> => cluster.evalsha(CLUSTER_CAS_SCRIPT_SHA, 1, anchor, keys.length, ...keys, ...args);
  try {
    return await call();
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw redisError('EVALSHA', err);
  }
  try {
    await Promise.all(cluster.nodes('master').map((n) => n.script('LOAD', CLUSTER_CAS_SCRIPT)));
    return await call();
  } catch (err) {
    throw redisError('EVALSHA', err);
  }
}

/**
 * The progress of a partition on a cluster: the MIN over masters of each one's record (HGET of its
 * progress key, in parallel). Masters without a record are left out (a slot moved by resharding
 * takes its node's key along until the next batch writes the new one); undefined when none has one.
 */
export async function clusterGetProgress(cluster: Cluster, prefix: string, scope: StateScope, topic: string, partition: number, log: Logger): Promise<number | undefined> {
  const field = progressField(topic, partition);
  const records = await withTopologyRetry(cluster, () =>
    Promise.all([...mastersWithFirstSlot(cluster)].map(async ([node, slot]) => ({ node, value: await cluster.hget(nodeProgressKey(prefix, scope, slotTag(slot)), field) }))),
  );
  let min: number | undefined;
  const missing: string[] = [];
  for (const { node, value } of records) {
    if (value === null) {
      missing.push(node);
      continue;
    }
    const offset = Number(value);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new ThawError('STATE_CORRUPT', `progress of ${field} on ${node} is not an offset: ${JSON.stringify(value)}`);
    min = min === undefined ? offset : Math.min(min, offset);
  }
  if (min !== undefined && missing.length > 0) log.warn('progress missing on some cluster nodes; using the minimum of the others', { field, missing });
  return min;
}
