import { z } from 'zod';

/**
 * Reads documentation back out of a zod schema: the description and default of the field at a
 * dotted key. Usage text and docs are generated from this, so they cannot drift from validation.
 */
export interface FieldDoc {
  description: string;
  /** Default rendered as text, undefined when the field has none. */
  defaultText?: string;
  required: boolean;
}

/** Follows wrappers (default, optional, effects) down to the object or leaf type. */
function unwrap(t: z.ZodTypeAny): z.ZodTypeAny {
  let cur = t;
  for (;;) {
    if (cur instanceof z.ZodDefault || cur instanceof z.ZodOptional || cur instanceof z.ZodNullable) cur = cur._def.innerType as z.ZodTypeAny;
    else if (cur instanceof z.ZodEffects) cur = cur._def.schema as z.ZodTypeAny;
    else return cur;
  }
}

/** The schema node at a dotted key, or undefined if the schema has no such key. */
export function fieldAt(schema: z.ZodTypeAny, key: string): z.ZodTypeAny | undefined {
  let cur: z.ZodTypeAny | undefined = schema;
  for (const part of key.split('.')) {
    const obj: z.ZodTypeAny = unwrap(cur);
    if (!(obj instanceof z.ZodObject)) return undefined;
    cur = (obj.shape as Record<string, z.ZodTypeAny>)[part];
    if (cur === undefined) return undefined;
  }
  return cur;
}

/**
 * The optional object that a required field belongs to (`kafka.sasl` for `kafka.sasl.username`):
 * the field is required only when that object is given. Undefined for a top-level field or one
 * whose parent is not optional.
 */
export function optionalParent(schema: z.ZodTypeAny, key: string): string | undefined {
  const parent = key.split('.').slice(0, -1).join('.');
  return parent !== '' && fieldAt(schema, parent)?.isOptional() === true ? parent : undefined;
}

/** Top-level keys of an object schema. */
export function topLevelKeys(schema: z.ZodTypeAny): string[] {
  const obj = unwrap(schema);
  return obj instanceof z.ZodObject ? Object.keys(obj.shape as object) : [];
}

export function describeField(schema: z.ZodTypeAny, key: string): FieldDoc {
  const node = fieldAt(schema, key);
  if (node === undefined) return { description: '', required: false };
  let description = '';
  let defaultText: string | undefined;
  let optional = false;
  // The outermost description wins; walk wrappers collecting description and default.
  let cur: z.ZodTypeAny = node;
  for (;;) {
    if (description === '' && cur.description !== undefined) description = cur.description;
    if (cur instanceof z.ZodDefault) {
      if (defaultText === undefined) defaultText = renderDefault((cur._def.defaultValue as () => unknown)());
      cur = cur._def.innerType as z.ZodTypeAny;
    } else if (cur instanceof z.ZodOptional || cur instanceof z.ZodNullable) {
      optional = true;
      cur = cur._def.innerType as z.ZodTypeAny;
    } else if (cur instanceof z.ZodEffects) {
      cur = cur._def.schema as z.ZodTypeAny;
    } else break;
  }
  if (description === '' && cur.description !== undefined) description = cur.description;
  // The schema's text carries "@default x" for readers of the source; help shows it separately.
  const documented = /@default\s+(.*)$/.exec(description)?.[1]?.trim();
  description = description.replace(/\s*@default\b.*$/, '').trim();
  // Optional fields whose default is computed at run time document it in the text only.
  if (defaultText === undefined && documented !== undefined && documented !== '') defaultText = documented;
  return { description, defaultText, required: defaultText === undefined && !optional };
}

function renderDefault(v: unknown): string {
  if (Array.isArray(v)) return v.join(',');
  if (v === '') return '(empty)';
  if (typeof v === 'object' && v !== null) return JSON.stringify(v);
  return String(v);
}

/** Dotted keys of every leaf option of an object schema (nested objects are walked). */
export function leafKeys(schema: z.ZodTypeAny, prefix = ''): string[] {
  const obj = unwrap(schema);
  if (!(obj instanceof z.ZodObject)) return prefix === '' ? [] : [prefix];
  const out: string[] = [];
  for (const [k, v] of Object.entries(obj.shape as Record<string, z.ZodTypeAny>)) {
    const key = prefix === '' ? k : `${prefix}.${k}`;
    if (unwrap(v) instanceof z.ZodObject) out.push(...leafKeys(v, key));
    else out.push(key);
  }
  return out;
}
