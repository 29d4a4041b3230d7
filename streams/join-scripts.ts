/**
 * Lua scripts of the impression/click join (see join.ts). Each script is atomic on one pending
 * impression, so "emit label 1 once" holds however clicks are duplicated or interleaved.
 *
 * Pending impression hash `<prefix>:imp:{<impressionId>}` fields:
 *   imp  wire-format impression bytes      t    impression time (ms)
 *   clk  earliest click seen before the impression arrived (ms)
 *   out  who claimed the label: `1|<topic>:<partition>:<offset>` of the claiming message, or
 *        `0|<offset>` (claimed by the sweep of the impressions chunk ending at that offset; `0` from
 *        versions before transactions). A redelivered claiming message (after a crash between the
 *        claim and the transaction's commit) emits again; any other message sees the claim and does
 *        not. A sweep re-emits a `0|<offset>` claim only if that chunk was not committed, i.e. its
 *        offset is at or after the first offset of the sweeping chunk (a partition's chunks are
 *        handled in order and a restart resumes at the committed offset).
 * Deadlines: sorted set `<prefix>:deadlines:<topic>:<partition>`, score = impression time + window.
 *
 * TTL (`pendingTtlMs`, wall clock) bounds memory, but a hash must outlive any redelivery of its
 * impression: a click may claim an impression whose chunk is then lost in a crash, and if the hash
 * expired before the restarted join reads that chunk again, the impression would start over and be
 * swept to a second label. So an impression removes any TTL from its hash, and the join arms the TTL
 * (ARM_LUA) only once the impression's chunk is committed; if the process dies between the commit
 * and the arming, the sweep that passes the impression's deadline returns it and arms it after its
 * own commit.
 *
 * The sweep reads hashes whose names are built in Lua: fine on a standalone Redis (the only mode
 * this join supports), not on Redis Cluster.
 */
import type { Redis, ChainableCommander } from 'ioredis';

export const IMPRESSION_LUA = `
local out = redis.call('HGET', KEYS[1], 'out')
if out then
  if out == '1|' .. ARGV[5] then return 'emit' end
  return 'dup'
end
if redis.call('HEXISTS', KEYS[1], 'imp') == 1 then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  return 'dup'
end
redis.call('HSET', KEYS[1], 'imp', ARGV[1], 't', ARGV[2])
redis.call('PERSIST', KEYS[1])
local clk = redis.call('HGET', KEYS[1], 'clk')
if clk and tonumber(clk) <= tonumber(ARGV[2]) + tonumber(ARGV[6]) then
  redis.call('HSET', KEYS[1], 'out', '1|' .. ARGV[5])
  return 'emit'
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 'pending'
`;

export const CLICK_LUA = `
local out = redis.call('HGET', KEYS[1], 'out')
if out then
  if out == '1|' .. ARGV[2] then return {'emit', redis.call('HGET', KEYS[1], 'imp')} end
  if out == '0' or string.sub(out, 1, 2) == '0|' then return {'late'} end
  return {'dup'}
end
local t = redis.call('HGET', KEYS[1], 't')
if not t then
  local clk = redis.call('HGET', KEYS[1], 'clk')
  if (not clk) or tonumber(ARGV[1]) < tonumber(clk) then redis.call('HSET', KEYS[1], 'clk', ARGV[1]) end
  if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
  return {'early'}
end
if tonumber(ARGV[1]) > tonumber(t) + tonumber(ARGV[4]) then return {'outside'} end
redis.call('HSET', KEYS[1], 'out', '1|' .. ARGV[2])
return {'emit', redis.call('HGET', KEYS[1], 'imp')}
`;

// Returns a flat list id1, v1, id2, v2, ... of the due entries: v is the impression (claimed here for
// label 0), false (nil) when the hash expired by TTL (removed from the set here), or 1 when another
// message claimed it or a committed sweep did (left in the set, to be removed with its TTL armed once
// this chunk is committed).
// ARGV: watermark, limit, hash prefix, first offset of the sweeping chunk, its last offset (the
// claim), how many due entries to skip (those this chunk already claimed in an earlier round).
export const SWEEP_LUA = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', tonumber(ARGV[6]), tonumber(ARGV[2]))
local res = {}
for _, id in ipairs(ids) do
  local k = ARGV[3] .. '{' .. id .. '}'
  local out = redis.call('HGET', k, 'out')
  local open = (not out) or out == '0' or (string.sub(out, 1, 2) == '0|' and tonumber(string.sub(out, 3)) >= tonumber(ARGV[4]))
  if open then
    local imp = redis.call('HGET', k, 'imp')
    res[#res + 1] = id
    if imp then
      redis.call('HSET', k, 'out', '0|' .. ARGV[5])
      res[#res + 1] = imp
    else
      redis.call('ZREM', KEYS[1], id)
      res[#res + 1] = false
    end
  else
    res[#res + 1] = id
    res[#res + 1] = 1
  end
end
return res
`;

// Arms the TTL of a hash whose impression is committed, unless it has one (an early click's).
export const ARM_LUA = `
if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 0
`;

/** The pipeline methods `installJoinScripts` adds (ioredis defineCommand: EVALSHA with EVAL fallback). */
export interface JoinCommands {
  thawJoinImpression(hashKey: string, zsetKey: string, imp: Buffer, timeMs: number, deadline: number, id: string, src: string, windowMs: number): unknown;
  thawJoinArm(hashKey: string, ttlMs: number): unknown;
  thawJoinClickBuffer(hashKey: string, clickMs: number, src: string, ttlMs: number, windowMs: number): unknown;
  thawJoinSweepBuffer(zsetKey: string, watermark: number, limit: number, hashPrefix: string, firstOffset: number, lastOffset: number, skip: number): unknown;
}

/** Defines the join's commands on `redis` (idempotent) and returns a typed pipeline factory. */
export function installJoinScripts(redis: Redis): () => ChainableCommander & JoinCommands {
  const r = redis as Redis & Partial<JoinCommands>;
  if (typeof r.thawJoinImpression !== 'function') {
    redis.defineCommand('thawJoinImpression', { numberOfKeys: 2, lua: IMPRESSION_LUA });
    redis.defineCommand('thawJoinClick', { numberOfKeys: 1, lua: CLICK_LUA });
    redis.defineCommand('thawJoinSweep', { numberOfKeys: 1, lua: SWEEP_LUA });
    redis.defineCommand('thawJoinArm', { numberOfKeys: 1, lua: ARM_LUA });
  }
  return () => redis.pipeline() as ChainableCommander & JoinCommands;
}
