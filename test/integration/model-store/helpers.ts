/** Shared set-up for model-store integration tests: a client on the real Redis and per-test key prefixes. */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createRedis } from '../../../model-store/redis.js';

export const REDIS_URL = process.env.THAW_REDIS_URL ?? 'redis://127.0.0.1:16379';

export function openRedis(): Redis {
  return createRedis({ url: REDIS_URL });
}

/** A key prefix no other test uses. */
export function uniquePrefix(): string {
  return `test-${randomUUID()}`;
}

/** Deletes every key under a prefix (SCAN + UNLINK in batches). */
export async function dropPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
}

export async function keysUnder(redis: Redis, pattern: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return out.sort();
}
