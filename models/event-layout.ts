/**
 * How the model family (models/ctr-model.ts, coldnas.ts, fixed-adaptive.ts) reads a streamed
 * `LabelledEvent`: an EventLayout names the model's fields and where each one's tokens come from,
 * and an EventEncoder turns events into the RowBatch every model takes.
 *
 * - Field 0 is the ENTITY of the layout's side (the item for item-side models such as EmerG, the
 *   user for user-side models such as ColdNAS and the fixed/adaptive split). It has no table row:
 *   its parameters are the entity's own (adapted per entity, stored in Redis).
 * - Field 1 is the OTHER side's ID, hashed into the table like any feature.
 * - The other fields are feature keys of the event, `user.<key>` or `item.<key>`, each with a number
 *   of slots: 1 for single-valued fields, more for bags (mean-pooled, extra tokens dropped).
 * Rows are hashed, not looked up in a vocabulary: row = 1 + FNV-1a(`name=token`) mod (vocab − 1),
 * row 0 being the padding row, so a brand-new token of a brand-new entity lands somewhere without a
 * dictionary growing with the stream. A field missing on an event (no profile) is padding with
 * weight 0: its pooled embedding is zero, the documented default of an entity without features.
 *
 * The layout is recorded in a release's architecture (`eventLayout`), so trainers, workers and the
 * ONNX export agree on it.
 */
import { ThawError } from '../lib/errors.js';
import type { LabelledEvent, Side } from '../schemas/types.js';
import type { FieldLayout, RowBatch } from './ctr-model.js';
import { hashFeature } from './features.js';
import { at, defined } from '../lib/at.js';

/** `entity` (field 0), `other` (field 1), or a feature key of one side: `user.age`, `item.genres`. */
export type EventFieldSource = 'entity' | 'other' | `user.${string}` | `item.${string}`;

export interface EventFieldSpec {
  /** Field name; hashed with each token, so it must be unique in the layout. */
  name: string;
  source: EventFieldSource;
  /** Slots of the field (1 = single-valued; > 1 = a mean-pooled bag). The entity field has 1. */
  slots: number;
}

export interface EventLayout {
  /** The side whose ID is field 0. */
  side: Side;
  /** Field 0 has source `entity`, field 1 source `other`. */
  fields: EventFieldSpec[];
  /** Table rows, the padding row 0 included. */
  vocab: number;
  /** Names of the fields that describe the item (the generators' input); never the entity field. */
  itemFields: string[];
}

export interface InferLayoutOptions {
  /** Table rows. @default 65_536 */
  vocab?: number;
  /** Largest number of slots of a bag field. @default 8 */
  maxSlots?: number;
}

const FIELD_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** Throws ThawError MODEL_ERROR naming what is wrong with `l`. */
export function validateEventLayout(l: EventLayout): void {
  const bad = (msg: string): never => {
    throw new ThawError('MODEL_ERROR', `event layout: ${msg}`);
  };
  if (l.side !== 'user' && l.side !== 'item') bad(`side must be user or item, got ${String(l.side)}`);
  if (!Number.isInteger(l.vocab) || l.vocab < 2) bad(`vocab must be an integer >= 2, got ${String(l.vocab)}`);
  if (l.fields.length < 2) bad(`needs at least the entity and the other-side ID fields, got ${l.fields.length}`);
  if (l.fields[0]?.source !== 'entity' || l.fields[0].slots !== 1) bad('field 0 must be the entity field with 1 slot');
  if (l.fields[1]?.source !== 'other') bad('field 1 must be the other side ID field');
  const names = new Set<string>();
  l.fields.forEach((f, i) => {
    if (!FIELD_NAME.test(f.name)) bad(`field ${i} has an invalid name ${JSON.stringify(f.name)}`);
    if (names.has(f.name)) bad(`field name ${f.name} appears twice`);
    names.add(f.name);
    if (!Number.isInteger(f.slots) || f.slots < 1 || f.slots > 64) bad(`field ${f.name} has ${String(f.slots)} slots (1..64)`);
    if (i >= 2 && !/^(user|item)\.[^.]/.test(f.source)) bad(`field ${f.name} has source ${f.source}; expected user.<key> or item.<key>`);
  });
  for (const n of l.itemFields) {
    const i = l.fields.findIndex((f) => f.name === n);
    if (i < 1) bad(`item field ${n} is not a non-entity field of the layout`);
  }
}

/** The model's FieldLayout of an event layout (slots of fields 1..F-1; field 0 has none). */
export function fieldLayoutOf(l: EventLayout): FieldLayout {
  validateEventLayout(l);
  const slotField: number[] = [];
  l.fields.forEach((f, i) => {
    if (i > 0) for (let s = 0; s < f.slots; s++) slotField.push(i);
  });
  return {
    fieldNames: l.fields.map((f) => f.name),
    slotField: Int32Array.from(slotField),
    itemFields: l.itemFields.map((n) => l.fields.findIndex((f) => f.name === n)),
  };
}

