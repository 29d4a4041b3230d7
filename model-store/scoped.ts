/**
 * Multi-scope reads and writes over any EntityStore: one round trip (and, for writes, one atomic
 * call) where the store offers `getManyScoped` / `putManyScoped`, else the single-scope calls
 * (reads in parallel, writes in order). The worker's BatchProcessor goes through these.
 */
import type { EntityState, EntityStore, ProgressWrite, ScopedRead, ScopedWrite } from './types.js';

/** States of every read, same order as `reads` and as each read's ids. */
export async function getScoped(store: EntityStore, reads: readonly ScopedRead[]): Promise<(EntityState | undefined)[][]> {
  const nonEmpty = reads.filter((r) => r.entityIds.length > 0);
  if (nonEmpty.length === 0) return reads.map(() => []);
  const results = store.getManyScoped !== undefined ? await store.getManyScoped(nonEmpty) : await Promise.all(nonEmpty.map((r) => store.getMany(r.scope, r.entityIds)));
  let at = 0;
  return reads.map((r) => (r.entityIds.length === 0 ? [] : (results[at++] ?? [])));
}

/**
 * Writes every group (CAS on lastOffset per entry); totals over the groups. `progress` is written in
 * the same atomic call where the store offers `putManyScoped` (also with no entries), and dropped
 * by a store without it (such a store keeps no progress: `getProgress` is absent too).
 */
export async function putScoped(store: EntityStore, writes: readonly ScopedWrite[], progress?: ProgressWrite): Promise<{ written: number; skipped: number }> {
  const nonEmpty = writes.filter((w) => w.entries.length > 0);
  let written = 0;
  let skipped = 0;
  const withProgress = progress !== undefined && store.putManyScoped !== undefined;
  if (nonEmpty.length === 0 && !withProgress) return { written, skipped };
  if (store.putManyScoped !== undefined && (nonEmpty.length > 1 || withProgress)) {
    for (const r of await store.putManyScoped(nonEmpty, progress)) {
      written += r.written;
      skipped += r.skipped;
    }
    return { written, skipped };
  }
  for (const r of await putEach(store, nonEmpty)) {
    written += r.written;
    skipped += r.skipped;
  }
  return { written, skipped };
}

/** `putMany` of each group in turn (not atomic across groups); per-group results. */
export async function putEach(store: EntityStore, writes: readonly ScopedWrite[]): Promise<{ written: number; skipped: number }[]> {
  const out: { written: number; skipped: number }[] = [];
  for (const w of writes) out.push(w.entries.length === 0 ? { written: 0, skipped: 0 } : await store.putMany(w.scope, w.entries));
  return out;
}
