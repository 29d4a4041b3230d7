/** The entity states the serving bench reads: written once before a run, re-written during it (the workers' updates), and Redis's own CPU. */
import type { Redis } from 'ioredis';
import { entityKey } from '../../model-store/keys.js';
import { encodeState } from '../../model-store/state-codec.js';
import { fmStateSize } from '../../models/fm-entity.js';
import type { ServingRelease } from '../../serving/release.js';
import { rng, zipfSampler, type Workload } from './workload.js';

/** Redis's CPU so far (user + system), seconds. */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const get = (k: string): number => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return get('used_cpu_user') + get('used_cpu_sys');
}

/** Writes the states of every user and item (MSET chunks), count 1..200. */
export async function writeStates(redis: Redis, release: ServingRelease, w: Workload, k: number): Promise<void> {
  const rand = rng(w.seed + 1);
  const size = fmStateSize(k);
  const chunk: (string | Buffer)[] = [];
  const flush = async (): Promise<void> => {
    if (chunk.length > 0) await redis.mset(...chunk);
    chunk.length = 0;
  };
  const put = async (key: string): Promise<void> => {
    const params = new Float32Array(size);
    for (let i = 0; i < size; i++) params[i] = (rand() - 0.5) * 0.2;
    chunk.push(key, encodeState({ count: 1 + Math.floor(rand() * 200), lastOffset: 1, lastEventMs: Date.now(), params }));
    if (chunk.length >= 4000) await flush();
  };
  for (let u = 0; u < w.users; u++) await put(entityKey(release.userPrefix, `u${u}`));
  for (let i = 0; i < w.items; i++) await put(entityKey(release.itemPrefix, `i${i}`));
  await flush();
}

/** Re-writes `perSec` states/s of Zipf-drawn entities until stopped (the workers' updates). */
export function startWriter(redis: Redis, release: ServingRelease, w: Workload, k: number, perSec: number): () => Promise<void> {
  if (perSec <= 0) return () => Promise.resolve();
  const rand = rng(w.seed + 2);
  const user = zipfSampler(w.users, w.zipf, rand);
  const item = zipfSampler(w.items, w.zipf, rand);
  const size = fmStateSize(k);
  const perTick = Math.max(1, Math.round(perSec / 20));
  let writing: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    const args: (string | Buffer)[] = [];
    for (let n = 0; n < perTick; n++) {
      const params = new Float32Array(size).map(() => (rand() - 0.5) * 0.2);
      const key = rand() < 0.3 ? entityKey(release.userPrefix, `u${user()}`) : entityKey(release.itemPrefix, `i${item()}`);
      args.push(key, encodeState({ count: 1 + Math.floor(rand() * 200), lastOffset: 2, lastEventMs: Date.now(), params }));
    }
    writing = redis.mset(...args).catch(() => undefined);
  }, 50);
  return async () => {
    clearInterval(timer);
    await writing;
  };
}
