/**
 * `npm run bench -- --only state`: bytes per entity state in Redis for every adapter, and the
 * bound that keeps the total finite.
 *
 *   node --import tsx bench/state/run.ts [--entities 20000] [--batch 1000] [--sample 500]
 *        [--ttl-seconds 2592000] [--max-entities 0] [--out .thaw/bench/state.json]
 *
 * Per adapter (sizes from the adapter classes, bench/state/sizes.ts), on the real Redis
 * (THAW_REDIS_URL): N states of its size are written through RedisEntityStore in batches, once
 * without a cap and once with the last-seen index on (a cap above N: the index's cost, no
 * eviction); bytes per entity by MEMORY USAGE (sampled) and by the INFO used_memory delta (see
 * measure.ts). Then one run with a cap of N/4 shows the bound holding. Every key is removed at the
 * end (also on Ctrl-C). Markdown on stdout, progress on stderr, JSON in --out. Never asserts.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '../../lib/errors.js';
import { createLogger } from '../../lib/log.js';
import { createRedis } from '../../model-store/redis.js';
import { DEFAULT_STATE_TTL_SECONDS } from '../../model-store/redis-store.js';
import { syntheticStream } from '../../sources/synthetic.js';
import { markdownTable } from '../stats.js';
import { dropPrefix, measureStateBytes, type Measurement } from './measure.js';
import { adapterSizes, type AdapterSize } from './sizes.js';

const ROOT = resolve(import.meta.dirname, '../..');
const GIB = 2 ** 30;

function whole(key: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new ConfigError(key, `must be a whole number >= ${min}, got "${v}"`);
  return n;
}

const int = (x: number): string => Math.round(x).toLocaleString('en-US');

function ttlText(s: number): string {
  if (s === 0) return 'no TTL';
  if (s % 86_400 === 0) return `TTL ${s / 86_400} d idle`;
  return `TTL ${int(s)} s idle`;
}

interface Row {
  size: AdapterSize;
  plain: Measurement;
  tracked: Measurement;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      entities: { type: 'string', default: '20000' },
      batch: { type: 'string', default: '1000' },
      sample: { type: 'string', default: '500' },
      'ttl-seconds': { type: 'string', default: String(DEFAULT_STATE_TTL_SECONDS) },
      'max-entities': { type: 'string', default: '0' },
      out: { type: 'string', default: '.thaw/bench/state.json' },
    },
  });
  const entities = whole('entities', values.entities, 4);
  const batch = whole('batch', values.batch, 1);
  const sample = whole('sample', values.sample, 1);
  const ttlSeconds = whole('ttl-seconds', values['ttl-seconds'], 0);
  const maxEntities = whole('max-entities', values['max-entities'], 0);
  const log = createLogger((process.env.THAW_LOG_LEVEL as 'info' | undefined) ?? 'info', { bench: 'state' });
  const url = process.env.THAW_REDIS_URL ?? 'redis://127.0.0.1:16379';
  const redis = createRedis({ url });
  // Short prefixes: the key length is part of what is measured (a deployment's is `thaw`).
  const run = randomBytes(3).toString('hex');
  const prefixes: string[] = [];
  const prefix = (what: string): string => {
    const p = `bs${run}${what}`;
    prefixes.push(p);
    return p;
  };
  const cleanup = async (): Promise<void> => {
    for (const p of prefixes) await dropPrefix(redis, p);
  };
  const onSignal = (): void => {
    void cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const started = Date.now();
  try {
    const sizes = adapterSizes([...syntheticStream({ events: 5000 }).events()]);
    log.info('state bench starting', { entities, batch, ttlSeconds, maxEntities, adapters: sizes.map((s) => `${s.adapter}:${s.floats}`) });
    const rows: Row[] = [];
    for (const [i, size] of sizes.entries()) {
      const scope = { namespace: 'live', side: size.side, adapter: size.adapter };
      const common = { redis, scope, floats: size.floats, entities, batch, sample, ttlSeconds, ...(size.recent === undefined ? {} : { recent: size.recent }) };
      const plain = await measureStateBytes({ ...common, prefix: prefix(`p${i}`), maxEntities: 0 });
      await cleanup();
      const tracked = await measureStateBytes({ ...common, prefix: prefix(`t${i}`), maxEntities: entities + 1 });
      await cleanup();
      log.info('measured', { adapter: size.adapter, floats: size.floats, memoryUsage: plain.memoryUsagePerKey, infoDelta: plain.infoDeltaPerEntity, index: tracked.indexBytesPerEntity });
      rows.push({ size, plain, tracked });
    }
    const cap = Math.floor(entities / 4);
    const fm = sizes.find((s) => s.adapter === 'fm-adagrad' && s.recent === undefined);
    if (fm === undefined) throw new Error('adapterSizes lists no fm-adagrad state without recent views');
    const capped = await measureStateBytes({
      redis,
      scope: { namespace: 'live', side: fm.side, adapter: fm.adapter },
      floats: fm.floats,
      entities,
      batch,
      sample,
      ttlSeconds,
      prefix: prefix('cap'),
      maxEntities: cap,
    });
    await cleanup();

    const bound = (bytesPerEntity: number): string => {
      const ttl = ttlText(ttlSeconds);
      if (maxEntities === 0) return `${ttl}; no cap`;
      return `${ttl}; cap ${int(maxEntities)}/scope ≤ ${((maxEntities * bytesPerEntity) / GIB).toFixed(2)} GiB`;
    };
    const load = loadavg()
      .map((x) => x.toFixed(2))
      .join(', ');
    const lines: string[] = [];
    lines.push(`#### Redis bytes per entity state: ${int(entities)} entities per adapter, batches of ${int(batch)}, Redis at ${url.replace(/\/\/[^@]*@/, '//')}`);
    lines.push('');
    lines.push(
      `load average ${load}; state keys \`<prefix>:live:<side>:<adapter>:{<side>-<n>}\` of about ${rows[1]?.plain.keyBytes ?? 0} bytes (a 10-character prefix; the default \`thaw\` is 6 shorter); TTL on every key.`,
    );
    lines.push('');
    lines.push(
      markdownTable(
        ['adapter', 'side', 'floats', 'payload B', 'Redis B/entity (MEMORY USAGE)', 'Redis B/entity (INFO Δ)', '+ cap index B/entity', 'entities per GiB (no cap / cap)', 'bound in force'],
        rows.map(({ size, plain, tracked }) => [
          size.adapter,
          size.side,
          size.floats === 0 ? '0' : `${size.floats} (${size.formula})`,
          String(plain.payloadBytes),
          int(plain.memoryUsagePerKey),
          int(plain.infoDeltaPerEntity),
          int(tracked.indexBytesPerEntity),
          `${int(GIB / plain.infoDeltaPerEntity)} / ${int(GIB / tracked.infoDeltaPerEntity)}`,
          bound(maxEntities > 0 ? tracked.infoDeltaPerEntity : plain.infoDeltaPerEntity),
        ]),
      ),
    );
    lines.push('');
    lines.push(
      markdownTable(
        ['write path (putMany, one EVALSHA per batch)', 'entities/s no cap', 'entities/s with index', 'INFO Δ B/entity with index'],
        rows.map(({ size, plain, tracked }) => [size.adapter, int(plain.writesPerSec), int(tracked.writesPerSec), int(tracked.infoDeltaPerEntity)]),
      ),
    );
    lines.push('');
    lines.push(`Cap check (${fm.adapter}, maxEntities ${int(cap)}): wrote ${int(entities)} entities, ${int(capped.entitiesKept)} kept; entities/s ${int(capped.writesPerSec)} while evicting.`);
    process.stdout.write(lines.join('\n') + '\n');

    const out = resolve(ROOT, values.out);
    await mkdir(dirname(out), { recursive: true });
    await writeFile(
      out,
      JSON.stringify({ bench: 'state', entities, batch, ttlSeconds, maxEntities, loadavg: loadavg(), wallSec: (Date.now() - started) / 1000, rows, capCheck: { cap, ...capped } }, null, 2) + '\n',
    );
    log.info('state bench done', { out, wallSec: (Date.now() - started) / 1000 });
  } finally {
    await cleanup();
    await redis.quit();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`state bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
