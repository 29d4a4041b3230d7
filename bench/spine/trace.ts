/**
 * Where an event's latency goes: the spine bench's per-event breakdown. The worker has no timing
 * hooks, so the bench's decorators (instrument.ts) record the moments of each chunk in a
 * `ChunkTrace` that AsyncLocalStorage carries through the handler call (the store and the sink are
 * called inside it, so each of their calls lands in its own chunk's trace even with every partition
 * in flight at once). Every event of the chunk then gets the same phases after its own send time:
 *
 *   fetch wait    send -> the consumer sent the fetch that returned it (0 when the fetch was already
 *                 waiting on the broker): the fetcher's previous round still being handled (kafkajs
 *                 fetches again only once every batch of its last fetch is handled)
 *   fetch         -> the batch reached the consumer (long poll, round trip, kafkajs batch decode)
 *   chunk queue   -> its chunk was handed to the worker (earlier chunks of the same fetch first)
 *   redis read    the worker's state read (getMany through the cache tier), inside prepare
 *   prepare       the rest of prepare: decode, predict-then-adapt, rows (and with pipelining the
 *                 wait for the previous chunk's prepare)
 *   sink          the rows durable: the ClickHouse insert, queueing behind the group commit
 *                 in flight included
 *   redis write   the states and the partition's progress written (one atomic call)
 *   tail          the rest until the handler resolved (dead letters, bookkeeping): the durable point
 *
 * The phases of an event sum to its latency (Kafka record timestamp to its chunk's handler resolving).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { MessageBatch } from '../../streams/message.js';
import { quantile } from '../stats.js';

export const PHASES = ['fetch wait', 'fetch', 'chunk queue', 'redis read', 'prepare', 'sink', 'redis write', 'tail'] as const;
export type Phase = (typeof PHASES)[number];

/** Moments of one chunk, unix ms (NaN: did not happen, e.g. no row to write). */
export class ChunkTrace {
  /** Time in state reads, ms (summed: a chunk may read more than once, e.g. the cross side). */
  readMs = 0;
  sinkStart = Number.NaN;
  sinkEnd = Number.NaN;
  putStart = Number.NaN;
  putEnd = Number.NaN;
  constructor(readonly handedMs: number) {}
}

const current = new AsyncLocalStorage<ChunkTrace>();

/** Runs `fn` (a handler call) with `trace` as the chunk the store and sink calls report to. */
export function withTrace<T>(trace: ChunkTrace, fn: () => T): T {
  return current.run(trace, fn);
}

/** The chunk whose handler call this code runs in (undefined outside a traced call). */
export function currentTrace(): ChunkTrace | undefined {
  return current.getStore();
}

/** Per-event phase durations of a chunk that resolved at `doneMs`, appended column-wise to `out`. */
export function recordPhases(batch: MessageBatch, trace: ChunkTrace, doneMs: number, since: number, out: PhaseSamples): void {
  const received = batch.fetch?.receivedAtMs ?? trace.handedMs;
  const requested = batch.fetch?.requestedAtMs ?? received;
  // Missing moments collapse onto the next known one, so that the phases still sum to the total.
  const putEnd = Number.isNaN(trace.putEnd) ? doneMs : trace.putEnd;
  const sinkEnd = Number.isNaN(trace.sinkEnd) ? (Number.isNaN(trace.putStart) ? putEnd : trace.putStart) : trace.sinkEnd;
  const sinkStart = Number.isNaN(trace.sinkStart) ? sinkEnd : trace.sinkStart;
  const readMs = trace.readMs;
  for (const m of batch.messages) {
    const sent = m.timestampMs;
    if (sent < since) continue;
    const fetchFrom = Math.max(sent, requested);
    out.total.push(doneMs - sent);
    out.byPhase['fetch wait'].push(fetchFrom - sent);
    out.byPhase.fetch.push(received - fetchFrom);
    out.byPhase['chunk queue'].push(trace.handedMs - received);
    out.byPhase['redis read'].push(readMs);
    out.byPhase.prepare.push(sinkStart - trace.handedMs - readMs);
    out.byPhase.sink.push(sinkEnd - sinkStart);
    out.byPhase['redis write'].push(putEnd - sinkEnd);
    out.byPhase.tail.push(doneMs - putEnd);
  }
}

/** Column-wise samples: `total[i]` is the sum of `byPhase[*][i]`. */
export interface PhaseSamples {
  total: number[];
  byPhase: Record<Phase, number[]>;
}

export function emptySamples(): PhaseSamples {
  const byPhase = Object.fromEntries(PHASES.map((p) => [p, [] as number[]])) as unknown as Record<Phase, number[]>;
  return { total: [], byPhase };
}

/** One phase's share of a latency distribution, ms. */
export interface PhaseFigure {
  phase: Phase;
  p50Ms: number;
  p99Ms: number;
  /** Mean of this phase over the events whose total latency is at or above the total's p99. */
  tailMeanMs: number;
}

/** p50/p99 of each phase over every event, and its mean over the slowest 1 % of events. */
export function phaseFigures(s: PhaseSamples): PhaseFigure[] {
  const p99 = quantile(s.total, 0.99);
  const tail: number[] = [];
  s.total.forEach((t, i) => {
    if (t >= p99) tail.push(i);
  });
  return PHASES.map((phase) => {
    const xs = s.byPhase[phase];
    const tailSum = tail.reduce((sum, i) => sum + (xs[i] ?? 0), 0);
    return { phase, p50Ms: quantile(xs, 0.5), p99Ms: quantile(xs, 0.99), tailMeanMs: tail.length === 0 ? Number.NaN : tailSum / tail.length };
  });
}
