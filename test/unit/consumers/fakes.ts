/**
 * Small in-test stand-ins for the processor's collaborators: an order-sensitive adapter that
 * enforces the one-entity-per-batch contract, a store that hands out its own objects (like a cache
 * tier would, so a processor that mutates loaded states in place is caught) and a recording sink.
 */
import type { Adapter, AdapterBatch } from '../../../adapters/types.js';
import type { PredictionRow, PredictionSink } from '../../../analytics/types.js';
import type { EntityState, EntityStore, ScopedWrite, StateScope } from '../../../model-store/types.js';
import { entityIdOf, type LabelledEvent, type Side } from '../../../schemas/types.js';

/**
 * state = [bias, weight of the event's first item-feature token hash parity, seen]. The score
 * depends on everything applied before, so any reordering changes scores and states.
 */
export class ToyAdapter implements Adapter {
  readonly name: string;
  readonly stateSize = 3;
  readonly viewSize = 0;
  readonly hasBaseline = false;
  readonly release = 'toy-1';
  predictCalls = 0;
  constructor(
    readonly side: Side,
    name = 'toy',
  ) {
    this.name = name;
  }
  initialState(event: LabelledEvent): Float32Array {
    return Float32Array.of(event.label === 1 ? 0.1 : -0.1, 0, 0);
  }
  private feature(e: LabelledEvent): number {
    return e.eventId.length % 2 === 0 ? 1 : -1;
  }
  predict(batch: AdapterBatch): Float32Array {
    const out = new Float32Array(batch.events.length);
    batch.events.forEach((e, i) => {
      const s = batch.states[i] as Float32Array;
      out[i] = 1 / (1 + Math.exp(-((s[0] as number) + (s[1] as number) * this.feature(e) + 0.01 * (s[2] as number))));
    });
    return out;
  }
  predictThenAdapt(batch: AdapterBatch): Float32Array {
    this.predictCalls++;
    const seen = new Set<string>();
    for (const e of batch.events) {
      const id = entityIdOf(e, this.side);
      if (seen.has(id)) throw new Error(`entity ${id} twice in one adapter batch`);
      seen.add(id);
    }
    const scores = this.predict(batch);
    batch.events.forEach((e, i) => {
      const s = batch.states[i] as Float32Array;
      const g = e.label - (scores[i] as number);
      s[0] = (s[0] as number) + 0.3 * g;
      s[1] = (s[1] as number) + 0.2 * g * this.feature(e);
      s[2] = (s[2] as number) + 1;
    });
    return scores;
  }
}

/** A store keeping the very objects it was given and handing them out again. */
export class SharingStore implements EntityStore {
  readonly data = new Map<string, EntityState>();
  gets = 0;
  puts = 0;
  failGets = false;
  private key(scope: StateScope, id: string): string {
    return `${scope.namespace}:${scope.side}:${scope.adapter}:${id}`;
  }
  getMany(scope: StateScope, ids: readonly string[]): Promise<(EntityState | undefined)[]> {
    this.gets++;
    if (this.failGets) return Promise.reject(new Error('store down'));
    return Promise.resolve(ids.map((id) => this.data.get(this.key(scope, id))));
  }
  putMany(scope: StateScope, entries: readonly { entityId: string; state: EntityState }[]): Promise<{ written: number; skipped: number }> {
    this.puts++;
    let written = 0;
    let skipped = 0;
    for (const { entityId, state } of entries) {
      const k = this.key(scope, entityId);
      const prev = this.data.get(k);
      if (prev !== undefined && prev.lastOffset >= state.lastOffset) skipped++;
      else {
        this.data.set(k, state);
        written++;
      }
    }
    return Promise.resolve({ written, skipped });
  }
  /** Every group in one synchronous step, as the real stores' atomic call (progress is not kept). */
  putManyScoped(writes: readonly ScopedWrite[]): Promise<{ written: number; skipped: number }[]> {
    return Promise.all(writes.map((w) => this.putMany(w.scope, w.entries)));
  }
  /** Deep copy of all states, for comparisons. */
  snapshot(): Map<string, { count: number; lastOffset: number; lastEventMs: number; params: number[] }> {
    const out = new Map<string, { count: number; lastOffset: number; lastEventMs: number; params: number[] }>();
    for (const [k, s] of this.data) out.set(k, { count: s.count, lastOffset: s.lastOffset, lastEventMs: s.lastEventMs, params: [...s.params] });
    return out;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

export class RecordingSink implements PredictionSink {
  readonly rows: PredictionRow[] = [];
  failNext = 0;
  write(rows: readonly PredictionRow[]): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      return Promise.reject(new Error('sink down'));
    }
    this.rows.push(...rows);
    return Promise.resolve();
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A deterministic labelled event stream over a few users and items. */
export function toyEvents(n: number, entities: number, seed = 1): LabelledEvent[] {
  let x = seed >>> 0 || 1;
  const rnd = (): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
  const out: LabelledEvent[] = [];
  for (let i = 0; i < n; i++) {
    const item = `i${Math.floor(rnd() * rnd() * entities)}`;
    out.push({
      eventId: `e${i}${'x'.repeat(Math.floor(rnd() * 3))}`,
      timeMs: 1_700_000_000_000 + i * 1000,
      userId: `u${Math.floor(rnd() * entities)}`,
      itemId: item,
      label: rnd() < 0.3 ? 1 : 0,
      userFeatures: { g: ['a'] },
      itemFeatures: { c: ['b'] },
    });
  }
  return out;
}
