/**
 * `thaw release publish|list|promote|rollback`: releases of shared parameters in a release
 * directory (model-store/releases.ts), announced to running workers on Kafka and as a Redis
 * pointer when `--kafka` / `--redis` are given (model-store/release-announce.ts).
 *
 * Exit codes: 0 ok, 1 failure, 2 usage.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ThawError, errorMessage } from '../../lib/errors.js';
import { createLogger, type Logger } from '../../lib/log.js';
import { FactorizationMachine } from '../../models/fm.js';
import { bundleCtr, bundleFm, bundleUser, ctrFromRelease, fmFromRelease, userModelFromRelease, type Bundle, type BundleOptions } from '../../models/onnx/bundle.js';
import { announceRelease, type AnnounceOptions } from '../../model-store/release-announce.js';
import { ReleaseStore } from '../../model-store/releases.js';
import { createRedis } from '../../model-store/redis.js';
import { EventProducer } from '../../streams/producer.js';
import { kafkaRedisSchema } from '../../config/connections.js';
import { loadFromEnv } from '../../config/load.js';
import { kafkaConnection, redisConnection } from '../connect.js';

export const usage = `Usage:
  thaw release publish  --release-dir DIR --model M --from PATH [options]
  thaw release list     --release-dir DIR [--model M] [--json]
  thaw release promote  VERSION --release-dir DIR --model M [announce options]
  thaw release rollback --release-dir DIR --model M [announce options]

publish writes weights.bin, model.onnx and manifest.json atomically, then promotes the release
(unless --no-promote) and announces it. --from is an FM file (FactorizationMachine.toBuffer, as
written by \`thaw train fm\`) or a release directory (re-exported from its weights).

Options:
  --version V                  release version (default: a UTC timestamp id)
  --parent V                   lineage (default: the current release)
  --metrics k=v[,k=v]          evaluation metrics recorded in the manifest, numbers
  --entity-state-policy P      keep | reinit: whether entity states stay valid (default keep)
  --adapter NAME --state-size N  entity state layout the release is for (default: the model's)
  --no-promote                 publish only
  --kafka HOST:PORT[,..]       announce on Kafka (topic --topic, default thaw.releases)
  --redis URL                  set the pointer \${prefix}:release:\${model} (--redis-prefix, default thaw)
`;

export interface ReleaseIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  logger: Logger;
  /** Environment of the THAW_KAFKA_* / THAW_REDIS_* connection settings. @default process.env */
  env?: Record<string, string | undefined>;
}

class UsageError extends Error {}

const OPTIONS = {
  'release-dir': { type: 'string' },
  model: { type: 'string' },
  from: { type: 'string' },
  version: { type: 'string' },
  parent: { type: 'string' },
  metrics: { type: 'string' },
  'entity-state-policy': { type: 'string' },
  adapter: { type: 'string' },
  'state-size': { type: 'string' },
  'no-promote': { type: 'boolean' },
  kafka: { type: 'string' },
  topic: { type: 'string' },
  redis: { type: 'string' },
  'redis-prefix': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

function need(values: Values, key: 'release-dir' | 'model' | 'from'): string {
  const v = values[key];
  if (v === undefined || v === '') throw new UsageError(`--${key} is required`);
  return v;
}

function parseMetrics(text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (text === undefined || text === '') return out;
  for (const part of text.split(',')) {
    const [k, v] = part.split('=');
    const x = Number(v);
    if (k === undefined || k === '' || v === undefined || !Number.isFinite(x)) throw new UsageError(`--metrics: expected k=number, got ${JSON.stringify(part)}`);
    out[k] = x;
  }
  return out;
}

function bundleOptions(values: Values): BundleOptions {
  const opts: BundleOptions = {};
  const policy = values['entity-state-policy'];
  if (policy !== undefined) {
    if (policy !== 'keep' && policy !== 'reinit') throw new UsageError(`--entity-state-policy must be keep or reinit, got ${policy}`);
    opts.entityStatePolicy = policy;
  }
  if ((values.adapter === undefined) !== (values['state-size'] === undefined)) throw new UsageError('--adapter and --state-size go together');
  if (values.adapter !== undefined) {
    const n = Number(values['state-size']);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`--state-size must be an integer >= 0, got ${String(values['state-size'])}`);
    opts.stateLayout = { adapter: values.adapter, stateSize: n };
  }
  return opts;
}

