/** What `thaw eval --protocol stream` prints: tables per side (text) and the JSON document (`--json`). */
import { CURVE_BUCKETS } from '../../analytics/types.js';
import { SIDES } from '../../schemas/types.js';
import type { StreamEvalResult, StreamEvalRow } from './run.js';

/** The JSON of `--json`: `{ events, windowFrom, rows: [{ side, adapter, release, bucket, n, auc, logLoss }], … }`. */
export function streamEvalJson(r: StreamEvalResult): Record<string, unknown> {
  return {
    events: r.events,
    windowFrom: r.windowFrom,
    syncEvery: r.syncEvery,
    rows: r.rows.map((x) => ({ side: x.side, adapter: x.adapter, release: x.release, bucket: x.bucket, n: x.n, auc: finite(x.auc), logLoss: finite(x.logLoss) })),
    families: r.families,
    skipped: r.skipped,
    replay: r.replay,
    peers: r.peers,
    comparisons: r.comparisons.map((c) => ({ ...c, adapterAuc: finite(c.adapterAuc), peerAuc: finite(c.peerAuc), delta: finite(c.delta), low: finite(c.low), high: finite(c.high) })),
    wallSec: Math.round(r.wallSec),
  };
}

const finite = (x: number): number | null => (Number.isFinite(x) ? x : null);
const fmt = (x: number | undefined, digits = 3): string => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits));

/** The methods of one side, in row order, as `adapter (release)` labels. */
function methodsOf(rows: readonly StreamEvalRow[]): string[] {
  const seen: string[] = [];
  for (const r of rows) {
    const m = label(r);
    if (!seen.includes(m)) seen.push(m);
  }
  return seen;
}

const label = (r: StreamEvalRow): string => (r.release === 'peer' ? `${r.adapter} (peer)` : `${r.adapter} (${r.release})`);

function table(rows: readonly StreamEvalRow[], metric: 'auc' | 'logLoss'): string {
  const methods = methodsOf(rows);
  const head = ['method', ...CURVE_BUCKETS];
  const lines = [head, head.map((h) => '-'.repeat(h.length))];
  for (const m of methods) {
    const of = (b: string): StreamEvalRow | undefined => rows.find((r) => label(r) === m && r.bucket === b);
    lines.push([m, ...CURVE_BUCKETS.map((b) => fmt(of(b)?.[metric]))]);
  }
  const n = CURVE_BUCKETS.map((b) => rows.find((r) => r.bucket === b)?.n);
  lines.push(['n', ...n.map((x) => (x === undefined ? '–' : x.toLocaleString('en-US')))]);
  const widths = head.map((_, c) => Math.max(...lines.map((l) => (l[c] ?? '').length)));
  return lines.map((l) => l.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ')).join('\n');
}

/** The text report: what ran, then per side the AUC and log-loss tables by prior events. */
export function formatStreamEval(r: StreamEvalResult, source: string): string {
  const scored = r.events - r.windowFrom;
  const lines = [
    `Stream evaluation of ${source}: ${r.events.toLocaleString('en-US')} events in time order, predict then learn. ` +
      `History = the first ${r.windowFrom.toLocaleString('en-US')} (releases trained on it, rows not scored); ` +
      `scored: the other ${scored.toLocaleString('en-US')}. Prior counts start at the stream's first event.`,
    ...r.families.map((f) => `  ${f.family}: ${f.trainSec > 0 ? `trained in ${f.trainSec} s` : 'loaded'}; ${JSON.stringify(f.info)}`),
    ...r.skipped.map((s) => `  ${s.family}: skipped (${s.reason})`),
    r.syncEvery > 0
      ? `Shared parameters keep learning: a release every ${r.syncEvery.toLocaleString('en-US')} events (${r.replay.switches} taken)` +
        (r.replay.frozen.length > 0 ? `; ${r.replay.frozen.join(', ')} frozen (no online trainer)` : '') +
        '.'
      : 'Shared parameters frozen at the history (--sync-every 0).',
    `Cross-side reads: ${r.replay.crossRead.toLocaleString('en-US')} events scored with the other side's state, ${r.replay.crossRefused.toLocaleString('en-US')} refused (newer than the event).`,
    ...r.peers.map((p) => `Peer ${p.name}: chosen on the history ${JSON.stringify(p.chosen)} (${Math.round(p.ms / 1000)} s).`),
    `Rows: chDB ${r.chdbDir}. Wall time ${Math.round(r.wallSec)} s.`,
    '',
  ];
  for (const side of SIDES) {
    const rows = r.rows.filter((x) => x.side === side);
    if (rows.length === 0) continue;
    lines.push(`${side} side: AUC by the ${side}'s prior events (1-5 pools 1-2 and 3-5)`, table(rows, 'auc'), '', `${side} side: log loss (nats)`, table(rows, 'logLoss'), '');
  }
  if (r.comparisons.length > 0) lines.push('Best adapter against the best peer, same rows: AUC difference and its 95 % interval (paired bootstrap over events, 200 resamples)', comparisonTable(r), '');
  return lines.join('\n');
}

function comparisonTable(r: StreamEvalResult): string {
  const head = ['side', 'bucket', 'n', 'adapter', 'AUC', 'peer', 'AUC', 'difference', '95 % interval'];
  const lines = [head, head.map((h) => '-'.repeat(h.length))];
  for (const c of r.comparisons) {
    const sign = (x: number): string => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}` : '–');
    lines.push([c.side, c.bucket, c.n.toLocaleString('en-US'), c.adapter, fmt(c.adapterAuc), c.peer, fmt(c.peerAuc), sign(c.delta), `[${sign(c.low)}, ${sign(c.high)}]`]);
  }
  const widths = head.map((_, col) => Math.max(...lines.map((l) => (l[col] ?? '').length)));
  return lines.map((l) => l.map((cell, col) => (col <= 1 || col === 3 || col === 5 ? cell.padEnd(widths[col] ?? 0) : cell.padStart(widths[col] ?? 0))).join('  ')).join('\n') + '\n(points: AUC × 100)';
}
