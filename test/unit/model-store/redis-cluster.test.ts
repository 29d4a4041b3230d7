/** Slot tags of the per-node progress keys, and what counts as a topology change (model-store/redis-cluster.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CLUSTER_SLOTS, isTopologyError, slotOf, slotTag } from '../../../model-store/redis-cluster.js';
import { nodeProgressKey } from '../../../model-store/keys.js';

describe('redis cluster helpers', () => {
  it('has a tag for every slot, and a key with that tag lands in that slot', () => {
    const scope = { namespace: 'live', side: 'item', adapter: 'fm-adagrad' } as const;
    for (const slot of [0, 1, 5460, 5461, 10922, 10923, CLUSTER_SLOTS - 1]) {
      assert.equal(slotOf(nodeProgressKey('thaw', scope, slotTag(slot))), slot);
    }
    const tags = new Set(Array.from({ length: CLUSTER_SLOTS }, (_, s) => slotTag(s)));
    assert.equal(tags.size, CLUSTER_SLOTS);
    assert.throws(() => slotTag(CLUSTER_SLOTS), RangeError);
  });

  it('treats redirections, non-local keys and a down cluster as topology errors, nothing else', () => {
    for (const m of [
      'MOVED 3999 127.0.0.1:6381',
      'ASK 3999 127.0.0.1:6381',
      'TRYAGAIN Multiple keys request during rehashing of slot',
      'CLUSTERDOWN The cluster is down',
      'ERR Script attempted to access a non local key in a cluster node script',
      'Too many Cluster redirections. Last error: Error: Connection is closed.',
      'redis EVALSHA failed: CLUSTERDOWN The cluster is down',
      'redis cluster: no node owns slot 12 (CLUSTERDOWN: the slot map is incomplete)',
    ]) {
      assert.equal(isTopologyError(new Error(m)), true, m);
    }
    for (const m of ['WRONGPASS invalid username-password pair', 'NOSCRIPT No matching script', 'ERR wrong number of arguments', 'redis EVALSHA failed: connect ECONNREFUSED 127.0.0.1:7000']) {
      assert.equal(isTopologyError(new Error(m)), false, m);
    }
  });
});
