/**
 * The compare-and-set script behind RedisEntityStore.putMany: one EVALSHA writes a whole batch.
 *
 * Design: the value itself carries lastOffset as an f64 at a fixed position (see state-codec.ts),
 * and Redis' bundled Lua `struct` library decodes it (`struct.unpack('<d', v, 9)`): no second
 * key or hash field to keep in sync, one GET + one SET per entity inside one atomic script.
 * Entries are applied in order, so a batch that names an entity twice keeps the newest offset.
 * A stored value that is not a state of a known format is overwritten (the writer's state wins).
 *
 * BOUNDED_CAS_SCRIPT (used only when RedisEntityStore has `maxEntities` > 0) is the same CAS plus
 * a least-recently-seen index, still in the same single EVALSHA: every written entity is ZADDed to
 * a per-scope sorted set, members whose state has outlived the TTL are trimmed, and while the set
 * holds more than the cap, the oldest members and their state keys are deleted.
 */
import { createHash } from 'node:crypto';
import { STATE_FORMAT_VERSION, STATE_HEADER_BYTES, STATE_OFFSET_POS } from './state-codec.js';

export const CAS_SCRIPT = `
-- KEYS[i]: state keys. ARGV[1]: TTL in seconds (0 = none). ARGV[i + 1]: encoded state for KEYS[i].
local ttl = tonumber(ARGV[1])
local written, skipped = 0, 0
for i = 1, #KEYS do
  local new = ARGV[i + 1]
  local newOffset = struct.unpack('<d', new, ${STATE_OFFSET_POS + 1})
  local cur = redis.call('GET', KEYS[i])
  local stale = false
  if cur and string.len(cur) >= ${STATE_HEADER_BYTES} and string.byte(cur, 1) == ${STATE_FORMAT_VERSION} then
    stale = struct.unpack('<d', cur, ${STATE_OFFSET_POS + 1}) >= newOffset
  end
  if stale then
    skipped = skipped + 1
  else
    if ttl > 0 then redis.call('SET', KEYS[i], new, 'EX', ttl) else redis.call('SET', KEYS[i], new) end
    written = written + 1
  end
end
return { written, skipped }
`;

export const CAS_SCRIPT_SHA = createHash('sha1').update(CAS_SCRIPT).digest('hex');

/**
 * Scores are "last seen" times in microseconds of the Redis clock (TIME), made strictly increasing
 * per scope: a batch starts at max(now, newest score + 1) and each written entry takes the next
 * microsecond, so entries of one batch rank in batch order and a later batch always ranks after an
 * earlier one, even within the same microsecond or after a clock step back. Scores run ahead of the
 * wall clock by at most the entries written per second (µs), so the TTL trim (score older than
 * now − ttl) never drops a member whose state is still alive.
 * Members are the escaped entity ids (the text between the key's braces): the state key is
 * ARGV[n + 3] .. '{' .. member .. '}'. Numbers are formatted with '%.0f': Lua's default
 * tostring keeps 14 digits, too few for microsecond timestamps (~1.7e15 < 2^53, exact as doubles).
 */
export const BOUNDED_CAS_SCRIPT = `
-- KEYS[1..n]: state keys; KEYS[n + 1]: the scope's last-seen index (sorted set).
-- ARGV[1]: TTL in seconds (0 = none); ARGV[i + 1]: encoded state for KEYS[i];
-- ARGV[n + 2]: the cap (max entities in the index); ARGV[n + 3]: the scope's key head (before '{').
local n = #KEYS - 1
local idx = KEYS[n + 1]
local ttl = tonumber(ARGV[1])
local cap = tonumber(ARGV[n + 2])
local head = ARGV[n + 3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local clock = now
local newest = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')[2]
if newest and tonumber(newest) >= clock then clock = tonumber(newest) + 1 end
local written, skipped = 0, 0
for i = 1, n do
  local new = ARGV[i + 1]
  local newOffset = struct.unpack('<d', new, ${STATE_OFFSET_POS + 1})
  local cur = redis.call('GET', KEYS[i])
  local stale = false
  if cur and string.len(cur) >= ${STATE_HEADER_BYTES} and string.byte(cur, 1) == ${STATE_FORMAT_VERSION} then
    stale = struct.unpack('<d', cur, ${STATE_OFFSET_POS + 1}) >= newOffset
  end
  if stale then
    skipped = skipped + 1
  else
    if ttl > 0 then redis.call('SET', KEYS[i], new, 'EX', ttl) else redis.call('SET', KEYS[i], new) end
    redis.call('ZADD', idx, string.format('%.0f', clock), string.sub(KEYS[i], #head + 2, -2))
    clock = clock + 1
    written = written + 1
  end
end
if ttl > 0 then
  -- States not written for ttl seconds have expired: forget them in the index too.
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', '(' .. string.format('%.0f', now - ttl * 1000000))
end
local evicted = 0
local excess = redis.call('ZCARD', idx) - cap
if excess > 0 then
  local old = redis.call('ZRANGE', idx, 0, excess - 1)
  for j = 1, #old do redis.call('DEL', head .. '{' .. old[j] .. '}') end
  redis.call('ZREMRANGEBYRANK', idx, 0, excess - 1)
  evicted = #old
end
-- The index lives as long as its newest member's state; an idle scope leaves nothing behind.
if ttl > 0 and written > 0 then redis.call('EXPIRE', idx, ttl) end
return { written, skipped, evicted }
`;

export const BOUNDED_CAS_SCRIPT_SHA = createHash('sha1').update(BOUNDED_CAS_SCRIPT).digest('hex');
