/**
 * Builds adapters by name, so config and CLI can choose one with a string.
 * - `createAdapter`: the FM adapters over a FactorizationMachine in hand (demo, replay, tests).
 * - `createAdapterFromRelease`: any adapter over a loaded release, dispatching on the release's
 *   architecture: which adapters run on it, and the `none` baseline over the SAME model.
 *
 * | release type     | adapters                 | side |
 * |------------------|--------------------------|------|
 * | fm               | none, fm-adagrad         | both (one release for user and item workers) |
 * | emerg            | emerg, none (frozen)     | item |
 * | coldnas          | coldnas, none (frozen)   | user |
 * | fixed-adaptive   | fixed-adaptive, none     | user |
 * Meta-learned releases must carry `architecture.eventLayout` (trained for the stream); their
 * `architecture.biasFilter` (the bias filter's prior per side) reaches the adapter.
 */
import type { Side } from '../schemas/types.js';
import type { Adapter } from './types.js';
import { ConfigError, ThawError } from '../lib/errors.js';
import type { LoadedRelease } from '../model-store/releases.js';
import type { EventLayout } from '../models/event-layout.js';
import { Emerg } from '../models/emerg.js';
import type { FactorizationMachine } from '../models/fm.js';
import { ColdNas } from '../models/coldnas.js';
import { architectureOf, ctrFromRelease, fmFromRelease, userModelFromRelease, type ReleaseArchitecture } from '../models/onnx/bundle.js';
import { UNRECORDED_BIAS_FILTER } from '../models/meta-state.js';
import { NoneAdapter } from './none.js';
import { FmAdagradAdapter, type FmAdagradOptions } from './fm-adagrad.js';
import { EmergAdapter, type EmergAdapterOptions } from './emerg.js';
import { ColdNasAdapter, type ColdNasAdapterOptions } from './coldnas.js';
import { FixedAdaptiveAdapter, type FixedAdaptiveAdapterOptions } from './fixed-adaptive.js';
import { FrozenAdapter } from './frozen.js';

/** Names accepted by `createAdapterFromRelease` (`createAdapter` takes the first two). */
export const ADAPTER_NAMES = ['none', 'fm-adagrad', 'emerg', 'coldnas', 'fixed-adaptive'] as const;
export type AdapterName = (typeof ADAPTER_NAMES)[number];

/** Options of the FM adapters (ignored by `none`). */
export type AdapterOptions = FmAdagradOptions;

/**
 * Options per adapter name; only the section of the adapter built is read. The `none` baseline of
 * a meta-learned release starts states as its adapter does, so it reads that adapter's section.
 */
export interface ReleaseAdapterOptions {
  'fm-adagrad'?: FmAdagradOptions;
  emerg?: EmergAdapterOptions;
  coldnas?: ColdNasAdapterOptions;
  'fixed-adaptive'?: FixedAdaptiveAdapterOptions;
}

/** Adapter names that run on releases of `type` (empty: no streaming adapter runs it). */
export const ADAPTERS_BY_RELEASE: Readonly<Record<ReleaseArchitecture['type'], readonly AdapterName[]>> = {
  fm: ['none', 'fm-adagrad'],
  emerg: ['emerg', 'none'],
  coldnas: ['coldnas', 'none'],
  'fixed-adaptive': ['fixed-adaptive', 'none'],
  deepfm: [],
  metaemb: [],
};

export function isAdapterName(name: string): name is AdapterName {
  return (ADAPTER_NAMES as readonly string[]).includes(name);
}

/** An FM adapter of `side` over the shared `model`; throws ConfigError for an unknown name. */
export function createAdapter(name: string, side: Side, model: FactorizationMachine, opts?: AdapterOptions): Adapter {
  switch (name) {
    case 'none':
      return new NoneAdapter(side, model);
    case 'fm-adagrad':
      return new FmAdagradAdapter(side, model, opts);
    default:
      if (isAdapterName(name)) throw new ConfigError('adapter', `"${name}" runs on ${name} releases, not on an FM: use a release of that type (--model)`);
      throw new ConfigError('adapter', `unknown adapter "${name}"; known: ${ADAPTER_NAMES.join(', ')}`);
  }
}

function incompatible(rel: LoadedRelease, why: string): ThawError {
  return new ThawError('RELEASE_INCOMPATIBLE', `release ${rel.manifest.model}/${rel.manifest.version}: ${why}`);
}

/**
 * Adapter `name` for `side` over the shared parameters of `rel`. Throws ConfigError for an unknown
 * adapter name, RELEASE_INCOMPATIBLE when the release cannot run it: an adapter of another release
 * type, the wrong side, a meta-learned release without `eventLayout`.
 */
export function createAdapterFromRelease(name: string, side: Side, rel: LoadedRelease, opts: ReleaseAdapterOptions = {}): Adapter {
  if (!isAdapterName(name)) throw new ConfigError('adapter', `unknown adapter "${name}"; known: ${ADAPTER_NAMES.join(', ')}`);
  if (side !== 'user' && side !== 'item') throw new ConfigError('side', `must be user or item, got ${String(side)}`);
  const a = architectureOf(rel);
  const runs = ADAPTERS_BY_RELEASE[a.type];
  if (!runs.includes(name)) {
    const what = runs.length === 0 ? 'no streaming adapter runs it' : `it runs ${runs.join(' or ')}`;
    throw incompatible(rel, `is a ${a.type} release and adapter ${name} does not run on it (${what})`);
  }
  const id = `${rel.manifest.model}/${rel.manifest.version}`;
  if (a.type === 'fm') {
    // Two-sided: the same FM release serves the user and the item workers.
    return createAdapter(name, side, fmFromRelease(rel), opts['fm-adagrad']);
  }
  const layout = eventLayoutOf(rel, a, side);
  const biasFilter = a.biasFilter ?? UNRECORDED_BIAS_FILTER;
  let adapter: Adapter;
  if (a.type === 'emerg') {
    const model = ctrFromRelease(rel);
    if (!(model instanceof Emerg)) throw incompatible(rel, 'declares emerg but did not load an EmerG model');
    adapter = new EmergAdapter(model, layout, id, opts.emerg, biasFilter);
  } else {
    const model = userModelFromRelease(rel);
    if (a.type === 'coldnas') {
      if (!(model instanceof ColdNas)) throw incompatible(rel, 'declares coldnas but did not load a ColdNAS model');
      adapter = new ColdNasAdapter(model, layout, id, opts.coldnas, biasFilter);
    } else {
      if (model instanceof ColdNas) throw incompatible(rel, 'declares fixed-adaptive but loaded a ColdNAS model');
      adapter = new FixedAdaptiveAdapter(model, layout, id, opts['fixed-adaptive'], biasFilter);
    }
  }
  return name === 'none' ? new FrozenAdapter(adapter) : adapter;
}

/** The release's event layout, which must be of `side` (the side its entity params belong to). */
function eventLayoutOf(rel: LoadedRelease, a: ReleaseArchitecture, side: Side): EventLayout {
  const layout = a.eventLayout;
  if (layout === undefined) {
    throw incompatible(rel, `is a ${a.type} release without architecture.eventLayout (trained for the offline protocol, not for the stream): publish it with an event layout`);
  }
  if (layout.side !== side) throw incompatible(rel, `adapts ${layout.side} entities (event layout side), this worker adapts ${side}`);
  return layout;
}
