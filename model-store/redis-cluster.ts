/**
 * Redis Cluster plumbing shared by the store (redis-store.ts) and serving (serving/state-source.ts):
 * split a batch's keys by the master node that owns their slot, so that a batch costs ONE round trip
 * per node, whatever its size.
 *
 * - Reads: one pipeline per node, one MGET per slot inside it (a multi-key command whose keys span
 *   slots fails with CROSSSLOT even when one node owns them all). The `{entityId}` hash tag keeps
 *   every key of one entity in one slot (keys.ts).
 * - Writes: one script call per node (cas-script.ts CLUSTER_CAS_SCRIPT). Measured on Redis 7.0.15:
 *   declared KEYS must still share ONE slot even with the `#!lua flags=allow-cross-slot-keys`
 *   shebang (CROSSSLOT otherwise); the flag lets the script touch keys of other slots that the same
 *   node owns. So the cluster call declares one key (the anchor, which routes the call) and passes
 *   the others as arguments. A key whose slot is not on that node fails the script ("non local
 *   key"): that, MOVED, ASK, TRYAGAIN and CLUSTERDOWN are topology errors, after which the slot map
 *   is refreshed and the batch is split again and retried (every write is an idempotent CAS).
 * - Progress: one key per node, tagged with a hash tag that maps to a slot the node owns
 *   (slotTag), written in that node's call of every batch; a partition restarts from the MIN over
 *   nodes (consumers/progress.ts).
 */
import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import { ThawError, errorMessage } from '../lib/errors.js';

/** A standalone client or a cluster client (RedisConnection `cluster`). */
export type RedisClient = Redis | Cluster;

export const CLUSTER_SLOTS = 16_384;

export function isCluster(client: RedisClient): client is Cluster {
  return (client as { isCluster?: unknown }).isCluster === true;
}

export function slotOf(key: string): number {
  return calculateSlot(key);
}

let tags: string[] | undefined;

/**
 * A short hash tag whose key maps to `slot` (`{tag}` anywhere in a key puts it in that slot): the
 * first base-36 counter value that hashes there. Computed once for all 16,384 slots (~170k CRC16s).
 */
export function slotTag(slot: number): string {
  if (tags === undefined) {
    const found: (string | undefined)[] = new Array<string | undefined>(CLUSTER_SLOTS).fill(undefined);
    let missing = CLUSTER_SLOTS;
    for (let i = 0; missing > 0; i++) {
      const tag = i.toString(36);
      const s = calculateSlot(tag);
      if (found[s] === undefined) {
        found[s] = tag;
        missing--;
      }
    }
    tags = found.map((t) => t ?? '');
  }
  const tag = tags[slot];
  if (tag === undefined) throw new RangeError(`not a cluster slot: ${slot}`);
  return tag;
}

/** The master (`host:port`) that owns each slot, as the client last saw it; undefined if unknown. */
export function masterOf(cluster: Cluster, slot: number): string | undefined {
  return cluster.slots[slot]?.[0];
}

/** Every master with slots, each with the lowest slot it owns (the slot of its progress key). */
export function mastersWithFirstSlot(cluster: Cluster): Map<string, number> {
  const out = new Map<string, number>();
  for (let s = 0; s < CLUSTER_SLOTS; s++) {
    const node = masterOf(cluster, s);
    if (node !== undefined && !out.has(node)) out.set(node, s);
  }
  return out;
}

/**
 * Waits until the client has a slot map (the first command of a new client connects it), for at
 * most the nodes' command timeout: a cluster client queues commands for as long as no node answers,
 * so without this bound a worker facing an unreachable cluster would wait for ever instead of
 * failing (at start-up) or pausing (during an outage) with REDIS_ERROR.
 */
