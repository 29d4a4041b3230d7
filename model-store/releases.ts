/**
 * Shared-parameter releases on a directory that trainers publish to and workers/servers read:
 *
 * ```
 * root/<model>/<version>/manifest.json   { model, version, parent, createdAtMs, architecture, metrics, files: { name: { sha256, bytes } } }
 * root/<model>/<version>/<file>…
 * root/<model>/CURRENT                   the promoted version (one line)
 * root/<model>/HISTORY                   JSON { previous: [...] }: versions promoted before CURRENT, oldest first
 * ```
 *
 * Publishing writes into `root/<model>/.tmp-*`, fsyncs, then renames into place, so a release is
 * either complete or absent; names starting with `.` are never listed, so a crash's leftovers are
 * ignored. Pointer files are replaced atomically the same way. One operator at a time: concurrent
 * promote/rollback of the same model is not locked.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, ThawError, errorMessage } from '../lib/errors.js';
import { fsyncDir, writeFileSynced } from './durable-fs.js';

export { packWeights, unpackWeights, type Tensor, type Dtype } from '../models/weights.js';

export interface ReleaseManifest {
  model: string;
  version: string;
  /** Version this one was trained from (lineage), null for a first release. */
  parent: string | null;
  createdAtMs: number;
  /** Model architecture description (free-form JSON, checked by the consumer of the release). */
  architecture: unknown;
  /** Offline evaluation metrics, e.g. `{ auc: 0.71 }`. */
  metrics: Record<string, number>;
  files: Record<string, { sha256: string; bytes: number }>;
}

export interface PublishInput {
  model: string;
  /** @default a UTC timestamp id `YYYYMMDDTHHMMSSmmmZ`, strictly increasing per model */
  version?: string;
  /** @default null */
  parent?: string | null;
  architecture: unknown;
  /** @default {} */
  metrics?: Record<string, number>;
  files: Record<string, Buffer>;
}

export interface LoadedRelease {
  manifest: ReleaseManifest;
  files: Record<string, Buffer>;
}

export interface ReleaseStoreOptions {
  /** Directory holding one folder per model. Created on first publish. */
  root: string;
  /** Clock for default versions and createdAtMs, in unix ms. @default Date.now */
  now?: () => number;
}

/** Model, version and file names: safe as single path segments, never hidden or special. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const TIMESTAMP_VERSION_RE = /^\d{8}T\d{9}Z$/;
const MANIFEST = 'manifest.json';

function checkName(key: string, value: string): string {
  if (!NAME_RE.test(value)) throw new ConfigError(key, `must match ${NAME_RE.source}, got ${JSON.stringify(value)}`);
  return value;
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function timestampVersion(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:.]/g, '');
}

function versionMs(v: string): number | undefined {
  if (!TIMESTAMP_VERSION_RE.test(v)) return undefined;
  const iso = `${v.slice(0, 4)}-${v.slice(4, 6)}-${v.slice(6, 8)}T${v.slice(9, 11)}:${v.slice(11, 13)}:${v.slice(13, 15)}.${v.slice(15, 18)}Z`;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Replaces `path` atomically (temp file in the same directory, fsync, rename, fsync directory). */
