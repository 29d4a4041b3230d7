/** The serving bench's rows and how they are printed (markdown tables and the overload lines). */
import { markdownTable } from '../stats.js';
import type { LoadResult } from './loadgen.js';
import { goodputBound, rhoFor, type CpuRow } from './overload-bound.js';
import type { TunedVsDefault } from './tuned.js';

/** The servers the bench can run: thaw in one process, thaw on two (`thaw serve --processes 2`), the naive baseline. */
export type ServerName = 'thaw' | 'thaw-2p' | 'naive';
export const SERVER_NAMES: readonly ServerName[] = ['thaw', 'thaw-2p', 'naive'];
export const SERVER_LABEL: Record<ServerName, string> = { thaw: 'thaw', 'thaw-2p': 'thaw, 2 processes', naive: 'naive' };

export interface Row {
  server: ServerName;
  load: string;
  result: LoadResult;
  cpuServerPct: number;
  cpuRedisPct: number;
  cpuLoadgenPct: number;
  gcMs: number;
  gcMaxMs: number;
  loopP99: number;
  /** Entity reads by tier (thaw): cache, store, unavailable. */
  tiers: { cache: number; store: number; unavailable: number } | undefined;
  /**
   * p99 of the admitted requests' time inside the server (thaw: arrival at the HTTP hook → response
   * ready), as the upper bound of its /metrics histogram bucket (ms); undefined for naive.
   */
  serverP99Ms: number | undefined;
  /** Refusals by reason (thaw): deadline unmeetable at admission, late (deadline passed while queued), queues full. */
  shedReasons: { deadline: number; late: number; queueFull: number } | undefined;
}

/** The rule at `factor` × capacity: admitted p99 within 4× the unloaded p99, goodput ≥ 90 % of capacity. */
export interface OverloadCheck {
  server: ServerName;
  factor: number;
  capacity: number;
  rate: number;
  unloadedP99: number;
  unloadedLoad: string;
  p99: number;
  goodput: number;
  /** The server's CPU per answer and per refusal (µs), solved from the closed-loop and overload rows; undefined when the two rows do not determine them. */
  cpuCost: { answerUs: number; refusalUs: number } | undefined;
}

/** A row's answers and refusals per second and the server's CPU, for overload-bound.ts. */
export function cpuRow(row: Row): CpuRow {
  return { okPerSec: row.result.ok / row.result.seconds, shedPerSec: row.result.shed / row.result.seconds, cpuCores: row.cpuServerPct / 100 };
}

export function overloadLine(check: OverloadCheck): string {
  const latencyOk = check.p99 <= 4 * check.unloadedP99;
  const goodputOk = check.goodput >= 0.9 * check.capacity;
  // One process has one core for its JavaScript (overload-bound.ts).
  const rho = check.cpuCost === undefined ? undefined : check.cpuCost.refusalUs / check.cpuCost.answerUs;
  const bound =
    rho === undefined
      ? ''
      : `; CPU per answer ${f1(check.cpuCost?.answerUs ?? 0)} µs, per refusal ${f1(check.cpuCost?.refusalUs ?? 0)} µs (ρ ${rho.toFixed(3)}): on one core no admission policy answers more than ` +
        `${(100 * goodputBound(check.factor, rho)).toFixed(0)} % of capacity at ${check.factor}× (90 % needs ρ ≤ ${rhoFor(check.factor, 0.9).toFixed(3)})`;
  return (
    `- ${SERVER_LABEL[check.server]}: capacity ${int(check.capacity)}/s (its highest goodput above); at ${check.factor}× (${int(check.rate)}/s) admitted p99 ${f1(check.p99)} ms vs 4 × ${f1(check.unloadedP99)} ms ` +
    `(p99 at ${check.unloadedLoad}): ${latencyOk ? 'met' : 'NOT met'}; goodput ${int(check.goodput)}/s vs 90 % of capacity ${int(0.9 * check.capacity)}/s: ${goodputOk ? 'met' : 'NOT met'}${bound}`
  );
}

export const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(x >= 100 ? 0 : x >= 10 ? 1 : 2) : '–');
export const int = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');

export function table(rows: readonly Row[]): string {
  return markdownTable(
    [
      'server',
      'load',
      'answered/s',
      'p50 ms',
      'p99 ms',
      'p99.9 ms',
      'in server p99 ≤ ms',
      'goodput/s',
      '503 (deadline / late / full)',
      'errors',
      'cache / store / unavail. %',
      'GC ms (max)',
      'loop p99 ms',
      'send lag p99 ms',
      'CPU server / redis / loadgen %',
    ],
    rows.map((r) => {
      const t = r.tiers;
      const total = t === undefined ? 0 : t.cache + t.store + t.unavailable;
      const pct = (x: number): string => (total > 0 ? ((100 * x) / total).toFixed(0) : '–');
      const sr = r.shedReasons;
      return [
        SERVER_LABEL[r.server],
        r.load,
        int(r.result.okPerSec),
        f1(r.result.p50),
        f1(r.result.p99),
        f1(r.result.p999),
        r.serverP99Ms === undefined ? '–' : f1(r.serverP99Ms),
        int(r.result.goodputPerSec),
        sr === undefined ? int(r.result.shed) : `${int(r.result.shed)} (${int(sr.deadline)} / ${int(sr.late)} / ${int(sr.queueFull)})`,
        int(r.result.errors),
        t === undefined ? 'no cache' : `${pct(t.cache)} / ${pct(t.store)} / ${pct(t.unavailable)}`,
        `${int(r.gcMs)} (${f1(r.gcMaxMs)})`,
        f1(r.loopP99),
        f1(r.result.sendLagP99),
        `${int(r.cpuServerPct)} / ${int(r.cpuRedisPct)} / ${int(r.cpuLoadgenPct)}`,
      ];
    }),
  );
}

const settingsText = (s: TunedVsDefault['defaults']): string => `fetch ${s.fetchConcurrency}, batch ${s.modelMaxBatch}, wait ${s.modelMaxWaitMs} ms, in flight ${s.maxInFlight}`;

/** The "tuned vs default" section. */
export function tunedLines(tuned: TunedVsDefault): string[] {
  const best = tuned.search.best;
  return [
    `Tuned vs default (resource manager): tuned by ${tuned.search.trials.length} in-process replays of ${tuned.tuneSeconds} s at ${int(tuned.rate)}/s (workload seed ${tuned.seedTune}); chosen: ${settingsText(best.settings)} (replay goodput ${int(best.result.goodputPerSec)}/s, p99 ${f1(best.result.p99)} ms; defaults ${int(tuned.search.baseline.result.goodputPerSec)}/s, p99 ${f1(tuned.search.baseline.result.p99)} ms). Then thaw serve over HTTP on a load it did not see (seed ${tuned.seedRun}, same rate, deadline ${tuned.deadlineMs} ms):`,
    '',
    markdownTable(
      ['settings', 'values', 'answered/s', 'p50 ms', 'p99 ms', 'goodput/s', '503'],
      tuned.runs.map((r) => [r.name, settingsText(r.settings), int(r.result.okPerSec), f1(r.result.p50), f1(r.result.p99), int(r.result.goodputPerSec), int(r.result.shed)]),
    ),
    '',
  ];
}
