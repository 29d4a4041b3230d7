/**
 * Typed encode/decode of Thaw's records in Confluent wire format (see avro-codec.ts), plus the
 * semantic validation that Avro cannot express. Decoders always validate: whatever they return is
 * safe to process, and whatever they reject is a PoisonEventError with code DECODE_FAILED or
 * VALIDATION_FAILED and a reason precise enough to fix the producer (it goes to dead letters).
 *
 * Decoded values are plain objects with exactly the fields of the TypeScript types (no avsc record
 * prototypes, no fields the type does not declare), so they compare and serialise predictably.
 */
import { PoisonEventError } from '../lib/errors.js';
import { catalogRegistry, SCHEMA_NAMES, type SchemaRegistry } from '../schemas/catalog.js';
import type { Click, EntityProfile, Features, Impression, LabelledEvent, Side } from '../schemas/types.js';
import { AvroCodec } from './avro-codec.js';

export { MAGIC_BYTE, WIRE_HEADER_BYTES, schemaIdOf, AvroCodec } from './avro-codec.js';

/** How far in the future an event time may be, relative to the `nowMs` given to a decoder. */
export const MAX_FUTURE_MS = 24 * 60 * 60 * 1000;

/** Announcement of a new release of shared parameters (topic `thaw.releases`). */
export interface ModelReleaseAnnouncement {
  model: string;
  version: string;
  /** Release directory as seen by workers. */
  path: string;
  /** Hex sha256 of the release's manifest.json. */
  manifestSha256: string;
  createdAtMs: number;
}

/** A teacher's score of one labelled event (topic `thaw.soft-labels`, thaw distill). */
export interface SoftLabel {
  eventId: string;
  /** The teacher's logit (log-odds of a click); finite. */
  teacherLogit: number;
  /** `<model>/<version>` of the teacher release that scored the event. */
  teacherRelease: string;
}

/** A labelled event with the optional v2 `source` field (who produced the label). */
export type LabelledEventWithSource = LabelledEvent & { source?: string };

// ---------------------------------------------------------------------------------- validation ---
//
// Hot path: decoders run these once per event. Two things keep them cheap without dropping a rule:
// - The record's label for error messages ("labelled event \"e-1\"") is built only when a check
//   fails (`What` is a thunk), not JSON-serialised for every valid event.
// - Feature maps are walked token by token only for records we are about to ENCODE (arbitrary JS
//   objects from callers). A DECODED record's maps come out of avsc as map<array<string>> (the schema
//   of every record version says so, and the resolver enforces it), so re-checking each token's type
//   there re-proves what the decoder already guaranteed.
// Every semantic rule Avro cannot express is still checked on both paths: non-empty ids, label 0|1,
// finite non-negative times not more than MAX_FUTURE_MS after now, side, manifest digest.

/** The record's name for error messages, built only on failure. */
type What = () => string;

function fail(what: What, reason: string): never {
  throw new PoisonEventError('VALIDATION_FAILED', `${what()}: ${reason}`);
}

function show(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return s.length > 80 ? s.slice(0, 77) + '...' : s;
}

function checkId(what: What, field: string, v: unknown): void {
  if (typeof v !== 'string' || v.length === 0) fail(what, `${field} must be a non-empty string, got ${show(v)}`);
}

function checkTime(what: What, field: string, v: unknown, nowMs: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(what, `${field} must be a finite number, got ${show(v)}`);
  if (v < 0) fail(what, `${field} must not be negative, got ${v}`);
  if (v > nowMs + MAX_FUTURE_MS) fail(what, `${field} ${v} is more than 1 day after now (${nowMs})`);
}

function checkFeatures(what: What, field: string, v: unknown): void {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(what, `${field} must be a map of token lists`);
  for (const k in v) {
    const tokens = (v as Record<string, unknown>)[k];
    if (!Array.isArray(tokens)) fail(what, `${field}.${k} must be a list of strings`);
    for (const t of tokens) if (typeof t !== 'string') fail(what, `${field}.${k} contains a non-string token ${show(t)}`);
  }
}

const label =
  (kind: string, id: unknown): What =>
  () =>
    `${kind} ${typeof id === 'string' && id !== '' ? JSON.stringify(id) : '(no id)'}`;

/**
 * `features`: also walk the feature maps token by token (true for records built in JS; false for
 * records that just came out of the Avro decoder, whose maps the schema already typed).
 */
function checkImpression(e: Impression, nowMs: number, features: boolean): void {
  const what = label('impression', e.impressionId);
  checkId(what, 'impressionId', e.impressionId);
  checkId(what, 'userId', e.userId);
  checkId(what, 'itemId', e.itemId);
  checkTime(what, 'timeMs', e.timeMs, nowMs);
  if (features) {
    checkFeatures(what, 'userFeatures', e.userFeatures);
    checkFeatures(what, 'itemFeatures', e.itemFeatures);
  }
}

