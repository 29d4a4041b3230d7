import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { z } from 'zod';
import { ConfigError, ThawError } from '../lib/errors.js';
import { at } from '../lib/at.js';
import { convertText, deepMerge, setPath } from './convert.js';
import { fieldAt, topLevelKeys } from './describe.js';
import { CONFIG_FILE_ENV, ENV_VARS } from './env.js';
import { isSecretKey, redactMessage } from './redact.js';
import type { CommandSpec } from './types.js';

/** Where a command's configuration comes from; everything is injectable for tests. */
export interface LoadOptions {
  /** Environment variables. @default process.env */
  env?: Record<string, string | undefined>;
  /** Reads the config file. @default fs.readFileSync(path, 'utf8') */
  readFile?: (path: string) => string;
  /**
   * Top-level keys a shared config file may hold for other commands; they are ignored instead of
   * rejected as unknown. @default none
   */
  sharedFileKeys?: readonly string[];
}

/** What the command line asked for besides the config itself. */
export interface Loaded<T> {
  config: T;
  /** `--help` was given: print usage instead of running. */
  help: boolean;
  /** Path of the config file that was read, if any. */
  configFile?: string;
}

/** Flags every command accepts. */
const COMMON_FLAGS = {
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/**
 * Builds a command's config: schema defaults < config file (`--config` or THAW_CONFIG) < env
 * vars < flags, then validates. Throws ConfigError naming the key (exit code 2) on any bad value,
 * and ThawError('USAGE') on unknown flags or stray arguments.
 */
export function loadConfig<S extends z.ZodTypeAny>(spec: CommandSpec<S>, argv: readonly string[], opts: LoadOptions = {}): Loaded<z.output<S>> {
  const env = opts.env ?? process.env;
  const { flagLayer, help, configPath } = parseCommandLine(spec, argv);
  const file = configPath ?? nonEmpty(env[CONFIG_FILE_ENV]);
  const fileLayer = file === undefined ? {} : readConfigFile(spec, file, opts);
  const envLayer = envToLayer(spec, env);
  const merged = deepMerge(deepMerge(fileLayer, envLayer), flagLayer);
  if (help) return { config: undefined, help: true, ...(file === undefined ? {} : { configFile: file }) };
  const config = validate(spec.schema, merged);
  return { config, help: false, ...(file === undefined ? {} : { configFile: file }) };
}

/**
 * Validates `schema` against the environment variables alone (ENV_VARS whose key the schema has),
 * with `overrides` (e.g. a command's own `--kafka`) on top. For the commands that parse their own
 * flags (`thaw train --online`, `thaw release`): their connections still get TLS, SASL and ACL
 * settings from THAW_KAFKA_* / THAW_REDIS_*, validated the same way (ConfigError naming the key).
 */
export function loadFromEnv<S extends z.ZodTypeAny>(schema: S, env: Record<string, string | undefined>, overrides: Record<string, unknown> = {}): z.output<S> {
  const spec: CommandSpec<S> = { name: 'env', summary: '', schema, flags: [] };
  return validate(schema, deepMerge(envToLayer(spec, env), overrides));
}

/** Validates a merged raw object against a schema, turning the first issue into a ConfigError. */
export function validate<S extends z.ZodTypeAny>(schema: S, raw: unknown): z.output<S> {
  const res = schema.safeParse(raw);
  if (res.success) return res.data as z.output<S>;
  const issue = at(res.error.issues, 0, 'validation issue');
  const path = issue.path.filter((p): p is string => typeof p === 'string');
  let key = path.join('.');
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    key = [...path, issue.keys[0] ?? '?'].join('.');
    message = 'unknown key';
  } else if (issue.code === 'invalid_type' && issue.received === 'undefined') {
    message = 'required';
  }
  message = message.charAt(0).toLowerCase() + message.slice(1);
  // Zod's enum and literal messages quote the received value: never for a secret.
  if (isSecretKey(key)) message = message.replace(/,?\s*received\b.*$/i, '');
  throw new ConfigError(key === '' ? '(root)' : key, redactMessage(message, secretValues(raw)));
}

