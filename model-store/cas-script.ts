/**
 * The compare-and-set script behind RedisEntityStore.putMany: one EVALSHA writes a whole batch.
 *
 * Design: the value itself carries lastOffset as an f64 at a fixed position (see state-codec.ts),
 * and Redis' bundled Lua `struct` library decodes it (`struct.unpack('<d', v, 9)`): no second
 * key or hash field to keep in sync, one GET + one SET per entity inside one atomic script.
 * Entries are applied in order, so a batch that names an entity twice keeps the newest offset.
 * A stored value that is not a state of a known format is overwritten (the writer's state wins).
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