function checkLabelled(e: LabelledEvent, nowMs: number, features: boolean): void {
  const what = label('labelled event', e.eventId);
  checkId(what, 'eventId', e.eventId);
  checkId(what, 'userId', e.userId);
  checkId(what, 'itemId', e.itemId);
  if (e.label !== 0 && e.label !== 1) fail(what, `label must be 0 or 1, got ${show(e.label)}`);
  checkTime(what, 'timeMs', e.timeMs, nowMs);
  if (features) {
    checkFeatures(what, 'userFeatures', e.userFeatures);
    checkFeatures(what, 'itemFeatures', e.itemFeatures);
  }
}

function checkProfile(e: EntityProfile, nowMs: number, features: boolean): void {
  const what = label(`${String(e.side)} profile`, e.entityId);
  if (e.side !== 'user' && e.side !== 'item') fail(what, `side must be user or item, got ${show(e.side)}`);
  checkId(what, 'entityId', e.entityId);
  checkTime(what, 'timeMs', e.timeMs, nowMs);
  if (features) checkFeatures(what, 'features', e.features);
}

/** Throws PoisonEventError(VALIDATION_FAILED) unless `e` is a valid impression at time `nowMs`. */
export function validateImpression(e: Impression, nowMs: number): void {
  checkImpression(e, nowMs, true);
}

export function validateClick(e: Click, nowMs: number): void {
  const what = label('click', e.impressionId);
  checkId(what, 'impressionId', e.impressionId);
  checkTime(what, 'timeMs', e.timeMs, nowMs);
}

export function validateLabelled(e: LabelledEvent, nowMs: number): void {
  checkLabelled(e, nowMs, true);
}

export function validateProfile(e: EntityProfile, nowMs: number): void {
  checkProfile(e, nowMs, true);
}

export function validateRelease(e: ModelReleaseAnnouncement, nowMs: number): void {
  const what = label('release', e.version);
  checkId(what, 'model', e.model);
  checkId(what, 'version', e.version);
  checkId(what, 'path', e.path);
  if (typeof e.manifestSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.manifestSha256)) {
    fail(what, `manifestSha256 must be 64 lowercase hex digits, got ${show(e.manifestSha256)}`);
  }
  checkTime(what, 'createdAtMs', e.createdAtMs, nowMs);
}

export function validateSoftLabel(e: SoftLabel): void {
  const what = label('soft label', e.eventId);
  checkId(what, 'eventId', e.eventId);
  checkId(what, 'teacherRelease', e.teacherRelease);
  if (typeof e.teacherLogit !== 'number' || !Number.isFinite(e.teacherLogit)) fail(what, `teacherLogit must be a finite number, got ${show(e.teacherLogit)}`);
}

// ------------------------------------------------------------------------------------- codecs ---

/** The codecs of every record, over one registry. `defaultSerde()` uses the project catalog. */
export class Serde {
  readonly impression: AvroCodec;
  readonly click: AvroCodec;
  readonly labelled: AvroCodec;
  readonly profile: AvroCodec;
  readonly release: AvroCodec;
  readonly softLabel: AvroCodec;

  constructor(registry: SchemaRegistry) {
    this.impression = new AvroCodec(registry, SCHEMA_NAMES.impression);
    this.click = new AvroCodec(registry, SCHEMA_NAMES.click);
    this.labelled = new AvroCodec(registry, SCHEMA_NAMES.labelled);
    this.profile = new AvroCodec(registry, SCHEMA_NAMES.profile);
    this.release = new AvroCodec(registry, SCHEMA_NAMES.release);
    this.softLabel = new AvroCodec(registry, SCHEMA_NAMES.softLabel);
  }

  encodeImpression(e: Impression): Buffer {
    validateImpression(e, Number.POSITIVE_INFINITY);
    return this.impression.encode(e);
  }

  decodeImpression(buf: Buffer, nowMs: number = Date.now()): Impression {
    const r = this.impression.decode(buf);
    const e: Impression = {
      impressionId: r.impressionId as string,
      timeMs: r.timeMs as number,
      userId: r.userId as string,
      itemId: r.itemId as string,
      userFeatures: r.userFeatures as Features,
      itemFeatures: r.itemFeatures as Features,
    };
    checkImpression(e, nowMs, false); // feature maps typed by the schema
    return e;
  }

  encodeClick(e: Click): Buffer {
    validateClick(e, Number.POSITIVE_INFINITY);
    return this.click.encode(e);
  }