export async function ensureSlots(cluster: Cluster): Promise<void> {
  if (cluster.slots.length > 0 && cluster.status === 'ready') return;
  const timeoutMs = cluster.options.redisOptions?.commandTimeout ?? 5_000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ThawError('REDIS_ERROR', `redis cluster: no node answered within ${timeoutMs} ms (status ${cluster.status})`)), timeoutMs);
  });
  try {
    await Promise.race([cluster.ping(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Refreshes the slot map now and resolves when the refresh is done. */
export function refreshSlots(cluster: Cluster): Promise<void> {
  return new Promise((resolve) => {
    // A failed refresh is no reason to give up: the retry hits the error again and reports it.
    cluster.refreshSlotsCache(() => resolve());
  });
}

// Not anchored: the store's own errors wrap the reply (`redis EVALSHA failed: CLUSTERDOWN …`).
const TOPOLOGY_REPLY = /\b(MOVED|ASK) \d+ |\bTRYAGAIN\b|\bCLUSTERDOWN\b|non local key|Too many Cluster redirections|slots allocation group|no node owns slot|owns no slot/;

/** Whether `err` says the slot map the batch was split with is out of date (resharding, failover). */
export function isTopologyError(err: unknown): boolean {
  return TOPOLOGY_REPLY.test(errorMessage(err));
}

/** Attempts of a batch against a changing topology, the first included. */
export const TOPOLOGY_ATTEMPTS = 4;

/**
 * Runs `op` (which splits its batch with the current slot map); on a topology error refreshes the
 * map and runs it again, up to TOPOLOGY_ATTEMPTS times. `op` must be idempotent.
 */
export async function withTopologyRetry<T>(cluster: Cluster, op: () => Promise<T>, onRetry?: (err: unknown, attempt: number) => void): Promise<T> {
  await ensureSlots(cluster);
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      if (!isTopologyError(err) || attempt >= TOPOLOGY_ATTEMPTS) throw err;
      onRetry?.(err, attempt);
      await refreshSlots(cluster);
    }
  }
}

/** Positions of `keys` grouped by master, then by slot (for per-node pipelines of per-slot commands). */
export function groupByNode(cluster: Cluster, keys: readonly string[]): Map<string, Map<number, number[]>> {
  const byNode = new Map<string, Map<number, number[]>>();
  keys.forEach((key, i) => {
    const slot = slotOf(key);
    const node = masterOf(cluster, slot);
    if (node === undefined) throw new ThawError('REDIS_ERROR', `redis cluster: no node owns slot ${slot} (CLUSTERDOWN: the slot map is incomplete)`);
    let slots = byNode.get(node);
    if (slots === undefined) byNode.set(node, (slots = new Map<number, number[]>()));
    const at = slots.get(slot);
    if (at === undefined) slots.set(slot, [i]);
    else at.push(i);
  });
  return byNode;
}

/**
 * The values of `keys` (null where absent) in one pipeline per node, one MGET per slot, the nodes
 * in parallel. Throws the first command error (topology errors included, for withTopologyRetry).
 * `calls` counts the pipelines sent per node.
 */
export async function clusterMget(cluster: Cluster, keys: readonly string[], calls?: Map<string, number>): Promise<(Buffer | null)[]> {
  const out = new Array<Buffer | null>(keys.length).fill(null);
  const byNode = groupByNode(cluster, keys);
  await Promise.all(
    [...byNode].map(async ([node, slots]) => {
      calls?.set(node, (calls.get(node) ?? 0) + 1);
      const pipeline = cluster.pipeline();
      const order: number[][] = [];
      for (const positions of slots.values()) {
        pipeline.mgetBuffer(...positions.map((i) => keys[i] ?? ''));
        order.push(positions);
      }
      const results = await pipeline.exec();
      if (results === null) throw new ThawError('REDIS_ERROR', 'redis cluster: a read pipeline was discarded');
      results.forEach(([err, values], c) => {
        if (err !== null) throw err;
        const positions = order[c] ?? [];
        const vals = values as (Buffer | null)[];
        positions.forEach((pos, j) => {
          out[pos] = vals[j] ?? null;
        });
      });
    }),
  );
  return out;
}
