/**
 * The compare-and-set script behind RedisEntityStore.putMany / putManyScoped: one EVALSHA writes a
 * whole batch, of one scope or of several (an entity scope and the worker's safeguard scope), atomically.
 *
 * Design: the value itself carries lastOffset as an f64 at a fixed position (see state-codec.ts),
 * and Redis' bundled Lua `struct` library decodes it (`struct.unpack('<d', v, 9)`): no second
 * key or hash field to keep in sync, one GET + one SET per entity inside one atomic script.
 * Entries are applied in order, so a batch that names an entity twice keeps the newest offset.
 * A stored value that is not a state of a known format is overwritten (the writer's state wins).
 * Two format-2 states of different origins (model-store/origin.ts) never refuse each other: the
 * stored offset counts another partition's messages, so the write replaces it.
 *
 * PROGRESS (optional trailer): when two ARGV follow the states, they are a field and an offset, and
 * the last key is the scope's progress hash; the field is set to max(stored, offset) in the same
 * atomic call, so a partition's progress never runs ahead of the states written with it
 * (consumers/progress.ts), and its TTL follows the states'. A third trailer ARGV is the progress the
 * writer expects at least (what it wrote last): when the stored one is below it or gone, Redis lost
 * acknowledged writes, and the script replies with the error `THAW_STORE_REGRESSED <stored|none>`
 * before writing anything (a script's writes are not rolled back by a later error, so the check
 * comes first).
 *
 * A group may be BOUNDED (RedisEntityStore `maxEntities` > 0): every written entity is ZADDed to the
 * scope's least-recently-seen index (a sorted set), members whose state has outlived the TTL are
 * trimmed, and while the set holds more than the cap, the oldest members and their state keys are
 * deleted, still inside the same EVALSHA.
 *
 * Index scores are "last seen" times in microseconds of the Redis clock (TIME), made strictly
 * increasing per scope: a batch starts at max(now, newest score + 1) and each written entry takes
 * the next microsecond, so entries of one batch rank in batch order and a later batch always ranks
 * after an earlier one, even within the same microsecond or after a clock step back. Scores run
 * ahead of the wall clock by at most the entries written per second (µs), so the TTL trim (score
 * older than now − ttl) never drops a member whose state is still alive. Members are the escaped
 * entity ids (the text between the key's braces): the state key is head .. '{' .. member .. '}'.
 * Numbers are formatted with '%.0f': Lua's default tostring keeps 14 digits, too few for
 * microsecond timestamps (~1.7e15 < 2^53, exact as doubles).
 */
import { createHash } from 'node:crypto';
import { ThawError } from '../lib/errors.js';
import { STATE_FORMAT_V1, STATE_FORMAT_V2, STATE_HEADER_BYTES, STATE_OFFSET_POS, STATE_ORIGIN_POS } from './state-codec.js';

export const CAS_SCRIPT = `
-- ARGV[1]: TTL in seconds (0 = none); ARGV[2]: number of groups G; ARGV[3]: the cap of bounded groups.
-- ARGV[4 .. 3 + 3G]: per group, its number of state keys n, 1 if bounded else 0, its key head (before '{').
-- Then the encoded states, in key order. KEYS: per group, its n state keys, then its index if bounded.
-- Optional trailer: ARGV progress field and offset after the states, KEYS: the progress hash last.
-- Returns, per group, { written, skipped, evicted }.
-- Optional third trailer ARGV: the progress expected at least; refused, nothing written, if behind.
local ttl = tonumber(ARGV[1])
local groups = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local now = nil
local value = 4 + 3 * groups
local key = 1
local out = {}
local states = 0
for g = 1, groups do states = states + tonumber(ARGV[1 + 3 * g]) end
if value + states + 2 <= #ARGV then
  local stored = tonumber(redis.call('HGET', KEYS[#KEYS], ARGV[value + states]))
  if stored == nil or stored < tonumber(ARGV[value + states + 2]) then
    return redis.error_reply('THAW_STORE_REGRESSED ' .. (stored and string.format('%.0f', stored) or 'none'))
  end
end
for g = 1, groups do
  local n = tonumber(ARGV[1 + 3 * g])
  local bounded = ARGV[2 + 3 * g] == '1'
  local head = ARGV[3 + 3 * g]
  local idx = nil
  local clock = 0
  if bounded then
    idx = KEYS[key + n]
    if now == nil then
      local t = redis.call('TIME')
      now = tonumber(t[1]) * 1000000 + tonumber(t[2])
    end
    clock = now
    local newest = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')[2]
    if newest and tonumber(newest) >= clock then clock = tonumber(newest) + 1 end
  end
  local written, skipped, evicted = 0, 0, 0
  for i = 0, n - 1 do
    local k = KEYS[key + i]
    local new = ARGV[value + i]
    local newOffset = struct.unpack('<d', new, ${STATE_OFFSET_POS + 1})
    local cur = redis.call('GET', k)
    local stale = false
    local format = cur and string.len(cur) >= ${STATE_HEADER_BYTES} and string.byte(cur, 1)
    if format == ${STATE_FORMAT_V1} or format == ${STATE_FORMAT_V2} then
      stale = struct.unpack('<d', cur, ${STATE_OFFSET_POS + 1}) >= newOffset
      if stale and format == ${STATE_FORMAT_V2} and string.byte(new, 1) == ${STATE_FORMAT_V2}
        and string.sub(cur, ${STATE_ORIGIN_POS + 1}, ${STATE_ORIGIN_POS + 8}) ~= string.sub(new, ${STATE_ORIGIN_POS + 1}, ${STATE_ORIGIN_POS + 8}) then
        stale = false
      end
    end
    if stale then
      skipped = skipped + 1
    else
      if ttl > 0 then redis.call('SET', k, new, 'EX', ttl) else redis.call('SET', k, new) end
      if bounded then
        redis.call('ZADD', idx, string.format('%.0f', clock), string.sub(k, #head + 2, -2))
        clock = clock + 1
      end
      written = written + 1
    end
  end
  if bounded then
    if ttl > 0 then
      -- States not written for ttl seconds have expired: forget them in the index too.
      redis.call('ZREMRANGEBYSCORE', idx, '-inf', '(' .. string.format('%.0f', now - ttl * 1000000))
    end
    local excess = redis.call('ZCARD', idx) - cap
    if excess > 0 then
      local old = redis.call('ZRANGE', idx, 0, excess - 1)
      for j = 1, #old do redis.call('DEL', head .. '{' .. old[j] .. '}') end
      redis.call('ZREMRANGEBYRANK', idx, 0, excess - 1)
      evicted = #old
    end
    -- The index lives as long as its newest member's state; an idle scope leaves nothing behind.
    if ttl > 0 and written > 0 then redis.call('EXPIRE', idx, ttl) end
  end
  out[#out + 1] = written
  out[#out + 1] = skipped
  out[#out + 1] = evicted
  value = value + n
  key = key + n + (bounded and 1 or 0)
end
if value < #ARGV then
  local field = ARGV[value]
  local offset = tonumber(ARGV[value + 1])
  local stored = tonumber(redis.call('HGET', KEYS[key], field))
  if stored == nil or stored < offset then redis.call('HSET', KEYS[key], field, ARGV[value + 1]) end
  if ttl > 0 then redis.call('EXPIRE', KEYS[key], ttl) end
end
return out
`;

