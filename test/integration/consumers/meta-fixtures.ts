/**
 * Shared pieces of the consumer tests of the meta-learned adapters (emerg, coldnas, fixed-adaptive)
 * run from release directories: small random-init releases published and promoted with ReleaseStore,
 * the release's own adapter built as a worker builds it, producing events keyed by the adapted
 * side, and reading every stored state of a scope back raw from Redis.
 * The models come from the unit fixtures (test/unit/adapters/user-fixtures.ts) and, for EmerG, the
 * shape worker-emerg.test.ts uses.
 */
import { Redis } from 'ioredis';
import { createAdapterFromRelease } from '../../../adapters/registry.js';
import type { Adapter } from '../../../adapters/types.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import { decodeState } from '../../../model-store/state-codec.js';
import type { EntityState, StateScope } from '../../../model-store/types.js';
import type { ColdNas } from '../../../models/coldnas.js';
import { Emerg } from '../../../models/emerg.js';
import { fieldLayoutOf, inferEventLayout, type EventLayout } from '../../../models/event-layout.js';
import type { FixedAdaptive } from '../../../models/fixed-adaptive.js';
import { bundleCtr, bundleUser, type EntityStatePolicy } from '../../../models/onnx/bundle.js';
import { entityIdOf, type LabelledEvent, type Side } from '../../../schemas/types.js';
import { Safeguard } from '../../../consumers/safeguard.js';
import { partitionOfKey, type EventProducer } from '../../../streams/producer.js';
import { encodeLabelled } from '../../../streams/serde.js';
import { coldNas, fixedAdaptive, userLayout } from '../../unit/adapters/user-fixtures.js';

/** Re-exported: the event topics' config (no time retention), see harness.ts. */
export { KEEP_ALL_EVENTS } from './harness.js';

/** The meta-learned release kinds a worker adapts with (release model name = adapter name = kind). */
export type MetaKind = 'emerg' | 'coldnas' | 'fixed-adaptive';

export const SIDE_OF: Readonly<Record<MetaKind, Side>> = { emerg: 'item', coldnas: 'user', 'fixed-adaptive': 'user' };

/** The event layout a release of `kind` is trained with for `evs`. */
export function layoutFor(kind: MetaKind, evs: readonly LabelledEvent[]): EventLayout {
  return kind === 'emerg' ? inferEventLayout('item', evs, { vocab: 4096, maxSlots: 3 }) : userLayout(evs);
}

/** A small random-init model of `kind` over `layout`; different seeds give different shared parameters. */
function modelOf(kind: MetaKind, layout: EventLayout, seed: number): Emerg | ColdNas | FixedAdaptive {
  if (kind === 'emerg') return new Emerg({ layout: fieldLayoutOf(layout), vocab: layout.vocab, dim: 4, layers: 2, genHidden: 8, seed });
  return kind === 'coldnas' ? coldNas(layout, seed) : fixedAdaptive(layout, seed);
}

/**
 * Publishes a release of `kind` (model name `kind`) over `layout` with its own seed, its parent the
 * current release, and promotes it when `promote` (default). Returns its version and release id.
 */
export async function publishMeta(
  store: ReleaseStore,
  kind: MetaKind,
  layout: EventLayout,
  seed: number,
  opts: { promote?: boolean; entityStatePolicy?: EntityStatePolicy } = {},
): Promise<{ version: string; release: string }> {
  const model = modelOf(kind, layout, seed);
  const policy = opts.entityStatePolicy === undefined ? {} : { entityStatePolicy: opts.entityStatePolicy };
  const b = model instanceof Emerg ? bundleCtr(model, { eventLayout: layout, ...policy }) : bundleUser(model, { eventLayout: layout, ...policy });
  const parent = (await store.current(kind)) ?? null;
  const m = await store.publish({ model: kind, parent, architecture: b.architecture, files: b.files });
  if (opts.promote !== false) await store.promote(kind, m.version);
  return { version: m.version, release: `${kind}/${m.version}` };
}

/** The adapter `kind` of release `version`, loaded and built as a worker builds it (its own model objects). */
export async function adapterOf(store: ReleaseStore, kind: MetaKind, version: string): Promise<Adapter> {
  return createAdapterFromRelease(kind, SIDE_OF[kind], await store.load(kind, version));
}

/** Produces events keyed by the entity of `side` (as the re-keying stage does), in order. */
export async function produceBySide(producer: EventProducer, topic: string, side: Side, evs: readonly LabelledEvent[]): Promise<void> {
  for (let at = 0; at < evs.length; at += 1000) {
    await producer.send(
      topic,
      evs.slice(at, at + 1000).map((e) => ({ key: entityIdOf(e, side), value: encodeLabelled(e), timestampMs: e.timeMs })),
    );
  }
}

/**
 * Every state stored under `scope` (its adapter segment as the keys spell it), decoded from the raw
 * Redis value: entity id → state. Keys are `${prefix}:${ns}:${side}:${adapter}:{${entityId}}`.
 */
export async function storedStates(redisUrl: string, prefix: string, scope: StateScope): Promise<Map<string, EntityState>> {
  const r = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  const head = `${prefix}:${scope.namespace}:${scope.side}:${scope.adapter}:`;
  const out = new Map<string, EntityState>();
  try {
    await r.connect();
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${head}{*}`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        const value = await r.getBuffer(key);
        if (value === null) continue;
        out.set(key.slice(head.length + 1, -1), decodeState(value));
      }
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
  return out;
}

/** An event as the adapter scored it offline: its adapted score, its baseline (the adapter's none), its entity's prior count. */
export interface RawScore {
  score: number;
  baseline: number;
  prior: number;
}

/**
 * What a worker logs for events its adapter scored as `raw`: the safeguard's fold
 * (consumers/safeguard.ts, default options) over each Kafka partition's events in offset order,
 * i.e. the stream order of the events whose entity key (of `side`) lands in that partition
 * (streams/producer.ts partitionOfKey). `stateOf(e)` names the safeguard state event e folds into
 * besides its partition: a release with a new state epoch (reinit) starts new ones. Event id →
 * logged score.
 */
export function safeguardedScores(
  evs: readonly LabelledEvent[],
  side: Side,
  partitions: number,
  raw: ReadonlyMap<string, RawScore>,
  stateOf: (e: LabelledEvent) => string = () => '',
): Map<string, number> {
  const guard = new Safeguard();
  const states = new Map<string, Float32Array>();
  const out = new Map<string, number>();
  for (const e of evs) {
    const r = raw.get(e.eventId);
    if (r === undefined) throw new Error(`no offline score for ${e.eventId}`);
    const key = `${partitionOfKey(entityIdOf(e, side), partitions)}|${stateOf(e)}`;
    let st = states.get(key);
    if (st === undefined) states.set(key, (st = guard.initialState()));
    out.set(e.eventId, guard.step(st, r.prior, r.score, r.baseline, e.label));
  }
  return out;
}
