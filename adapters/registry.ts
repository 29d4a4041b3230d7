/**
 * Builds adapters by name, so config and CLI can choose one with a string. Meta-learned adapters
 * (EmerG, ColdNAS) register here too once they exist.
 */
import type { Side } from '../schemas/types.js';
import type { Adapter } from './types.js';
import { ConfigError } from '../lib/errors.js';
import type { FactorizationMachine } from '../models/fm.js';
import { NoneAdapter } from './none.js';
import { FmAdagradAdapter, type FmAdagradOptions } from './fm-adagrad.js';

/** Names accepted by `createAdapter`. */
export const ADAPTER_NAMES = ['none', 'fm-adagrad'] as const;
export type AdapterName = (typeof ADAPTER_NAMES)[number];

/** Options per adapter name (ignored by adapters that have none). */
export type AdapterOptions = FmAdagradOptions;

export function isAdapterName(name: string): name is AdapterName {
  return (ADAPTER_NAMES as readonly string[]).includes(name);
}

/** An adapter of `side` over the shared `model`; throws ConfigError for an unknown name. */
export function createAdapter(name: string, side: Side, model: FactorizationMachine, opts?: AdapterOptions): Adapter {
  switch (name) {
    case 'none':
      return new NoneAdapter(side, model);
    case 'fm-adagrad':
      return new FmAdagradAdapter(side, model, opts);
    default:
      throw new ConfigError('adapter', `unknown adapter "${name}"; known: ${ADAPTER_NAMES.join(', ')}`);
  }
}
