/** Reading the servers' Prometheus texts (their /metrics scrapes) for bench/serving/run.ts. */

/** The upper bound (ms) of the histogram bucket holding quantile `q` of the observations between two scrapes. */
export function histogramQuantileMs(before: readonly string[], after: readonly string[], name: string, q: number): number {
  const buckets = (texts: readonly string[]): Map<number, number> => {
    const out = new Map<number, number>();
    for (const text of texts) {
      for (const line of text.split('\n')) {
        const m = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`).exec(line);
        if (m === null) continue;
        const le = m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]);
        out.set(le, (out.get(le) ?? 0) + Number(m[2]));
      }
    }
    return out;
  };
  const b0 = buckets(before);
  const b1 = [...buckets(after)].sort((a, b) => a[0] - b[0]);
  const total = (b1[b1.length - 1]?.[1] ?? 0) - (b0.get(Number.POSITIVE_INFINITY) ?? 0);
  if (total <= 0) return Number.NaN;
  for (const [le, cumulative] of b1) if (cumulative - (b0.get(le) ?? 0) >= q * total) return le * 1000;
  return Number.POSITIVE_INFINITY;
}

/** A metric's value summed over the server processes' Prometheus texts. */
export function metricValue(texts: readonly string[], name: string): number {
  let sum = 0;
  for (const text of texts) {
    const line = text.split('\n').find((l) => l.startsWith(name + ' '));
    sum += line === undefined ? 0 : Number(line.slice(name.length + 1));
  }
  return sum;
}