function parseCommandLine(spec: CommandSpec, argv: readonly string[]): { flagLayer: Record<string, unknown>; help: boolean; configPath?: string } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { ...COMMON_FLAGS };
  for (const f of spec.flags) options[f.flag] = { type: f.kind === 'boolean' ? 'boolean' : 'string' };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const unknown = /^Unknown option '(-{1,2}[^']+)'/.exec(msg)?.[1];
    if (unknown !== undefined) {
      const near = nearest(unknown.replace(/^-+/, '').split('=')[0] ?? '', Object.keys(options));
      throw new ThawError('USAGE', `unknown option ${unknown}${near === undefined ? '' : ` (did you mean --${near}?)`} (see: thaw ${spec.name} --help)`, { cause: err });
    }
    throw new ThawError('USAGE', `${msg.split('\n')[0] ?? msg} (see: thaw ${spec.name} --help)`, { cause: err });
  }
  const { values, positionals } = parsed;
  const help = values.help === true;
  const flagLayer: Record<string, unknown> = {};
  for (const f of spec.flags) {
    const v = values[f.flag];
    if (v === undefined) continue;
    setPath(flagLayer, f.key, convertText(f.key, f.kind, v as string | boolean));
  }
  const pos = spec.positionals ?? [];
  if (positionals.length > pos.length && !help) {
    throw new ThawError('USAGE', `unexpected argument "${positionals[pos.length] ?? ''}" (see: thaw ${spec.name} --help)`);
  }
  pos.forEach((p, i) => {
    const v = positionals[i];
    if (v !== undefined) setPath(flagLayer, p.key, v);
  });
  const configPath = typeof values.config === 'string' ? values.config : undefined;
  return { flagLayer, help, ...(configPath === undefined ? {} : { configPath }) };
}

function envToLayer(spec: CommandSpec, env: Record<string, string | undefined>): Record<string, unknown> {
  const layer: Record<string, unknown> = {};
  for (const e of ENV_VARS) {
    const text = nonEmpty(env[e.env]);
    if (text === undefined || fieldAt(spec.schema, e.key) === undefined) continue;
    try {
      setPath(layer, e.key, convertText(e.key, e.kind, text));
    } catch (err) {
      if (err instanceof ConfigError) throw new ConfigError(e.key, `${err.message.replace(/^invalid config "[^"]*": /, '')} (from ${e.env})`);
      throw err;
    }
  }
  return layer;
}

function readConfigFile(spec: CommandSpec, path: string, opts: LoadOptions): Record<string, unknown> {
  let text: string;
  try {
    text = (opts.readFile ?? ((p: string) => readFileSync(p, 'utf8')))(path);
  } catch (err) {
    throw new ConfigError('config', `cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    // JSON.parse messages can quote the file's text (and so a secret): keep only the position.
    const pos = /position (\d+)/.exec(err instanceof Error ? err.message : '')?.[1];
    throw new ConfigError('config', `config file ${path} is not valid JSON${pos === undefined ? '' : ` (at position ${pos})`}`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new ConfigError('config', `config file ${path} must hold a JSON object`);
  const own = new Set(topLevelKeys(spec.schema));
  const shared = new Set(opts.sharedFileKeys ?? []);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
    if (own.has(k) || !shared.has(k)) out[k] = v; // unknown keys stay, so the strict schema names them
  }
  return out;
}

function secretValues(raw: unknown, key = ''): string[] {
  if (typeof raw === 'string') return key !== '' && isSecretKey(key) && raw.length > 0 ? [raw] : [];
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
    return Object.entries(raw as Record<string, unknown>).flatMap(([k, v]) => secretValues(v, k));
  }
  return [];
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s.trim() === '' ? undefined : s;
}

/** The known flag closest to `typed` (edit distance at most a third of its length, at least 2), if any. */
export function nearest(typed: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(typed.length / 3)) + 1;
  for (const k of known) {
    const d = editDistance(typed, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance (two rows). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}
