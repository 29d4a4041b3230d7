/**
 * Replays a recorded load (serving/load-recording.ts) against a scoring pipeline in this process,
 * open loop: each arrival is parsed and submitted at its recorded time from the start, whether or
 * not earlier ones were answered, and its latency counts from that intended time, so queueing in
 * the replay's own event loop counts as it would in the server's sockets. What it leaves out: the
 * HTTP layer (sockets, header parsing, writing the response), the same for every setting compared.
 */
import { performance } from 'node:perf_hooks';
import { OverloadedError } from './admission.js';
import type { LoadRecording } from './load-recording.js';
import type { ScoringPipeline } from './pipeline.js';
import { parseScoreRequest } from './request.js';

export interface ReplayResult {
  /** Arrivals submitted. */
  sent: number;
  /** Answered (200). */
  ok: number;
  /** Refused or dropped by the pipeline (503). */
  shed: number;
  /** Bad bodies or other failures. */
  errors: number;
  /** Answered within their deadline, per second of the recording. */
  goodputPerSec: number;
  /** Latency of the answered, from the intended arrival (ms). */
  p50: number;
  p99: number;
  /** Share of the answered that came after their deadline. */
  lateShare: number;
  spanSec: number;
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

/** Replays `load` against a started `pipeline` and resolves when every arrival is settled. */
export async function replayLoad(pipeline: ScoringPipeline, load: LoadRecording): Promise<ReplayResult> {
  const arrivals = load.arrivals;
  const first = arrivals[0]?.t ?? 0;
  const limits = { maxCandidates: pipeline.config.maxCandidates };
  const latencies: number[] = [];
  let ok = 0;
  let shed = 0;
  let errors = 0;
  let good = 0;
  let late = 0;
  let settled = 0;
  let next = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const finish = (): void => {
      if (++settled === arrivals.length) resolve();
    };
    const pump = (): void => {
      const now = performance.now();
      while (next < arrivals.length) {
        const a = arrivals[next];
        if (a === undefined) break;
        const intended = t0 + a.t - first;
        if (intended > now) break;
        next++;
        const deadline = a.deadlineMs ?? load.deadlineMs;
        let answer: Promise<string>;
        try {
          answer = pipeline.score(parseScoreRequest(JSON.parse(a.body), limits), intended, deadline);
        } catch (err) {
          if (err instanceof OverloadedError) shed++;
          else errors++;
          finish();
          continue;
        }
        answer.then(
          () => {
            const ms = performance.now() - intended;
            ok++;
            latencies.push(ms);
            if (ms <= deadline) good++;
            else late++;
            finish();
          },
          (err: unknown) => {
            if (err instanceof OverloadedError) shed++;
            else errors++;
            finish();
          },
        );
      }
      const due = arrivals[next];
      if (due !== undefined) setTimeout(pump, Math.max(0, t0 + due.t - first - performance.now() - 0.3));
    };
    pump();
  });
  const sorted = Float64Array.from(latencies).sort();
  const spanSec = Math.max(load.spanMs, 1) / 1000;
  return { sent: arrivals.length, ok, shed, errors, goodputPerSec: good / spanSec, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), lateShare: ok === 0 ? 0 : late / ok, spanSec };
}
