/**
 * LabelledEvent → one line of Vowpal Wabbit's text format, with two namespaces:
 *   u: the user id and the user features; i: the item id and the item features.
 * `-q ui` then crosses every user feature (id included) with every item feature, which is what
 * a per-user × per-item interaction model looks like in VW.
 *
 * `ids` drops an id feature: the `own-id` peer keeps only the id of the side being adapted, the
 * same identity information a Thaw adapter of that side has (its shared FM has no id features).
 *
 * Label: 1 / -1 (VW's logistic loss convention). Feature names are `field=token`; fields are
 * emitted in sorted order so the line (and VW's hashing) does not depend on object key order.
 */
import type { Features, LabelledEvent } from '../../schemas/types.js';

/** Characters VW's text parser gives a meaning to (space separates, `:` sets a value, `|` opens a namespace). */
const VW_SPECIAL = /[\s:|]/g;

/** A token that VW's text parser reads back as one feature name. */
export function vwToken(s: string): string {
  return s.replace(VW_SPECIAL, '_');
}

/** Which entity ids become VW features. */
export type VwIds = 'both' | 'user' | 'item';

function featureList(idField: string, id: string | undefined, f: Features): string {
  const parts = id === undefined ? [] : [`${idField}=${vwToken(id)}`];
  for (const field of Object.keys(f).sort()) {
    for (const token of f[field] ?? []) parts.push(`${vwToken(field)}=${vwToken(token)}`);
  }
  return parts.join(' ');
}

/** The VW text line of one event (no trailing newline). */
export function vwLine(ev: LabelledEvent, ids: VwIds = 'both'): string {
  const u = featureList('uid', ids === 'item' ? undefined : ev.userId, ev.userFeatures);
  const i = featureList('iid', ids === 'user' ? undefined : ev.itemId, ev.itemFeatures);
  return `${ev.label === 1 ? 1 : -1} |u ${u} |i ${i}`;
}