async function writeAtomic(dir: string, name: string, data: string): Promise<void> {
  const tmp = join(dir, `.${name}.tmp-${randomBytes(4).toString('hex')}`);
  await writeFileSynced(tmp, data);
  await rename(tmp, join(dir, name));
  await fsyncDir(dir);
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function subdirs(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    // Hidden entries are temp dirs of publishes in progress or crashed.
    return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

export class ReleaseStore {
  readonly root: string;
  private readonly now: () => number;
  private readonly lastVersionMs = new Map<string, number>();

  constructor(opts: ReleaseStoreOptions) {
    if (typeof opts.root !== 'string' || opts.root === '') throw new ConfigError('root', 'must be a directory path');
    this.root = opts.root;
    this.now = opts.now ?? Date.now;
  }

  /** Writes a complete release atomically and returns its manifest. Does not promote it. */
  async publish(input: PublishInput): Promise<ReleaseManifest> {
    const model = checkName('model', input.model);
    const modelDir = join(this.root, model);
    await mkdir(modelDir, { recursive: true });
    const version = input.version === undefined ? await this.nextVersion(model) : checkName('version', input.version);
    if (input.parent !== undefined && input.parent !== null) checkName('parent', input.parent);
    const finalDir = join(modelDir, version);
    if (await exists(finalDir)) throw new ThawError('USAGE', `release ${model}/${version} already exists`);

    const files: ReleaseManifest['files'] = {};
    for (const [name, data] of Object.entries(input.files)) {
      checkName(`files.${name}`, name);
      if (name === MANIFEST) throw new ConfigError(`files.${name}`, 'is reserved for the manifest');
      files[name] = { sha256: sha256(data), bytes: data.length };
    }
    const manifest: ReleaseManifest = {
      model,
      version,
      parent: input.parent ?? null,
      createdAtMs: this.now(),
      architecture: input.architecture,
      metrics: { ...(input.metrics ?? {}) },
      files,
    };
    const tmpDir = join(modelDir, `.tmp-${version}-${randomBytes(4).toString('hex')}`);
    await mkdir(tmpDir);
    try {
      for (const [name, data] of Object.entries(input.files)) await writeFileSynced(join(tmpDir, name), data);
      await writeFileSynced(join(tmpDir, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
      await fsyncDir(tmpDir);
      await rename(tmpDir, finalDir);
      await fsyncDir(modelDir);
    } catch (err) {
      await rm(tmpDir, { recursive: true, force: true });
      if ((err as NodeJS.ErrnoException).code === 'ENOTEMPTY' || (err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new ThawError('USAGE', `release ${model}/${version} already exists`, { cause: err });
      }
      throw err;
    }
    return manifest;
  }

  /** Manifests of complete releases (of one model, or all), oldest first. Unreadable manifests are skipped. */
  async list(model?: string): Promise<ReleaseManifest[]> {
    const models = model === undefined ? await subdirs(this.root) : [checkName('model', model)];
    const out: ReleaseManifest[] = [];
    for (const m of models) {
      for (const v of await subdirs(join(this.root, m))) {
        try {
          out.push(await this.readManifest(m, v));
        } catch {
          // A directory without a valid manifest is not a release (list is informational; load reports why).
        }
      }
    }
    return out.sort((a, b) => a.model.localeCompare(b.model) || a.createdAtMs - b.createdAtMs || a.version.localeCompare(b.version));
  }

  /** Reads a release and verifies every file's size and sha256; throws RELEASE_NOT_FOUND / RELEASE_CORRUPT. */
  async load(model: string, version: string): Promise<LoadedRelease> {
    checkName('model', model);
    checkName('version', version);
    const manifest = await this.readManifest(model, version);
    const dir = join(this.root, model, version);
    const files: Record<string, Buffer> = {};
    for (const [name, meta] of Object.entries(manifest.files)) {
      if (!NAME_RE.test(name) || name === MANIFEST) throw new ThawError('RELEASE_CORRUPT', `release ${model}/${version}: manifest names an invalid file ${JSON.stringify(name)}`);
      let data: Buffer;
      try {
        data = await readFile(join(dir, name));
      } catch (err) {
        throw new ThawError('RELEASE_CORRUPT', `release ${model}/${version}: file ${name} is unreadable: ${errorMessage(err)}`, { cause: err });
      }
      if (data.length !== meta.bytes || sha256(data) !== meta.sha256) {
        throw new ThawError('RELEASE_CORRUPT', `release ${model}/${version}: file ${name} does not match its checksum in the manifest`);
      }
      files[name] = data;
    }
    return { manifest, files };
  }

  /** The promoted version of a model, undefined if none was promoted. */
  async current(model: string): Promise<string | undefined> {
    const text = await readOptional(join(this.root, checkName('model', model), 'CURRENT'));
    const v = text?.trim();
    return v === undefined || v === '' ? undefined : v;
  }

  /** Versions promoted before the current one, oldest first. */
  async history(model: string): Promise<string[]> {
    const text = await readOptional(join(this.root, checkName('model', model), 'HISTORY'));
    if (text === undefined) return [];
    try {
      const parsed = JSON.parse(text) as { previous?: unknown };
      if (Array.isArray(parsed.previous) && parsed.previous.every((v) => typeof v === 'string')) return parsed.previous;
    } catch {
      // fall through
    }
    throw new ThawError('RELEASE_CORRUPT', `history file of model ${model} is corrupt`);
  }

  /** Makes `version` current after verifying it; the previous current goes onto the history. */
  async promote(model: string, version: string): Promise<void> {
    await this.load(model, version);
    const dir = join(this.root, model);
    const prev = await this.current(model);
    if (prev === version) return;
    if (prev !== undefined) {
      // HISTORY before CURRENT: after a crash in between, the history's top equals CURRENT, which rollback skips.
      const previous = await this.history(model);
      previous.push(prev);
      await writeAtomic(dir, 'HISTORY', JSON.stringify({ previous }) + '\n');
    }
    await writeAtomic(dir, 'CURRENT', version + '\n');
  }

  /** Makes the previously promoted version current again and returns it; RELEASE_NOT_FOUND if there is none. */
  async rollback(model: string): Promise<string> {
    const dir = join(this.root, model);
    const cur = await this.current(model);
    const previous = await this.history(model);
    while (previous.length > 0 && previous[previous.length - 1] === cur) previous.pop();
    const target = previous.pop();
    if (target === undefined) throw new ThawError('RELEASE_NOT_FOUND', `model ${model} has no previously promoted release to roll back to`);
    await this.load(model, target);
    // CURRENT before HISTORY: after a crash in between, the history's top equals CURRENT, which the next rollback skips.
    await writeAtomic(dir, 'CURRENT', target + '\n');
    await writeAtomic(dir, 'HISTORY', JSON.stringify({ previous }) + '\n');
    return target;
  }

  private async readManifest(model: string, version: string): Promise<ReleaseManifest> {
    const dir = join(this.root, model, version);
    if (!(await exists(dir))) throw new ThawError('RELEASE_NOT_FOUND', `release ${model}/${version} not found`);
    let m: ReleaseManifest;
    try {
      m = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as ReleaseManifest;
    } catch (err) {
      throw new ThawError('RELEASE_CORRUPT', `release ${model}/${version}: manifest is missing or not JSON`, { cause: err });
    }
    if (m === null || typeof m !== 'object' || m.model !== model || m.version !== version || typeof m.files !== 'object' || m.files === null) {
      throw new ThawError('RELEASE_CORRUPT', `release ${model}/${version}: manifest does not describe this release`);
    }
    return m;
  }

  /** A timestamp id later than every timestamp id already published for the model. */
  private async nextVersion(model: string): Promise<string> {
    let last = this.lastVersionMs.get(model) ?? -Infinity;
    for (const v of await subdirs(join(this.root, model))) last = Math.max(last, versionMs(v) ?? -Infinity);
    const ms = Math.max(this.now(), last + 1);
    this.lastVersionMs.set(model, ms);
    return timestampVersion(ms);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
