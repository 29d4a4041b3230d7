/**
 * State sizes (floats per entity) of every adapter, read from the adapter classes themselves
 * (`stateSize`), built with their default model options over the event layout of a real stream:
 * the size of EmerG's state depends on the number of fields F of the layout (its F×F item graph).
 * Models are random-initialised: only their shapes matter here.
 */
import { ColdNasAdapter } from '../../adapters/coldnas.js';
import { EmergAdapter } from '../../adapters/emerg.js';
import { FixedAdaptiveAdapter } from '../../adapters/fixed-adaptive.js';
import { FmAdagradAdapter } from '../../adapters/fm-adagrad.js';
import type { Adapter } from '../../adapters/types.js';
import { ColdNas } from '../../models/coldnas.js';
import { Emerg } from '../../models/emerg.js';
import { fieldLayoutOf, inferEventLayout, type EventLayout } from '../../models/event-layout.js';
import { FixedAdaptive } from '../../models/fixed-adaptive.js';
import { RECENT_VIEW_DEFAULTS } from '../../consumers/cross-side.js';
import { FactorizationMachine } from '../../models/fm.js';
import type { LabelledEvent } from '../../schemas/types.js';

export interface AdapterSize {
  adapter: string;
  side: 'user' | 'item';
  /** Floats per entity (the adapter's `stateSize`). */
  floats: number;
  /** How the size follows from the model's dimensions. */
  formula: string;
  /**
   * Recent views the state carries for the other side's readers (consumers/cross-side.ts), each a
   * view of `viewFloats` floats: a busy entity's worst case. Absent: a state without them.
   */
  recent?: { views: number; viewFloats: number };
}

/** Default FM latent dimension (`thaw train-fm --k`). */
export const DEFAULT_FM_K = 8;
/** Table rows for the shape-only models built here (the size of a state does not depend on it). */
const VOCAB = 1024;

/** Sizes of none, fm-adagrad, emerg, coldnas and fixed-adaptive for layouts inferred from `events`. */
export function adapterSizes(events: readonly LabelledEvent[], fmK = DEFAULT_FM_K): AdapterSize[] {
  const itemLayout: EventLayout = inferEventLayout('item', events, { vocab: VOCAB });
  const userLayout: EventLayout = inferEventLayout('user', events, { vocab: VOCAB });
  const out: AdapterSize[] = [{ adapter: 'none', side: 'item', floats: 0, formula: '0' }];
  const fm = new FmAdagradAdapter('item', new FactorizationMachine(VOCAB, fmK, 'item'));
  out.push(row(fm, `2k + 6, k = ${fmK}`));
  out.push({ ...row(fm, `2k + 6, k = ${fmK}; + ${RECENT_VIEW_DEFAULTS.maxViews} views of k + 2`), recent: { views: RECENT_VIEW_DEFAULTS.maxViews, viewFloats: fm.viewSize } });
  const emerg = new Emerg({ layout: fieldLayoutOf(itemLayout), vocab: VOCAB });
  const f = itemLayout.fields.length;
  out.push(row(new EmergAdapter(emerg, itemLayout, 'shape-only'), `2 + 2W + 2F² + 2, W = ${emerg.width}, F = ${f}`));
  const coldnas = new ColdNas({ layout: fieldLayoutOf(userLayout), vocab: VOCAB });
  out.push(row(new ColdNasAdapter(coldnas, userLayout, 'shape-only'), `C + 3, C = ${coldnas.contextDim}`));
  const fa = new FixedAdaptive({ layout: fieldLayoutOf(userLayout), vocab: VOCAB });
  out.push(row(new FixedAdaptiveAdapter(fa, userLayout, 'shape-only'), `D + 3, D = ${fa.adaptiveSize - 1}`));
  return out;
}

function row(a: Adapter, formula: string): AdapterSize {
  return { adapter: a.name, side: a.side, floats: a.stateSize, formula };
}
