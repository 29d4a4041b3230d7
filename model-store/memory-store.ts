/**
 * An in-process EntityStore with the same CAS semantics as Redis, for the zero-setup demo and
 * tests, plus crash-safe snapshots (write a temp file, fsync, rename).
 *
 * Snapshot format (little-endian): magic `THSN`, u8 version 1, u32 record count, then per record
 * u16 namespace length + UTF-8, u8 side (0 user, 1 item), u16 adapter length + UTF-8,
 * u32 entity id length + UTF-8, u32 state length + state (state-codec.ts).
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { StoreRegressedError, ThawError } from '../lib/errors.js';
import { fsyncDir } from './durable-fs.js';
import { cloneState, decodeState, encodeState } from './state-codec.js';
import { isStaleWrite } from './origin.js';
import type { EntityState, EntityStore, ProgressWrite, ScopedRead, ScopedWrite, StateScope } from './types.js';

const MAGIC = 'THSN';
const SNAPSHOT_VERSION = 1;
/** Flush the write buffer to the file at about this size, so snapshots of any size stream out. */
const FLUSH_BYTES = 4 << 20;

function scopeId(scope: StateScope): string {
  return `${scope.namespace}\u0000${scope.side}\u0000${scope.adapter}`;
}

export class MemoryEntityStore implements EntityStore {
  private readonly scopes = new Map<string, { scope: StateScope; states: Map<string, EntityState> }>();
  /** Partition progress by scope id, then `topic:partition` (not part of snapshots). */
  private readonly progress = new Map<string, Map<string, number>>();

  /** Number of stored states over all scopes. */
  get size(): number {
    let n = 0;
    for (const s of this.scopes.values()) n += s.states.size;
    return n;
  }

  async getMany(scope: StateScope, entityIds: readonly string[]): Promise<(EntityState | undefined)[]> {
    return Promise.resolve(this.read(scope, entityIds));
  }

  async putMany(scope: StateScope, entries: readonly { entityId: string; state: EntityState }[]): Promise<{ written: number; skipped: number }> {
    return Promise.resolve(this.apply(scope, entries));
  }

  async getManyScoped(reads: readonly ScopedRead[]): Promise<(EntityState | undefined)[][]> {
    return Promise.resolve(reads.map((r) => this.read(r.scope, r.entityIds)));
  }

  /** Every group (and the progress) in one synchronous step: atomic, as Redis' single script is. */
  async putManyScoped(writes: readonly ScopedWrite[], progress?: ProgressWrite): Promise<{ written: number; skipped: number }[]> {
    if (progress?.expectAtLeast !== undefined) {
      const stored = this.progress.get(scopeId(progress.scope))?.get(`${progress.topic}:${progress.partition}`);
      if (stored === undefined || stored < progress.expectAtLeast) throw new StoreRegressedError(progress.topic, progress.partition, stored, progress.expectAtLeast);
    }
    const out = writes.map((w) => this.apply(w.scope, w.entries));
    if (progress !== undefined) {
      const id = scopeId(progress.scope);
      let fields = this.progress.get(id);
      if (fields === undefined) {
        fields = new Map();
        this.progress.set(id, fields);
      }
      const field = `${progress.topic}:${progress.partition}`;
      fields.set(field, Math.max(fields.get(field) ?? -1, progress.offset));
    }
    return Promise.resolve(out);
  }

  async getProgress(scope: StateScope, topic: string, partition: number): Promise<number | undefined> {
    return Promise.resolve(this.progress.get(scopeId(scope))?.get(`${topic}:${partition}`));
  }

  /** Copies, as a remote store would return: callers adapt params in place. */
  private read(scope: StateScope, entityIds: readonly string[]): (EntityState | undefined)[] {
    const states = this.scopes.get(scopeId(scope))?.states;
    return entityIds.map((id) => {
      const s = states?.get(id);
      return s === undefined ? undefined : cloneState(s);
    });
  }

  /** The CAS write, synchronous (shared by putMany and loadSnapshot). */
  private apply(scope: StateScope, entries: readonly { entityId: string; state: EntityState }[]): { written: number; skipped: number } {
    const id = scopeId(scope);
    let bucket = this.scopes.get(id);
    if (bucket === undefined) {
      bucket = { scope: { namespace: scope.namespace, side: scope.side, adapter: scope.adapter }, states: new Map() };
      this.scopes.set(id, bucket);
    }
    let written = 0;
    let skipped = 0;
    for (const { entityId, state } of entries) {
      const cur = bucket.states.get(entityId);
      if (isStaleWrite(cur, state)) {
        skipped++;
      } else {
        bucket.states.set(entityId, cloneState(state));
        written++;
      }
    }
    return { written, skipped };
  }

  async close(): Promise<void> {
    return Promise.resolve();
  }

