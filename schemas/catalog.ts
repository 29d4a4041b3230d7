/**
 * The project's schema catalog: a fixed table of schema ids -> (name, version, Avro type), loaded
 * from `schemas/avro/*.avsc`. It is the default `SchemaRegistry`; a Confluent Schema Registry client
 * can implement the same interface later without touching the serde.
 *
 * Ids are part of the wire format (bytes 1..4 of every message): never renumber or reuse one.
 * A new version of a schema gets a new id and becomes `latest` for its name.
 */
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import avro from 'avsc';
import type { Schema, Type } from 'avsc';
import { ThawError } from '../lib/errors.js';

/** Full Avro names of the records Thaw knows. */
export const SCHEMA_NAMES = {
  impression: 'thaw.Impression',
  click: 'thaw.Click',
  labelled: 'thaw.LabelledEvent',
  profile: 'thaw.EntityProfile',
  release: 'thaw.ModelRelease',
  softLabel: 'thaw.SoftLabel',
} as const;
export type SchemaName = (typeof SCHEMA_NAMES)[keyof typeof SCHEMA_NAMES];

/** Where schemas come from: the built-in catalog, or (later) a Confluent registry. */
export interface SchemaRegistry {
  /** Writer schema of a message; throws if the id is unknown. */
  byId(id: number): Type;
  /** Newest schema of a record name (the default reader and writer schema). */
  latest(name: string): { id: number; type: Type };
}

/** One row of the catalog. */
export interface CatalogEntry {
  id: number;
  name: SchemaName;
  version: number;
  /** File under schemas/avro/. */
  file: string;
}

/** The fixed id table. Append only. */
export const CATALOG: readonly CatalogEntry[] = [
  { id: 1, name: SCHEMA_NAMES.impression, version: 1, file: 'Impression.v1.avsc' },
  { id: 2, name: SCHEMA_NAMES.click, version: 1, file: 'Click.v1.avsc' },
  { id: 3, name: SCHEMA_NAMES.labelled, version: 1, file: 'LabelledEvent.v1.avsc' },
  { id: 4, name: SCHEMA_NAMES.labelled, version: 2, file: 'LabelledEvent.v2.avsc' },
  { id: 5, name: SCHEMA_NAMES.profile, version: 1, file: 'EntityProfile.v1.avsc' },
  { id: 6, name: SCHEMA_NAMES.release, version: 1, file: 'ModelRelease.v1.avsc' },
  { id: 7, name: SCHEMA_NAMES.softLabel, version: 1, file: 'SoftLabel.v1.avsc' },
];

// The .avsc files are not copied by tsc: from dist/schemas/ look back into the source tree.
function avroDir(): string {
  const candidates = [new URL('./avro/', import.meta.url), new URL('../../schemas/avro/', import.meta.url)];
  for (const url of candidates) {
    const dir = fileURLToPath(url);
    if (existsSync(dir)) return dir;
  }
  throw new ThawError('CONFIG_INVALID', `schemas/avro directory not found next to ${fileURLToPath(import.meta.url)}`);
}

/** Parses one .avsc file into an avsc Type. */
export function loadAvsc(file: string, dir: string = avroDir()): Type {
  const path = dir + file;
  try {
    return avro.Type.forSchema(JSON.parse(readFileSync(path, 'utf8')) as Schema);
  } catch (err) {
    throw new ThawError('CONFIG_INVALID', `cannot load Avro schema ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** A registry over a fixed table; `entries` defaults to the project's catalog. */
export class CatalogRegistry implements SchemaRegistry {
  private readonly types = new Map<number, Type>();
  private readonly newest = new Map<string, { id: number; version: number; type: Type }>();

  constructor(entries: readonly { id: number; name: string; version: number; type: Type }[]) {
    for (const e of entries) {
      if (this.types.has(e.id)) throw new ThawError('CONFIG_INVALID', `duplicate schema id ${e.id}`);
      this.types.set(e.id, e.type);
      const cur = this.newest.get(e.name);
      if (cur === undefined || e.version > cur.version) this.newest.set(e.name, { id: e.id, version: e.version, type: e.type });
    }
  }

  byId(id: number): Type {
    const t = this.types.get(id);
    if (t === undefined) throw new ThawError('DECODE_FAILED', `unknown schema id ${id}`);
    return t;
  }

  latest(name: string): { id: number; type: Type } {
    const n = this.newest.get(name);
    if (n === undefined) throw new ThawError('DECODE_FAILED', `no schema named ${name}`);
    return { id: n.id, type: n.type };
  }

  /** Ids known to this registry, ascending. */
  ids(): number[] {
    return [...this.types.keys()].sort((a, b) => a - b);
  }
}

let defaultRegistry: CatalogRegistry | undefined;

/** The project's catalog as a registry (loaded once, on first use). */
export function catalogRegistry(): CatalogRegistry {
  if (defaultRegistry === undefined) {
    const dir = avroDir();
    defaultRegistry = new CatalogRegistry(CATALOG.map((e) => ({ ...e, type: loadAvsc(e.file, dir) })));
  }
  return defaultRegistry;
}