export const CAS_SCRIPT_SHA = createHash('sha1').update(CAS_SCRIPT).digest('hex');

/**
 * The same script for a Redis Cluster node (model-store/redis-cluster.ts): called with ONE declared
 * key, the anchor that routes the call to the node, and ARGV = [n, key1 .. keyn, the arguments of
 * CAS_SCRIPT]. Redis 7.0 refuses declared keys of several slots even with the
 * `allow-cross-slot-keys` flag, which only lets the script reach undeclared keys of other slots the
 * node owns; the prelude rebuilds KEYS and ARGV from the arguments, the body is CAS_SCRIPT's.
 */
export const CLUSTER_CAS_SCRIPT = `#!lua flags=allow-cross-slot-keys
local keyCount = tonumber(ARGV[1])
local passedKeys, passedArgs = {}, {}
for i = 1, keyCount do passedKeys[i] = ARGV[1 + i] end
for i = keyCount + 2, #ARGV do passedArgs[#passedArgs + 1] = ARGV[i] end
local KEYS, ARGV = passedKeys, passedArgs
${CAS_SCRIPT}`;

export const CLUSTER_CAS_SCRIPT_SHA = createHash('sha1').update(CLUSTER_CAS_SCRIPT).digest('hex');

/** One group of a CAS call: the state keys of one scope (prefix `head`), their encoded states, and
 * the scope's last-seen index key when the group is bounded. */
export interface CasGroup {
  head: string;
  keys: string[];
  values: Buffer[];
  index?: string;
}

/**
 * The progress trailer of a CAS call: `field` of the hash `key` raised to `offset`; with
 * `expectAtLeast`, the call is refused before any write when the stored value is below it or gone.
 */
export interface CasProgress {
  key: string;
  field: string;
  offset: number;
  expectAtLeast?: number;
}

/** KEYS and ARGV of one CAS_SCRIPT call (the layout its header comment describes). */
export function casCall(groups: readonly CasGroup[], ttlSeconds: number, cap: number, progress?: CasProgress): { keys: string[]; args: (Buffer | string | number)[] } {
  const keys: string[] = [];
  const heads: (string | number)[] = [];
  const values: Buffer[] = [];
  for (const g of groups) {
    keys.push(...g.keys);
    values.push(...g.values);
    if (g.index !== undefined) keys.push(g.index);
    heads.push(g.keys.length, g.index === undefined ? 0 : 1, g.head);
  }
  const trailer: string[] = [];
  if (progress !== undefined) {
    keys.push(progress.key);
    trailer.push(progress.field, String(progress.offset));
    if (progress.expectAtLeast !== undefined) trailer.push(String(progress.expectAtLeast));
  }
  return { keys, args: [ttlSeconds, groups.length, cap, ...heads, ...values, ...trailer] };
}

/** The script's reply, checked: per group, [written, skipped, evicted]. */
export function casCounts(reply: unknown, groups: number): [number, number, number][] {
  if (!Array.isArray(reply) || reply.length !== 3 * groups || !reply.every((x) => typeof x === 'number')) {
    throw new ThawError('REDIS_ERROR', `unexpected reply from the CAS script: ${JSON.stringify(reply)}`);
  }
  const counts = reply;
  const out: [number, number, number][] = [];
  for (let g = 0; g < groups; g++) out.push([counts[3 * g] ?? 0, counts[3 * g + 1] ?? 0, counts[3 * g + 2] ?? 0]);
  return out;
}
