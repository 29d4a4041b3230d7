/**
 * How sure a bucket's comparison is: the best Thaw adapter against the best peer of a side's bucket,
 * on the same rows, with a 95 % interval of their AUC difference by a paired bootstrap over the
 * rows (resampling events, both methods scored on each resample). A bucket of a few hundred rows
 * has an AUC standard error of a few points: a difference inside the interval is not a finding.
 *
 * Each resample is a vector of multiplicities over the rows (how often each was drawn), so one
 * sort per method serves every resample: the weighted Mann–Whitney AUC is then one pass.
 */
import type { CurveSource } from '../../analytics/curves.js';
import { dedupSettings, LATEST, latestRowsSql } from '../../analytics/dedup.js';
import { sqlString } from '../../analytics/sql.js';
import { EARLY_BUCKET, type CurveBucket } from '../../analytics/types.js';
import { mulberry32 } from '../../models/fm.js';
import type { Side } from '../../schemas/types.js';

/** One side's bucket: the best adapter, the best peer, and the interval of their difference. */
export interface PeerComparison {
  side: Side;
  bucket: CurveBucket;
  n: number;
  adapter: string;
  adapterAuc: number;
  peer: string;
  peerAuc: number;
  /** adapterAuc − peerAuc, and its 95 % bootstrap interval. */
  delta: number;
  low: number;
  high: number;
}

/** The prior-count range of a curve bucket, inclusive. */
function range(bucket: CurveBucket): [number, number] {
  switch (bucket) {
    case '0':
      return [0, 0];
    case '1-2':
      return [1, 2];
    case '3-5':
      return [3, 5];
    case '6-10':
      return [6, 10];
    case '11-20':
      return [11, 20];
    case '21-50':
      return [21, 50];
    case '51+':
      return [51, 2 ** 31];
    case EARLY_BUCKET:
      return [1, 5];
  }
}

/** Row indices sorted by score (ascending), with the start of each run of tied scores. */
function sorted(scores: Float64Array): { order: Uint32Array; tieStart: Uint32Array } {
  const order = new Uint32Array(scores.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  order.sort((a, b) => (scores[a] ?? 0) - (scores[b] ?? 0));
  const tieStart = new Uint32Array(order.length);
  for (let r = 1; r < order.length; r++) tieStart[r] = scores[order[r] ?? 0] === scores[order[r - 1] ?? 0] ? (tieStart[r - 1] ?? 0) : r;
  return { order, tieStart };
}

/** Mann–Whitney AUC with row multiplicities `w` (ties count one half); NaN with one class only. */
export function weightedAuc(s: { order: Uint32Array; tieStart: Uint32Array }, labels: Uint8Array, w: Uint32Array): number {
  const { order, tieStart } = s;
  let negBelow = 0; // weighted negatives with a strictly lower score
  let pos = 0;
  let neg = 0;
  let credit = 0;
  let r = 0;
  while (r < order.length) {
    // One run of tied scores.
    let end = r;
    while (end + 1 < order.length && tieStart[end + 1] === r) end++;
    let runPos = 0;
    let runNeg = 0;
    for (let q = r; q <= end; q++) {
      const i = order[q] ?? 0;
      const m = w[i] ?? 0;
      if (labels[i] === 1) runPos += m;
      else runNeg += m;
    }
    credit += runPos * (negBelow + runNeg / 2);
    negBelow += runNeg;
    pos += runPos;
    neg += runNeg;
    r = end + 1;
  }
  return pos === 0 || neg === 0 ? NaN : credit / (pos * neg);
}

/**
 * The comparison of `adapter` and `peer` on one side's bucket: their rows joined by event id (the
 * peer's namespace `peerNamespace`), AUCs and the bootstrap interval of the difference.
 */
export async function comparePair(
  source: CurveSource,
  q: { side: Side; bucket: CurveBucket; adapter: string; namespace: string; peer: string; peerNamespace: string; resamples?: number; seed?: number },
): Promise<PeerComparison> {
  const [lo, hi] = range(q.bucket);
  const table = `${source.database ?? 'thaw'}.${source.table ?? 'predictions'}`;
  const rowsOf = async (adapter: string, namespace: string): Promise<Map<string, { score: number; label: number }>> => {
    const rows = await source.query(
      `SELECT event_id, ${LATEST}score AS score, ${LATEST}label AS label FROM (${latestRowsSql(
        table,
        `WHERE side = ${sqlString(q.side, 'side')} AND adapter = ${sqlString(adapter, 'adapter')} AND namespace = ${sqlString(namespace, 'namespace')} AND prior_count >= ${lo} AND prior_count <= ${hi}`,
        ['score', 'label'],
      )}) ${dedupSettings(source.cluster !== undefined)}`,
    );
    return new Map(rows.map((r) => [String(r.event_id), { score: Number(r.score), label: Number(r.label) }]));
  };
  const a = await rowsOf(q.adapter, q.namespace);
  const p = await rowsOf(q.peer, q.peerNamespace);
  const ids = [...a.keys()].filter((id) => p.has(id));
  const n = ids.length;
  const sa = new Float64Array(n);
  const sp = new Float64Array(n);
  const labels = new Uint8Array(n);
  ids.forEach((id, i) => {
    sa[i] = a.get(id)?.score ?? NaN;
    sp[i] = p.get(id)?.score ?? NaN;
    labels[i] = a.get(id)?.label === 1 ? 1 : 0;
  });
  const oa = sorted(sa);
  const op = sorted(sp);
  const ones = new Uint32Array(n).fill(1);
  const adapterAuc = weightedAuc(oa, labels, ones);
  const peerAuc = weightedAuc(op, labels, ones);
  const rand = mulberry32(q.seed ?? 1);
  const deltas: number[] = [];
  const w = new Uint32Array(n);
  for (let b = 0; b < (q.resamples ?? 200); b++) {
    w.fill(0);
    for (let k = 0; k < n; k++) {
      const i = Math.floor(rand() * n);
      w[i] = (w[i] ?? 0) + 1;
    }
    deltas.push(weightedAuc(oa, labels, w) - weightedAuc(op, labels, w));
  }
  const ok = deltas.filter(Number.isFinite).sort((x, y) => x - y);
  const at = (f: number): number => ok[Math.min(ok.length - 1, Math.max(0, Math.round(f * (ok.length - 1))))] ?? NaN;
  return { side: q.side, bucket: q.bucket, n, adapter: q.adapter, adapterAuc, peer: q.peer, peerAuc, delta: adapterAuc - peerAuc, low: at(0.025), high: at(0.975) };
}
