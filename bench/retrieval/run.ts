/**
 * `npm run bench -- --only retrieval [--json]`: the ANN index of retrieval/index on synthetic
 * clustered unit vectors (bench/retrieval/vectors.ts).
 *
 *   node --import tsx bench/retrieval/run.ts [--items 1000000] [--dim 64] [--k 100] [--clusters 1000]
 *     [--efs 100,200,400,800] [--latency-queries 2000] [--recall-queries 100] [--ef-serve 200]
 *     [--insert-rates 10000,0] [--insert-seconds 5] [--search-rate 1000] [--seal-items 20000] [--growing-sizes 1000,5000,10000]
 *     [--m 16] [--ef-construction 100] [--seal-chunk 8] [--json] [--out .thaw/bench/retrieval.json]
 *
 * Phases: build the graph (progress on stderr every 50,000 items); exact search over every item
 * (the ceiling, and the truth for recall on --recall-queries); HNSW + merge search latency and
 * recall@k at each --efs; exact scan of growing segments of several sizes (row-major, and
 * dim-major at the largest, for the layout choice); inserts into the growing segment while searches
 * arrive at --search-rate (open loop) and the background sealer seals (--insert-rates per second; 0 = as fast as the
 * loop allows); sealing throughput alone. Prints Markdown tables; never asserts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import { AnnIndex } from '../../retrieval/index/ann-index.js';
import { formatNumber, markdownTable, positiveOption } from '../stats.js';
import { build, dimMajorScan, exactTruth, growingScan, percentilesUs, sealThroughput, searchAt, servingWhileInserting, type Percentiles, type ServingWhileInserting } from './measure.js';
import { ClusteredVectors } from './vectors.js';

const { values } = parseArgs({
  options: {
    items: { type: 'string', default: '1000000' },
    dim: { type: 'string', default: '64' },
    k: { type: 'string', default: '100' },
    clusters: { type: 'string', default: '1000' },
    efs: { type: 'string', default: '100,200,400,800' },
    'latency-queries': { type: 'string', default: '2000' },
    'recall-queries': { type: 'string', default: '100' },
    'ef-serve': { type: 'string', default: '200' },
    'insert-rates': { type: 'string', default: '10000,0' },
    'insert-seconds': { type: 'string', default: '5' },
    'search-rate': { type: 'string', default: '1000' },
    'seal-items': { type: 'string', default: '20000' },
    'growing-sizes': { type: 'string', default: '1000,5000,10000' },
    m: { type: 'string', default: '16' },
    'ef-construction': { type: 'string', default: '100' },
    'seal-chunk': { type: 'string', default: '8' },
    json: { type: 'boolean', default: false },
    out: { type: 'string', default: '.thaw/bench/retrieval.json' },
  },
});

const list = (key: string, s: string, allowZero = false): number[] => s.split(',').map((x) => (allowZero && x.trim() === '0' ? 0 : positiveOption(key, x.trim())));
const N = positiveOption('items', values.items);
const DIM = positiveOption('dim', values.dim);
const K = positiveOption('k', values.k);
const CLUSTERS = positiveOption('clusters', values.clusters);
const EFS = list('efs', values.efs);
const LATENCY_QUERIES = positiveOption('latency-queries', values['latency-queries']);
const RECALL_QUERIES = positiveOption('recall-queries', values['recall-queries']);
const EF_SERVE = positiveOption('ef-serve', values['ef-serve']);
const INSERT_RATES = list('insert-rates', values['insert-rates'], true);
const INSERT_SECONDS = positiveOption('insert-seconds', values['insert-seconds'], false);
const SEARCH_RATE = positiveOption('search-rate', values['search-rate']);
const SEAL_ITEMS = positiveOption('seal-items', values['seal-items']);
const GROWING_SIZES = list('growing-sizes', values['growing-sizes']);

const log = (phase: string, fields: Record<string, unknown> = {}): void => void process.stderr.write(JSON.stringify({ bench: 'retrieval', phase, ...fields }) + '\n');

const started = new Date();
const load0 = loadavg();
const gen = new ClusteredVectors({ dim: DIM, clusters: CLUSTERS, seed: 42 });
log('generate', { items: N, dim: DIM, clusters: CLUSTERS });
const items = gen.next(N);
const latencyQueries = gen.next(LATENCY_QUERIES);
const recallQueries = gen.next(RECALL_QUERIES);

const index = await AnnIndex.create({
  dim: DIM,
  m: positiveOption('m', values.m),
  efConstruction: positiveOption('ef-construction', values['ef-construction']),
  sealChunk: positiveOption('seal-chunk', values['seal-chunk']),
  initialCapacity: N + 1024,
});
const built = build(index, items, DIM);
log('built', { perSecond: Math.round(built.perSecond), seconds: Math.round(built.seconds) });

log('exact', { queries: RECALL_QUERIES });
const exact = exactTruth(items, DIM, recallQueries, K);
const searches: Array<{ ef: number; latency: Percentiles; recall: number }> = [];
for (const ef of EFS) {
  log('search', { ef });
  searches.push({ ef, ...searchAt(index, DIM, K, ef, latencyQueries, recallQueries, exact.truth) });
}

log('growing-scan', { sizes: GROWING_SIZES });
const scanQueries = gen.next(520);
const growing = GROWING_SIZES.map((size) => ({ size, layout: 'row-major', latency: growingScan(gen, DIM, size, K, scanQueries) }));
const largest = Math.max(...GROWING_SIZES);
growing.push({ size: largest, layout: 'dim-major', latency: dimMajorScan(gen, DIM, largest, K, scanQueries) });

const serving: ServingWhileInserting[] = [];
for (const rate of INSERT_RATES) {
  log('serving-while-inserting', { targetPerSecond: rate, seconds: INSERT_SECONDS });
  index.sealAll();
  serving.push(await servingWhileInserting(index, gen, DIM, K, EF_SERVE, rate, SEARCH_RATE, INSERT_SECONDS, latencyQueries, `live${rate}-`));
}
log('seal-throughput', { items: SEAL_ITEMS });
const sealPerSecond = sealThroughput(index, gen, DIM, SEAL_ITEMS, 'seal-');
const load1 = loadavg();

const result = {
  date: started.toISOString(),
  loadAverage: { start: load0.map((x) => Number(x.toFixed(2))), end: load1.map((x) => Number(x.toFixed(2))) },
  items: N,
  dim: DIM,
  k: K,
  clusters: CLUSTERS,
  m: index.opts.m,
  efConstruction: index.opts.efConstruction,
  sealChunk: index.opts.sealChunk,
  buildPerSecond: built.perSecond,
  buildSeconds: built.seconds,
  exact: { queries: RECALL_QUERIES, latency: percentilesUs(exact.ms) },
  searches,
  growing,
  efServe: EF_SERVE,
  serving,
  sealPerSecond,
  stats: index.stats(),
};
mkdirSync(dirname(values.out), { recursive: true });
writeFileSync(values.out, JSON.stringify(result, null, 2));

const us = (x: number): string => (x >= 1000 ? `${(x / 1000).toFixed(2)} ms` : `${Math.round(x)} µs`);
if (values.json) console.log(JSON.stringify(result));
else {
  console.log(`## retrieval: ANN index, ${N.toLocaleString('en-US')} clustered unit vectors (dim ${DIM}, ${CLUSTERS} clusters), k = ${K}`);
  console.log(
    `${started.toISOString()}; load average ${load0.map((x) => x.toFixed(2)).join(' ')} at start, ${load1.map((x) => x.toFixed(2)).join(' ')} at end (a shared 2-core machine). HNSW M ${index.opts.m}, efConstruction ${index.opts.efConstruction}, one thread.\n`,
  );
  console.log(`Build (direct graph inserts): ${formatNumber(built.perSecond)} items/s (${built.seconds.toFixed(0)} s).\n`);
  console.log(
    markdownTable(
      ['search', 'p50', 'p99', 'p99.9', `recall@${K}`],
      [
        [`exact (${RECALL_QUERIES} queries, every item)`, us(result.exact.latency.p50), us(result.exact.latency.p99), us(result.exact.latency.p999), '1'],
        ...searches.map((s) => [`HNSW + growing merge, ef ${s.ef} (${LATENCY_QUERIES} queries)`, us(s.latency.p50), us(s.latency.p99), us(s.latency.p999), s.recall.toFixed(4)]),
      ],
    ),
  );
  console.log('\nExact scan + top-k of a growing segment:\n');
  console.log(
    markdownTable(
      ['items', 'layout', 'p50', 'p99', 'p99.9'],
      growing.map((g) => [g.size, g.layout, us(g.latency.p50), us(g.latency.p99), us(g.latency.p999)]),
    ),
  );
  console.log(
    `\nInserts into the growing segment while searches arrive at ${SEARCH_RATE}/s (ef ${EF_SERVE}, open loop: "incl. wait" counts from each search's due time) and the background sealer seals (chunks of ≤ ${index.opts.sealChunk} items or ${index.opts.sealBudgetMs} ms), ${INSERT_SECONDS} s each:\n`,
  );
  console.log(
    markdownTable(
      ['inserts asked', 'inserts/s', 'searches', 'search p50', 'search p99', 'p99 incl. wait', 'p99.9 incl. wait', 'loop delay p99', 'sealed/s', 'growing max', 'growing at end'],
      serving.map((s) => [
        s.targetPerSecond === 0 ? 'as fast as possible' : `${s.targetPerSecond}/s`,
        s.insertsPerSecond,
        s.searches,
        us(s.search.p50),
        us(s.search.p99),
        us(s.searchWithWait.p99),
        us(s.searchWithWait.p999),
        us(s.loopDelay.p99),
        s.sealedPerSecond,
        s.growingMax,
        s.growingAtEnd,
      ]),
    ),
  );
  console.log(`\nSealing alone (${SEAL_ITEMS.toLocaleString('en-US')} items into the ${formatNumber(N)}-item graph): ${formatNumber(sealPerSecond)} items/s.`);
}