/**
 * A layout covering every feature key seen on `events` (user keys, then item keys, each sorted),
 * with as many slots as the most tokens seen (at most `maxSlots`). Item fields: the item's feature
 * fields, plus the item ID when the layout is the user side's.
 */
export function inferEventLayout(side: Side, events: Iterable<LabelledEvent>, opts: InferLayoutOptions = {}): EventLayout {
  const maxSlots = opts.maxSlots ?? 8;
  const seen = { user: new Map<string, number>(), item: new Map<string, number>() };
  for (const ev of events) {
    for (const [k, v] of Object.entries(ev.userFeatures)) seen.user.set(k, Math.max(seen.user.get(k) ?? 0, v.length));
    for (const [k, v] of Object.entries(ev.itemFeatures)) seen.item.set(k, Math.max(seen.item.get(k) ?? 0, v.length));
  }
  const other: Side = side === 'item' ? 'user' : 'item';
  const fields: EventFieldSpec[] = [
    { name: side, source: 'entity', slots: 1 },
    { name: other, source: 'other', slots: 1 },
  ];
  const itemFields: string[] = side === 'user' ? [other] : [];
  for (const s of ['user', 'item'] as const) {
    for (const k of [...seen[s].keys()].sort()) {
      const name = `${s}.${k}`;
      fields.push({ name, source: `${s}.${k}`, slots: Math.max(1, Math.min(maxSlots, defined(seen[s].get(k), 'seen[s].get(k)'))) });
      if (s === 'item') itemFields.push(name);
    }
  }
  const layout: EventLayout = { side, fields, vocab: opts.vocab ?? 65_536, itemFields };
  validateEventLayout(layout);
  return layout;
}

/** Encodes events into the RowBatch of a layout. Allocation-light; reuse one per layout. */
export class EventEncoder {
  readonly layout: EventLayout;
  readonly fieldLayout: FieldLayout;
  /** Slots per row S. */
  readonly slots: number;
  private readonly getters: ((ev: LabelledEvent) => readonly string[] | undefined)[];
  private readonly offsets: number[];

  constructor(layout: EventLayout) {
    this.layout = layout;
    this.fieldLayout = fieldLayoutOf(layout);
    this.slots = this.fieldLayout.slotField.length;
    const other = layout.side === 'item' ? (ev: LabelledEvent) => [ev.userId] : (ev: LabelledEvent) => [ev.itemId];
    this.getters = layout.fields.slice(1).map((f) => {
      if (f.source === 'other') return other;
      const dot = f.source.indexOf('.');
      const key = f.source.slice(dot + 1);
      return f.source.startsWith('user.') ? (ev: LabelledEvent) => ev.userFeatures[key] : (ev: LabelledEvent) => ev.itemFeatures[key];
    });
    this.offsets = [];
    let o = 0;
    for (const f of layout.fields.slice(1)) {
      this.offsets.push(o);
      o += f.slots;
    }
  }

  /** Table row of `token` in field `name`. */
  row(name: string, token: string): number {
    return 1 + hashFeature(name, token, this.layout.vocab - 1);
  }

  /**
   * Rows of `events`; row i's entity index is `entity[i]` (default i) and its label the event's.
   * Bags keep their first `slots` tokens, each weighted 1/(tokens kept).
   */
  encode(events: readonly LabelledEvent[], entity?: Int32Array): RowBatch {
    const n = events.length;
    const s = this.slots;
    const featIdx = new Int32Array(n * s);
    const featW = new Float32Array(n * s);
    const label = new Float32Array(n);
    const fields = this.layout.fields;
    for (let i = 0; i < n; i++) {
      const ev = at(events, i, 'events');
      label[i] = ev.label;
      for (let f = 1; f < fields.length; f++) {
        const spec = at(fields, f, 'fields');
        const tokens = at(this.getters, f - 1, 'this.getters')(ev);
        if (tokens === undefined || tokens.length === 0) continue;
        const kept = Math.min(tokens.length, spec.slots);
        const base = i * s + at(this.offsets, f - 1, 'this.offsets');
        for (let t = 0; t < kept; t++) {
          featIdx[base + t] = this.row(spec.name, at(tokens, t, 'tokens'));
          featW[base + t] = 1 / kept;
        }
      }
    }
    if (entity !== undefined && entity.length !== n) throw new ThawError('MODEL_ERROR', `encode: ${n} events but ${entity.length} entity indices`);
    return { n, featIdx, featW, label, entity: entity ?? Int32Array.from({ length: n }, (_, i) => i) };
  }
}
