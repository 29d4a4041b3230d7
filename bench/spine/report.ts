/**
 * The spine bench's figures (what `--json` prints) and the printed report: every ratio of the tables
 * and the ceiling check are computed here from the figures, nothing is typed in by hand.
 */
import type { Side } from '../../schemas/types.js';
import { formatNumber, markdownTable } from '../stats.js';
import type { CeilingResult } from './ceilings.js';
import type { DrainResult, LatencyPoint } from './end-to-end.js';
import { PHASES, type PhaseFigure } from './trace.js';

/** Goals of issue 13. */
export const GOAL_SHARE_OF_LOWEST = 0.7;
export const GOAL_P99_MS = 100;
export const GOAL_P99_AT_LOAD = 0.5;

/** The spine's ceilings, events/s (the sink: rows/s, one row per event). */
export interface CeilingFigures {
  kafkaDecodeEventsPerSec: number;
  redisEventsPerSec: number;
  sinkRowsPerSec: number;
}

export interface LatencyFigure {
  /** Share of the adapter's end-to-end rate the paced producer was asked for. */
  share: number;
  /** The load the paced producer achieved, events/s. */
  loadEventsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  /** Where the latency went, per phase (bench/spine/trace.ts). */
  phases: PhaseFigure[];
}

export interface AdapterFigures {
  adapter: string;
  side: Side;
  /** The ceilings this adapter's worker runs under (its side's topic, its state size). */
  ceilings: CeilingFigures;
  adaptAloneEventsPerSec: number;
  endToEndEventsPerSec: number;
  latency: LatencyFigure[];
}

/** What `--json` prints: the raw figures; every ratio of the table is computed from these (render). */
export interface SpineFigures {
  run: {
    startedAt: string;
    /** The command as typed through `npm run bench` (the bench's own arguments after `--`). */
    command: string;
    loadAverageBefore: number[];
    loadAverageAfter: number[];
    wallSeconds: number;
    events: number;
    partitions: number;
    batch: number;
    pipelineDepth: number;
    /** The worker's fetchAhead (streams/fetch-ahead.ts). */
    fetchAhead: boolean;
  };
  /** The lowest of each ceiling over the sides and adapters run (per adapter: `adapters[].ceilings`). */
  ceilings: CeilingFigures;
  adapters: AdapterFigures[];
}

/** Everything the run measured (written to --out). */
export interface SpineReport {
  figures: SpineFigures;
  details: {
    kafka: CeilingResult[];
    sink: CeilingResult;
    adapters: { adapter: string; adaptAlone: CeilingResult; redis: CeilingResult; endToEnd: DrainResult; latency: LatencyPoint[] }[];
  };
}

function pct(x: number): string {
  return `${(100 * x).toFixed(0)} %`;
}

function ms(x: number): string {
  return Number.isFinite(x) ? x.toFixed(0) : '—';
}

/** The ceilings an adapter's end to end runs under, adapt alone included, named as in the table. */
export function limitsOf(a: AdapterFigures): { name: string; perSec: number }[] {
  return [
    { name: 'kafka + decode', perSec: a.ceilings.kafkaDecodeEventsPerSec },
    { name: 'redis', perSec: a.ceilings.redisEventsPerSec },
    { name: 'sink', perSec: a.ceilings.sinkRowsPerSec },
    { name: 'adapt alone', perSec: a.adaptAloneEventsPerSec },
  ];
}

/**
 * Ceilings that end to end exceeded: each is a wrong figure (it did not measure the worker's
 * workload, or the machine's load changed between the two runs), named with the excess.
 */
export function ceilingViolations(figures: SpineFigures): string[] {
  const out: string[] = [];
  for (const a of figures.adapters) {
    for (const c of limitsOf(a)) {
      if (a.endToEndEventsPerSec > c.perSec) {
        out.push(
          `${a.adapter}: end to end ${formatNumber(a.endToEndEventsPerSec)} events/s exceeds its "${c.name}" ceiling ${formatNumber(c.perSec)} by ${pct(a.endToEndEventsPerSec / c.perSec - 1)}: ` +
            `that ceiling figure is wrong (it measured another workload, or the machine's load changed between the two runs)`,
        );
      }
    }
  }
  return out;
}