/** Reads `--from`: an FM file or a release directory. */
async function bundleFrom(from: string, opts: BundleOptions): Promise<Bundle> {
  let isDir: boolean;
  try {
    isDir = (await stat(from)).isDirectory();
  } catch (err) {
    throw new ThawError('RELEASE_NOT_FOUND', `--from ${from}: ${errorMessage(err)}`, { cause: err });
  }
  if (isDir) {
    // A release directory <root>/<model>/<version>: load it verified, re-export from its weights.
    const version = from.replace(/\/+$/, '').split('/').pop() ?? '';
    const modelDir = join(from, '..');
    const model = modelDir.replace(/\/+$/, '').split('/').pop() ?? '';
    const rel = await new ReleaseStore({ root: join(modelDir, '..') }).load(model, version);
    const type = (rel.manifest.architecture as { type?: unknown } | null)?.type;
    if (type === 'fm') return bundleFm(fmFromRelease(rel), opts);
    if (type === 'coldnas' || type === 'fixed-adaptive') return bundleUser(userModelFromRelease(rel), opts);
    return bundleCtr(ctrFromRelease(rel), opts);
  }
  const buf = await readFile(from);
  if (buf.length >= 4 && buf.toString('latin1', 0, 4) === 'THFM') return bundleFm(FactorizationMachine.fromBuffer(buf), opts);
  throw new ThawError('DATA_FORMAT', `--from ${from}: not an FM file or a release directory`);
}

async function withAnnouncer<T>(values: Values, io: ReleaseIo, fn: (a: AnnounceOptions | undefined) => Promise<T>): Promise<T> {
  // TLS, SASL and the Redis user come from THAW_KAFKA_* / THAW_REDIS_* (validated like `thaw run`'s).
  const conn = loadFromEnv(kafkaRedisSchema, io.env ?? process.env, {
    ...(values.kafka === undefined ? {} : { kafka: { brokers: values.kafka.split(',') } }),
    ...(values.redis === undefined ? {} : { redis: { url: values.redis } }),
  });
  const producer = values.kafka === undefined ? undefined : new EventProducer({ kafka: kafkaConnection(conn.kafka), logger: io.logger });
  const redis = values.redis === undefined ? undefined : createRedis(redisConnection(conn.redis), io.logger);
  try {
    if (producer !== undefined) await producer.connect();
    const opts: AnnounceOptions = {};
    if (producer !== undefined) opts.producer = producer;
    if (values.topic !== undefined) opts.topic = values.topic;
    if (redis !== undefined) opts.redis = redis;
    if (values['redis-prefix'] !== undefined) opts.redisPrefix = values['redis-prefix'];
    return await fn(producer === undefined && redis === undefined ? undefined : opts);
  } finally {
    await producer?.close();
    if (redis !== undefined) await redis.quit().catch(() => undefined);
  }
}

async function announce(store: ReleaseStore, model: string, version: string, values: Values, io: ReleaseIo): Promise<void> {
  await withAnnouncer(values, io, async (a) => {
    if (a === undefined) return;
    await announceRelease(store, model, version, a);
    io.stderr.write(`announced ${model}/${version}${a.producer ? ' on Kafka' : ''}${a.redis ? ' in Redis' : ''}\n`);
  });
}