  decodeClick(buf: Buffer, nowMs: number = Date.now()): Click {
    const r = this.click.decode(buf);
    const e: Click = { impressionId: r.impressionId as string, timeMs: r.timeMs as number };
    validateClick(e, nowMs);
    return e;
  }

  encodeLabelled(e: LabelledEventWithSource): Buffer {
    validateLabelled(e, Number.POSITIVE_INFINITY);
    return this.labelled.encode(e);
  }

  decodeLabelled(buf: Buffer, nowMs: number = Date.now()): LabelledEvent {
    const r = this.labelled.decode(buf);
    const e: LabelledEvent = {
      eventId: r.eventId as string,
      timeMs: r.timeMs as number,
      userId: r.userId as string,
      itemId: r.itemId as string,
      label: r.label as 0 | 1,
      userFeatures: r.userFeatures as Features,
      itemFeatures: r.itemFeatures as Features,
    };
    checkLabelled(e, nowMs, false); // feature maps typed by the schema
    return e;
  }

  /** Like decodeLabelled, plus the v2 `source` field ('' for v1 writers, by the schema default). */
  decodeLabelledWithSource(buf: Buffer, nowMs: number = Date.now()): LabelledEventWithSource & { source: string } {
    const source = this.labelled.decode(buf).source;
    return { ...this.decodeLabelled(buf, nowMs), source: typeof source === 'string' ? source : '' };
  }

  encodeProfile(e: EntityProfile): Buffer {
    validateProfile(e, Number.POSITIVE_INFINITY);
    return this.profile.encode(e);
  }

  decodeProfile(buf: Buffer, nowMs: number = Date.now()): EntityProfile {
    const r = this.profile.decode(buf);
    const e: EntityProfile = {
      side: r.side as Side,
      entityId: r.entityId as string,
      timeMs: r.timeMs as number,
      features: r.features as Features,
    };
    checkProfile(e, nowMs, false); // feature maps typed by the schema
    return e;
  }

  encodeRelease(e: ModelReleaseAnnouncement): Buffer {
    validateRelease(e, Number.POSITIVE_INFINITY);
    return this.release.encode(e);
  }

  decodeRelease(buf: Buffer, nowMs: number = Date.now()): ModelReleaseAnnouncement {
    const r = this.release.decode(buf);
    const e: ModelReleaseAnnouncement = {
      model: r.model as string,
      version: r.version as string,
      path: r.path as string,
      manifestSha256: r.manifestSha256 as string,
      createdAtMs: r.createdAtMs as number,
    };
    validateRelease(e, nowMs);
    return e;
  }

  encodeSoftLabel(e: SoftLabel): Buffer {
    validateSoftLabel(e);
    return this.softLabel.encode(e);
  }

  decodeSoftLabel(buf: Buffer): SoftLabel {
    const r = this.softLabel.decode(buf);
    const e: SoftLabel = { eventId: r.eventId as string, teacherLogit: r.teacherLogit as number, teacherRelease: r.teacherRelease as string };
    validateSoftLabel(e);
    return e;
  }
}

let serde: Serde | undefined;

/** The Serde over the project catalog (created on first use). */
export function defaultSerde(): Serde {
  serde ??= new Serde(catalogRegistry());
  return serde;
}

// Module-level functions over the default catalog: the contract other folders import.
export const encodeImpression = (e: Impression): Buffer => defaultSerde().encodeImpression(e);
export const decodeImpression = (buf: Buffer, nowMs?: number): Impression => defaultSerde().decodeImpression(buf, nowMs);
export const encodeClick = (e: Click): Buffer => defaultSerde().encodeClick(e);
export const decodeClick = (buf: Buffer, nowMs?: number): Click => defaultSerde().decodeClick(buf, nowMs);
export const encodeLabelled = (e: LabelledEventWithSource): Buffer => defaultSerde().encodeLabelled(e);
export const decodeLabelled = (buf: Buffer, nowMs?: number): LabelledEvent => defaultSerde().decodeLabelled(buf, nowMs);
export const encodeProfile = (e: EntityProfile): Buffer => defaultSerde().encodeProfile(e);
export const decodeProfile = (buf: Buffer, nowMs?: number): EntityProfile => defaultSerde().decodeProfile(buf, nowMs);
export const encodeRelease = (e: ModelReleaseAnnouncement): Buffer => defaultSerde().encodeRelease(e);
export const decodeRelease = (buf: Buffer, nowMs?: number): ModelReleaseAnnouncement => defaultSerde().decodeRelease(buf, nowMs);
export const encodeSoftLabel = (e: SoftLabel): Buffer => defaultSerde().encodeSoftLabel(e);
export const decodeSoftLabel = (buf: Buffer): SoftLabel => defaultSerde().decodeSoftLabel(buf);
