/**
 * The ClickHouse server sink's insert format (issue 13, point 8): the same prediction rows inserted
 * as JSONEachRow (the client stringifies each row object) and as a TabSeparated body built as one
 * string (analytics/row-codec.ts toTabSeparated), interleaved rounds, into a fresh table.
 * Per format: Node CPU to encode a 5,000-row chunk, and rows/s of whole inserts of --rows rows in
 * chunks of --insert-rows (encode + HTTP + the server's parse and part write).
 *
 *   node --import tsx bench/spine/sink-format.ts [--rows 200000] [--insert-rows 20000] [--rounds 5]
 */
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { createClient } from '@clickhouse/client';
import { PREDICTION_COLUMNS, predictionsDdl } from '../../analytics/ddl.js';
import { toJsonEachRow, toStoredRows, toTabSeparated, type StoredRow } from '../../analytics/row-codec.js';
import type { PredictionRow } from '../../analytics/types.js';
import { createLogger } from '../../lib/log.js';
import { formatNumber, markdownTable, positiveOption, quantile } from '../stats.js';
import { BenchResources, servicesFromEnv } from './fixtures.js';

type Format = 'JSONEachRow' | 'TabSeparated';
const FORMATS: readonly Format[] = ['JSONEachRow', 'TabSeparated'];

function rowsOf(n: number): PredictionRow[] {
  return Array.from({ length: n }, (_, i) => ({
    eventId: `bench-${i}-${(i * 2654435761) % 1_000_003}`,
    eventTimeMs: 1_704_067_200_000 + i * 37,
    side: 'item',
    entityId: `i${i % 5000}`,
    priorCount: i % 60,
    score: ((i * 7919) % 997) / 997,
    label: i % 5 === 0 ? 1 : 0,
    adapter: 'fm-adagrad',
    release: 'fm/20261128T120000000Z',
    namespace: 'bench',
  }));
}

/** What each format costs the sink in Node before the request: the body (TSV) or what the client builds (JSON). */
function encode(rows: readonly StoredRow[], format: Format): string {
  return format === 'TabSeparated' ? toTabSeparated(rows) : toJsonEachRow(rows);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rows: { type: 'string', default: '200000' }, 'insert-rows': { type: 'string', default: '20000' }, rounds: { type: 'string', default: '5' } } });
  const total = positiveOption('rows', values.rows);
  const perInsert = positiveOption('insert-rows', values['insert-rows']);
  const rounds = positiveOption('rounds', values.rounds);
  const log = createLogger('warn', { bench: 'sink-format' });
  const services = servicesFromEnv();
  const res = new BenchResources(services);
  const client = createClient({ url: services.clickhouseUrl });
  const table = res.table('sink_format');
  try {
    for (const sql of predictionsDdl('thaw', table)) await client.command({ query: sql });
    const stored = toStoredRows(rowsOf(total));
    const chunk = stored.slice(0, 5000);
    const encodeUs = new Map<Format, number[]>(FORMATS.map((f) => [f, []]));
    const insertRate = new Map<Format, number[]>(FORMATS.map((f) => [f, []]));
    for (let r = 0; r < rounds; r++) {
      for (const f of FORMATS) {
        const t0 = performance.now();
        for (let k = 0; k < 20; k++) encode(chunk, f);
        encodeUs.get(f)?.push(((performance.now() - t0) * 1000) / (20 * chunk.length));
        const t1 = performance.now();
        for (let i = 0; i < stored.length; i += perInsert) {
          const part = stored.slice(i, i + perInsert);
          if (f === 'TabSeparated') {
            await client.insert({ table: `thaw.${table}`, values: Readable.from([toTabSeparated(part)], { objectMode: false }), format: 'TabSeparated', columns: [...PREDICTION_COLUMNS] });
          } else {
            await client.insert({ table: `thaw.${table}`, values: part, format: 'JSONEachRow' });
          }
        }
        insertRate.get(f)?.push(stored.length / ((performance.now() - t1) / 1000));
      }
    }
    process.stdout.write(
      markdownTable(
        ['format', 'Node encode µs per row (median)', 'insert rows/s (median)'],
        FORMATS.map((f) => [f, quantile(encodeUs.get(f) ?? [], 0.5).toFixed(3), formatNumber(quantile(insertRate.get(f) ?? [], 0.5))]),
      ) + '\n',
    );
  } finally {
    await client.close();
    await res.cleanup(log);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`sink-format failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