  /** Every stored state with its scope (no copies: do not modify). */
  *entries(): IterableIterator<{ scope: StateScope; entityId: string; state: EntityState }> {
    for (const { scope, states } of this.scopes.values()) {
      for (const [entityId, state] of states) yield { scope, entityId, state };
    }
  }

  /**
   * Writes every state (of the scopes `keep` accepts) to `path` atomically: readers see the old
   * snapshot or the new one, never half.
   */
  async saveSnapshot(path: string, keep: (scope: StateScope) => boolean = () => true): Promise<void> {
    const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    const fh = await open(tmp, 'w');
    try {
      let parts: Buffer[] = [];
      let pending = 0;
      const push = (b: Buffer): void => {
        parts.push(b);
        pending += b.length;
      };
      const flush = async (): Promise<void> => {
        if (pending === 0) return;
        await fh.write(Buffer.concat(parts, pending));
        parts = [];
        pending = 0;
      };
      const head = Buffer.alloc(9);
      head.write(MAGIC, 0, 'latin1');
      head.writeUInt8(SNAPSHOT_VERSION, 4);
      const kept = [...this.scopes.values()].filter((s) => keep(s.scope));
      head.writeUInt32LE(
        kept.reduce((n, s) => n + s.states.size, 0),
        5,
      );
      push(head);
      for (const { scope, states } of kept) {
        const ns = Buffer.from(scope.namespace, 'utf8');
        const ad = Buffer.from(scope.adapter, 'utf8');
        const scopeHead = Buffer.alloc(2 + ns.length + 1 + 2 + ad.length);
        let o = scopeHead.writeUInt16LE(ns.length, 0);
        o += ns.copy(scopeHead, o);
        o = scopeHead.writeUInt8(scope.side === 'user' ? 0 : 1, o);
        o = scopeHead.writeUInt16LE(ad.length, o);
        ad.copy(scopeHead, o);
        for (const [entityId, state] of states) {
          const idBuf = Buffer.from(entityId, 'utf8');
          const st = encodeState(state);
          const lens = Buffer.allocUnsafe(4);
          lens.writeUInt32LE(idBuf.length, 0);
          const stLen = Buffer.allocUnsafe(4);
          stLen.writeUInt32LE(st.length, 0);
          push(scopeHead);
          push(lens);
          push(idBuf);
          push(stLen);
          push(st);
          if (pending >= FLUSH_BYTES) await flush();
        }
      }
      await flush();
      await fh.sync();
    } catch (err) {
      await fh.close();
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await fh.close();
    await rename(tmp, path);
    await fsyncDir(dirname(path));
  }

  /** Loads a snapshot written by saveSnapshot; throws ThawError STATE_CORRUPT on a damaged file. */
  static async loadSnapshot(path: string): Promise<MemoryEntityStore> {
    const buf = await readFile(path);
    const corrupt = (what: string): ThawError => new ThawError('STATE_CORRUPT', `snapshot ${path} is corrupt: ${what}`);
    if (buf.length < 9 || buf.toString('latin1', 0, 4) !== MAGIC) throw corrupt('bad magic');
    const version = buf.readUInt8(4);
    if (version !== SNAPSHOT_VERSION) throw corrupt(`unknown version ${version}`);
    const count = buf.readUInt32LE(5);
    const store = new MemoryEntityStore();
    let o = 9;
    const need = (n: number): void => {
      if (o + n > buf.length) throw corrupt(`truncated at byte ${o}`);
    };
    for (let r = 0; r < count; r++) {
      need(2);
      const nsLen = buf.readUInt16LE(o);
      o += 2;
      need(nsLen + 3);
      const namespace = buf.toString('utf8', o, o + nsLen);
      o += nsLen;
      const sideByte = buf.readUInt8(o);
      o += 1;
      if (sideByte > 1) throw corrupt(`side byte ${sideByte}`);
      const adLen = buf.readUInt16LE(o);
      o += 2;
      need(adLen + 4);
      const adapter = buf.toString('utf8', o, o + adLen);
      o += adLen;
      const idLen = buf.readUInt32LE(o);
      o += 4;
      need(idLen + 4);
      const entityId = buf.toString('utf8', o, o + idLen);
      o += idLen;
      const stLen = buf.readUInt32LE(o);
      o += 4;
      need(stLen);
      let state: EntityState;
      try {
        state = decodeState(buf.subarray(o, o + stLen));
      } catch (err) {
        throw new ThawError('STATE_CORRUPT', `snapshot ${path} is corrupt: record ${r}: ${(err as Error).message}`, { cause: err });
      }
      o += stLen;
      store.apply({ namespace, side: sideByte === 0 ? 'user' : 'item', adapter }, [{ entityId, state }]);
    }
    if (o !== buf.length) throw corrupt(`${buf.length - o} trailing bytes`);
    return store;
  }
}