async function publish(values: Values, io: ReleaseIo): Promise<void> {
  const store = new ReleaseStore({ root: need(values, 'release-dir') });
  const model = need(values, 'model');
  const bundle = await bundleFrom(need(values, 'from'), bundleOptions(values));
  const parent = values.parent ?? (await store.current(model)) ?? null;
  const manifest = await store.publish({
    model,
    ...(values.version !== undefined ? { version: values.version } : {}),
    parent,
    architecture: bundle.architecture,
    metrics: parseMetrics(values.metrics),
    files: bundle.files,
  });
  io.stdout.write(`published ${model}/${manifest.version}\n`);
  if (values['no-promote'] === true) return;
  await store.promote(model, manifest.version);
  io.stdout.write(`promoted ${model}/${manifest.version}\n`);
  await announce(store, model, manifest.version, values, io);
}

async function list(values: Values, io: ReleaseIo): Promise<void> {
  const store = new ReleaseStore({ root: need(values, 'release-dir') });
  const manifests = await store.list(values.model);
  const current = new Map<string, string | undefined>();
  for (const m of manifests) if (!current.has(m.model)) current.set(m.model, await store.current(m.model));
  if (values.json === true) {
    const rows = manifests.map((m) => ({
      model: m.model,
      version: m.version,
      parent: m.parent,
      createdAtMs: m.createdAtMs,
      current: current.get(m.model) === m.version,
      type: (m.architecture as { type?: unknown } | null)?.type ?? null,
      metrics: m.metrics,
    }));
    io.stdout.write(JSON.stringify({ releases: rows }) + '\n');
    return;
  }
  for (const m of manifests) {
    const mark = current.get(m.model) === m.version ? '*' : ' ';
    const arch = (m.architecture as { type?: unknown } | null)?.type ?? '?';
    const type = typeof arch === 'string' ? arch : JSON.stringify(arch);
    const metrics = Object.entries(m.metrics)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    io.stdout.write(`${mark} ${m.model}\t${m.version}\t${type}\t${new Date(m.createdAtMs).toISOString()}\tparent=${m.parent ?? '-'}\t${metrics}\n`);
  }
}

async function promote(values: Values, positionals: string[], io: ReleaseIo): Promise<void> {
  const version = positionals[0] ?? values.version;
  if (version === undefined) throw new UsageError('promote needs a VERSION');
  const store = new ReleaseStore({ root: need(values, 'release-dir') });
  const model = need(values, 'model');
  await store.promote(model, version);
  io.stdout.write(`promoted ${model}/${version}\n`);
  await announce(store, model, version, values, io);
}

async function rollback(values: Values, io: ReleaseIo): Promise<void> {
  const store = new ReleaseStore({ root: need(values, 'release-dir') });
  const model = need(values, 'model');
  const version = await store.rollback(model);
  io.stdout.write(`rolled back ${model} to ${version}\n`);
  await announce(store, model, version, values, io);
}

/** Runs `thaw release …` with argv after `release`; resolves to the exit code. */
export async function run(argv: string[], io: Partial<ReleaseIo> = {}): Promise<number> {
  const full: ReleaseIo = { stdout: io.stdout ?? process.stdout, stderr: io.stderr ?? process.stderr, logger: io.logger ?? createLogger('warn') };
  try {
    const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    const [sub, ...rest] = positionals;
    if (values.help === true) {
      full.stdout.write(usage);
      return 0;
    }
    switch (sub) {
      case 'publish':
        await publish(values, full);
        return 0;
      case 'list':
        await list(values, full);
        return 0;
      case 'promote':
        await promote(values, rest, full);
        return 0;
      case 'rollback':
        await rollback(values, full);
        return 0;
      default:
        throw new UsageError(sub === undefined ? 'expected a subcommand' : `unknown subcommand ${sub}`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: unknown }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (err as { code?: unknown }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      full.stderr.write(`thaw release: ${errorMessage(err)}\n${usage}`);
      return 2;
    }
    const code = err instanceof ThawError ? ` [${err.code}]` : '';
    full.stderr.write(`thaw release: ${errorMessage(err)}${code}\n`);
    return err instanceof ThawError && err.code === 'CONFIG_INVALID' ? 2 : 1;
  }
}
