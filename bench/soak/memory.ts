/**
 * Memory of a `thaw run` worker over time, for the soak: resident set size from /proc/PID/status
 * (what the kernel charges the process), heap used from the worker's own /metrics endpoint
 * (prom-client's `thaw_worker_nodejs_heap_size_used_bytes`), and the least-squares slope of each.
 */
import { readFile } from 'node:fs/promises';

export interface MemorySample {
  /** Seconds since the soak started. */
  t: number;
  rssMb: number;
  /** Undefined when the metrics endpoint did not answer. */
  heapMb: number | undefined;
}

/** VmRSS of `pid` in MB, undefined when the process is gone. */
export async function rssMb(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    return m?.[1] === undefined ? undefined : Number(m[1]) / 1024;
  } catch {
    return undefined;
  }
}

/** Heap used (MB) as the worker's /metrics on `port` reports it; undefined when it does not answer. */
export async function heapMb(port: number): Promise<number | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) });
    const text = await res.text();
    const m = /^thaw_worker_nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m.exec(text);
    return m?.[1] === undefined ? undefined : Number(m[1]) / (1024 * 1024);
  } catch {
    return undefined;
  }
}

/** Least-squares slope of y over x (NaN with fewer than 2 distinct x). */
export function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return NaN;
  let sx = 0;
  let sy = 0;
  for (const p of points) {
    sx += p.x;
    sy += p.y;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

export interface MemoryTrend {
  samples: number;
  /** Samples from this time on (s) enter the slopes: the first fifth of the run is warm-up (JIT, cache tier filling). */
  fromS: number;
  rssFirstMb: number;
  rssLastMb: number;
  rssMaxMb: number;
  /** MB per hour, least squares over the samples after warm-up. */
  rssSlopeMbPerHour: number;
  heapLastMb: number;
  heapMaxMb: number;
  heapSlopeMbPerHour: number;
}

export function trendOf(samples: readonly MemorySample[], durationS: number): MemoryTrend {
  const fromS = durationS / 5;
  const kept = samples.filter((s) => s.t >= fromS);
  const heap = kept.flatMap((s) => (s.heapMb === undefined ? [] : [{ x: s.t / 3600, y: s.heapMb }]));
  const heapAll = samples.flatMap((s) => (s.heapMb === undefined ? [] : [s.heapMb]));
  return {
    samples: samples.length,
    fromS,
    rssFirstMb: samples[0]?.rssMb ?? NaN,
    rssLastMb: samples[samples.length - 1]?.rssMb ?? NaN,
    rssMaxMb: Math.max(...samples.map((s) => s.rssMb)),
    rssSlopeMbPerHour: slope(kept.map((s) => ({ x: s.t / 3600, y: s.rssMb }))),
    heapLastMb: heapAll[heapAll.length - 1] ?? NaN,
    heapMaxMb: Math.max(...heapAll),
    heapSlopeMbPerHour: slope(heap),
  };
}

const BARS = '▁▂▃▄▅▆▇█';

/** A one-line plot of `values` (min to max of the series), `width` columns, each the mean of its slice. */
export function sparkline(values: readonly number[], width = 60): string {
  if (values.length === 0) return '';
  const cols = Math.min(width, values.length);
  const means: number[] = [];
  for (let c = 0; c < cols; c++) {
    const part = values.slice(Math.floor((c * values.length) / cols), Math.floor(((c + 1) * values.length) / cols));
    means.push(part.reduce((s, v) => s + v, 0) / Math.max(1, part.length));
  }
  const lo = Math.min(...means);
  const hi = Math.max(...means);
  return means.map((v) => BARS[hi === lo ? 0 : Math.min(BARS.length - 1, Math.floor(((v - lo) / (hi - lo)) * BARS.length))] ?? ' ').join('');
}
