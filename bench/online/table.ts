/** Markdown table of two arms' AUC by warm-up bucket and the gain in AUC points. */
import { BUCKETS } from '../../analytics/types.js';
import type { BucketAuc } from './prequential.js';

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toFixed(4) : '–';
}

export function gainTableOf(aName: string, a: BucketAuc[], bName: string, b: BucketAuc[]): string {
  const lines = [`| bucket | events | ${aName} AUC | ${bName} AUC | gain (points) |`, '|---|---:|---:|---:|---:|'];
  for (const key of [...BUCKETS, 'all'] as const) {
    const x = a.find((r) => r.bucket === key);
    const y = b.find((r) => r.bucket === key);
    if (x === undefined || y === undefined || x.n === 0) continue;
    lines.push(`| ${key} | ${x.n} | ${fmt(x.auc)} | ${fmt(y.auc)} | ${Number.isFinite(y.auc - x.auc) ? ((y.auc - x.auc) * 100).toFixed(2) : '–'} |`);
  }
  return lines.join('\n');
}
