/**
 * `thaw serve --models FILE`: several models side by side (serving/models.ts). The file is a JSON
 * array of entries `{ name, adapter, model, namespace, releaseDir?, crossAdapter?, crossModel?,
 * adapterOptions?, safeguard?, safeguardPartitions?, <pipeline settings>? }`, validated at start-up
 * with the same field schemas and cross-key checks as the flags (config/commands/serve.ts). Every
 * error is a ConfigError whose key names the entry and the field: `models[1].namespace`.
 *
 * Fall-back: a value an entry does not give is the command's (flag, env, config file or default).
 * The adapter-specific ones (adapterOptions, crossAdapter, crossModel, safeguard,
 * safeguardPartitions) fall back only for an entry of the flags' own --adapter: another adapter's
 * partner, options and safeguard side would not fit it, so it gets their defaults.
 * Without --models the server has one model, `default`, of the flags.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../../lib/errors.js';
import { MODEL_NAME } from '../../serving/request.js';
import { readSettings } from '../../serving/resource-manager.js';
import { path } from '../fields.js';
import { checkServedModel, serveFields, type ServeConfig } from './serve.js';

/** The per-model pipeline settings an entry may set (the flags' keys). */
export const PIPELINE_KEYS = [
  'maxCandidates',
  'freshnessMs',
  'cacheEntries',
  'fetchConcurrency',
  'fetchTimeoutMs',
  'modelMaxBatch',
  'modelMaxWaitMs',
  'maxInFlight',
  'deadlineMs',
  'shedControl',
  'shedTarget',
] as const;
/** What an entry of another adapter than the flags' does not inherit. */
const ADAPTER_KEYS = ['adapterOptions', 'crossAdapter', 'crossModel', 'safeguard', 'safeguardPartitions'] as const;

const entrySchema = serveFields
  .pick({ adapterOptions: true, crossAdapter: true, crossModel: true, safeguard: true, safeguardPartitions: true, releaseDir: true, ...Object.fromEntries(PIPELINE_KEYS.map((k) => [k, true])) } as {
    [K in (typeof PIPELINE_KEYS)[number] | (typeof ADAPTER_KEYS)[number] | 'releaseDir']: true;
  })
  .extend({
    name: z.string().regex(MODEL_NAME, 'expected letters, digits, - and _ (1 to 64)'),
    // Required in an entry (no fall-back): which states, of which release, in which namespace.
    adapter: serveFields.shape.adapter.removeDefault(),
    model: serveFields.shape.model.removeDefault(),
    namespace: serveFields.shape.namespace.removeDefault(),
    releaseDir: path,
  })
  .strict()
  .superRefine(checkServedModel);

/** One served model, every value resolved. */
export type ServedModelConfig = z.output<typeof entrySchema>;

/** The keys of one model taken from the command's config (the flags' model, or an entry's fall-backs). */
function fallbacksOf(cfg: ServeConfig, adapter: string | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = { releaseDir: cfg.releaseDir };
  for (const k of PIPELINE_KEYS) out[k] = cfg[k];
  if (adapter === cfg.adapter) for (const k of ADAPTER_KEYS) if (cfg[k] !== undefined) out[k] = cfg[k];
  return out;
}

/** `models[i].a.b` of a zod issue path under entry i. */
function keyOf(index: number, issuePath: readonly (string | number)[]): string {
  return `models[${index}]` + issuePath.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('');
}

/**
 * The models `thaw serve` serves: the entries of `cfg.models` (read with `readFile`), else the one
 * model of the flags, named `default`. Throws ConfigError naming the entry and key.
 */
export function servedModels(cfg: ServeConfig, readFile: (file: string) => string = (f) => readFileSync(f, 'utf8')): ServedModelConfig[] {
  // --settings (thaw serve tune's output) replaces the flags' stage settings: entries fall back on them.
  if (cfg.settings !== undefined) cfg = { ...cfg, ...readSettings(cfg.settings, readFile) };
  if (cfg.models === undefined) {
    const own = { name: 'default', adapter: cfg.adapter, model: cfg.model, namespace: cfg.namespace, ...fallbacksOf(cfg, cfg.adapter) };
    return [entrySchema.parse(own)];
  }
  let text: string;
  try {
    text = readFile(cfg.models);
  } catch (err) {
    throw new ConfigError('models', `cannot read ${cfg.models}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError('models', `${cfg.models} is not JSON: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (!Array.isArray(raw)) throw new ConfigError('models', `${cfg.models} must hold a JSON array of models, got ${raw === null ? 'null' : typeof raw}`);
  if (raw.length === 0) throw new ConfigError('models', `${cfg.models} lists no model`);
  const seen = new Map<string, number>();
  return raw.map((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new ConfigError(`models[${i}]`, 'expected an object {name, adapter, model, namespace, ...}');
    const given = entry as Record<string, unknown>;
    const res = entrySchema.safeParse({ ...fallbacksOf(cfg, typeof given.adapter === 'string' ? given.adapter : undefined), ...given });
    if (!res.success) {
      const issue = res.error.issues[0];
      if (issue === undefined) throw new ConfigError(`models[${i}]`, 'invalid');
      if (issue.code === 'unrecognized_keys') throw new ConfigError(keyOf(i, [...issue.path, issue.keys[0] ?? '?']), 'unknown key');
      const message = issue.code === 'invalid_type' && issue.received === 'undefined' ? 'required' : issue.message;
      throw new ConfigError(keyOf(i, issue.path), message.charAt(0).toLowerCase() + message.slice(1));
    }
    const first = seen.get(res.data.name);
    if (first !== undefined) throw new ConfigError(`models[${i}].name`, `${JSON.stringify(res.data.name)} is already the name of models[${first}]: names must be unique`);
    seen.set(res.data.name, i);
    return res.data;
  });
}