/** The printed report: tables computed from `report.figures` (ratios by code), then the details. */
export function renderReport(report: SpineReport): string {
  const f = report.figures;
  const r = f.run;
  const la = (x: number[]): string => x.map((v) => v.toFixed(2)).join(', ');
  const throughput = markdownTable(
    ['adapter', 'side', 'kafka + decode ev/s', 'redis ev/s', 'sink rows/s', 'adapt alone ev/s', 'end to end ev/s', 'lowest', 'e2e / lowest', 'e2e / adapt alone'],
    f.adapters.map((a) => {
      const lowest = limitsOf(a).reduce((m, x) => (x.perSec < m.perSec ? x : m));
      return [
        a.adapter,
        a.side,
        formatNumber(a.ceilings.kafkaDecodeEventsPerSec),
        formatNumber(a.ceilings.redisEventsPerSec),
        formatNumber(a.ceilings.sinkRowsPerSec),
        formatNumber(a.adaptAloneEventsPerSec),
        formatNumber(a.endToEndEventsPerSec),
        lowest.name,
        pct(a.endToEndEventsPerSec / lowest.perSec),
        pct(a.endToEndEventsPerSec / a.adaptAloneEventsPerSec),
      ];
    }),
  );
  const latencyRows = f.adapters.flatMap((a) =>
    a.latency.map((p) => [a.adapter, pct(p.share), formatNumber(p.share * a.endToEndEventsPerSec), formatNumber(p.loadEventsPerSec), ms(p.p50Ms), ms(p.p99Ms), ms(p.p999Ms)]),
  );
  const latency = markdownTable(['adapter', 'share of e2e', 'asked ev/s', 'produced ev/s', 'p50 ms', 'p99 ms', 'p99.9 ms'], latencyRows);
  const breakdown = renderBreakdown(f.adapters);
  const violations = ceilingViolations(f);
  const list = (xs: string[]): string => (xs.length === 0 ? 'no adapter' : xs.join(', '));
  const met = f.adapters.filter((a) => a.endToEndEventsPerSec / Math.min(...limitsOf(a).map((x) => x.perSec)) >= GOAL_SHARE_OF_LOWEST).map((a) => a.adapter);
  const p99met = f.adapters.filter((a) => a.latency.some((p) => p.share === GOAL_P99_AT_LOAD && p.p99Ms <= GOAL_P99_MS)).map((a) => a.adapter);
  const details = markdownTable(
    ['adapter', 'chunks', 'clickhouse inserts (e2e)', 'cache hits / misses (e2e)', 'redis read ms', 'sink write ms', 'redis write ms', 'e2e wall ms'],
    report.details.adapters.map((d) => {
      const e = d.endToEnd;
      return [
        d.adapter,
        String(e.batches),
        String(e.sinkInserts),
        `${e.cache.hits} / ${e.cache.misses}`,
        e.split.redisGetMs.toFixed(0),
        e.split.sinkMs.toFixed(0),
        e.split.redisPutMs.toFixed(0),
        e.ms.toFixed(0),
      ];
    }),
  );
  return [
    `## Streaming spine: ${formatNumber(r.events)} events, ${r.partitions} partitions, chunks of ≤ ${formatNumber(r.batch)}, worker pipelineDepth ${r.pipelineDepth}, fetchAhead ${String(r.fetchAhead)}`,
    '',
    `\`${r.command}\`, ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC; load average (1, 5, 15 min) before ${la(r.loadAverageBefore)}, after ${la(r.loadAverageAfter)} (2 cores, shared); wall ${r.wallSeconds.toFixed(0)} s`,
    '',
    'Every column on the same full stream, with the worker\'s code path, concurrency and chunks (bench/README.md); "lowest" = the lowest of the four columns before end to end.',
    '',
    throughput,
    '',
    "Latency of every event: its Kafka record timestamp (the paced producer's send time) to its chunk being durable (rows written, states written), at shares of the end-to-end rate above.",
    '',
    latency,
    '',
    'Where it went, per event (bench/spine/trace.ts): each phase as p50 / p99 / its mean over the slowest 1 % of events, ms. The phases of an event sum to its latency.',
    '',
    breakdown,
    '',
    violations.length === 0 ? 'Check: end to end is below every ceiling for every adapter.' : ['Check FAILED, a ceiling below end to end:', ...violations.map((v) => `- ${v}`)].join('\n'),
    '',
    `Goal ≥ ${pct(GOAL_SHARE_OF_LOWEST)} of the lowest: met by ${list(met)}. Goal p99 ≤ ${GOAL_P99_MS} ms at ${pct(GOAL_P99_AT_LOAD)} load: met by ${list(p99met)}.`,
    '',
    details,
  ].join('\n');
}

/** The latency breakdown table: one row per adapter and load, one column per phase. */
export function renderBreakdown(adapters: readonly AdapterFigures[]): string {
  const cell = (f: PhaseFigure | undefined): string => (f === undefined ? '—' : `${ms(f.p50Ms)} / ${ms(f.p99Ms)} / ${ms(f.tailMeanMs)}`);
  return markdownTable(
    ['adapter', 'share', 'p50 / p99 ms', ...PHASES],
    adapters.flatMap((a) => a.latency.map((p) => [a.adapter, pct(p.share), `${ms(p.p50Ms)} / ${ms(p.p99Ms)}`, ...PHASES.map((ph) => cell(p.phases.find((x) => x.phase === ph)))])),
  );
}
