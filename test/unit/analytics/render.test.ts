import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatCurveTable } from '../../../analytics/table.js';
import { renderCurvesBySideSvg, renderCurvesSvg, writePlot } from '../../../analytics/plot.js';
import { curvesJson } from '../../../cli/curve-json.js';
import { BUCKETS, type CurveRow } from '../../../analytics/types.js';
import { parseCurveRow } from '../../../analytics/curves.js';
import { adapterColors, curveStyles, lighten, NEUTRAL_COLOR, type SeriesKey } from '../../../analytics/palette.js';

function rows(): CurveRow[] {
  const out: CurveRow[] = [];
  for (const adapter of ['none', 'fm-adagrad']) {
    for (const side of ['user', 'item'] as const) {
      BUCKETS.forEach((bucket, i) => {
        out.push({ adapter, side, release: 'r1', namespace: 'live', bucket, n: 1000 - i * 100, ctr: 0.3, auc: adapter === 'none' ? 0.6 : 0.6 + i * 0.02, logLoss: 0.6 - i * 0.01 });
      });
    }
  }
  return out.reverse(); // the table and plot must not depend on input order
}

void test('table: aligned columns, bucket order, NaN shown as "-"', () => {
  const r = rows();
  r.push({ adapter: 'a<b>', side: 'user', release: 'r1', namespace: 'live', bucket: '0', n: 3, ctr: 0, auc: NaN, logLoss: 0.1 });
  const text = formatCurveTable(r);
  const lines = text.trimEnd().split('\n');
  assert.equal(lines.length, 2 + r.length);
  assert.match(lines[0] ?? '', /^adapter\s+side\s+bucket\s+events\s+CTR\s+AUC\s+log loss$/);
  assert.match(lines[1] ?? '', /^-+( +-+){6}$/);
  // Every column starts at the same offset: the AUC column ends at the same position in every body line.
  const aucEnd = (lines[0] ?? '').indexOf('AUC') + 3;
  for (const l of lines.slice(2)) assert.match(l.slice(aucEnd - 6, aucEnd), /^(\d\.\d{4}| {5}-)$/, l);
  const fmUser = lines.filter((l) => l.startsWith('fm-adagrad') && /\buser\b/.test(l)).map((l) => l.split(/\s+/)[2]);
  assert.deepEqual(fmUser, [...BUCKETS]);
  assert.ok(lines.some((l) => l.startsWith('a<b>') && /\s-\s/.test(l)));
  assert.equal(formatCurveTable([]).split('\n').length, 3);
});

void test('plot: one path per (adapter, side), legend, ticks, well-formed XML', async () => {
  const svg = renderCurvesSvg(rows(), { title: 'Warm-up <test> & "quotes"' });
  assert.equal((svg.match(/<path /g) ?? []).length, 4);
  assert.equal((svg.match(/<g class="series"/g) ?? []).length, 4);
  assert.equal((svg.match(/<circle [^>]*><title>/g) ?? []).length, 4 * BUCKETS.length);
  for (const b of BUCKETS) assert.ok(svg.includes(`>${b}</text>`), `x tick ${b}`);
  // The release is in the legend (issue 16: the live `thaw curves --plot`).
  for (const l of ['fm-adagrad / user (r1)', 'fm-adagrad / item (r1)', 'none / user (r1)', 'none / item (r1)']) assert.ok(svg.includes(`>${l}</text>`), l);
  assert.ok(svg.includes('Warm-up &lt;test&gt; &amp; &quot;quotes&quot;'));
  assert.ok(svg.includes('>AUC</text>'));
  // Well-formedness: tags balance and attribute values contain no raw '<' or '&'.
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)([^>]*?)(\/?)>/g)) {
    const [, close, name, attrs, selfClose] = m;
    assert.doesNotMatch(attrs ?? '', /&(?!amp;|lt;|gt;|quot;|apos;)|</);
    if (selfClose === '/') continue;
    if (close === '/') assert.equal(stack.pop(), name);
    else stack.push(name ?? '');
  }
  assert.deepEqual(stack, []);
  assert.doesNotMatch(svg, /NaN|undefined/);

  const dir = await mkdtemp(join(tmpdir(), 'thaw-plot-'));
  try {
    await writePlot(join(dir, 'sub', 'curves.svg'), svg);
    assert.equal(await readFile(join(dir, 'sub', 'curves.svg'), 'utf8'), svg);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

void test('plot: a NaN AUC bucket breaks the line instead of plotting a point', () => {
  const r = rows().filter((x) => x.adapter === 'none' && x.side === 'user');
  const gap = r.find((x) => x.bucket === '3-5');
  assert.ok(gap);
  gap.auc = NaN;
  const svg = renderCurvesSvg(r);
  const d = /<path d="([^"]+)"/.exec(svg)?.[1] ?? '';
  assert.equal((d.match(/M/g) ?? []).length, 2);
  assert.equal((svg.match(/<circle [^>]*><title>/g) ?? []).length, BUCKETS.length - 1);
});

void test('parseCurveRow: 18.16 strings and nulls become numbers and NaN', () => {
  const row = parseCurveRow({ adapter: 'a', side: 'user', release: 'r', namespace: 'n', bucket: '1-2', n: '12', ctr: 0.5, auc: null, log_loss: 0.7 });
  assert.equal(row.n, 12);
  assert.ok(Number.isNaN(row.auc));
  assert.throws(() => parseCurveRow({ side: 'x', bucket: '0' }), { code: 'DATA_FORMAT' });
});

/** Rows of two releases per side, each with its own `none` (what `thaw demo` produces). */
function twoReleaseRows(): CurveRow[] {
  const out: CurveRow[] = [];
  const runs = [
    ['item', 'fm-i', 'none'],
    ['item', 'fm-i', 'fm-adagrad'],
    ['item', 'emerg/v1', 'none'],
    ['item', 'emerg/v1', 'emerg'],
    ['user', 'fm-u', 'none'],
    ['user', 'coldnas/v1', 'none'],
    ['user', 'coldnas/v1', 'coldnas'],
  ] as const;
  runs.forEach(([side, release, adapter], k) => {
    BUCKETS.forEach((bucket, i) => out.push({ adapter, side, release, namespace: 'demo', bucket, n: 10, ctr: 0.3, auc: 0.55 + 0.01 * k + 0.001 * i, logLoss: 0.6 }));
  });
  return out;
}

void test('table: a release column when several releases appear (baselines of different models stay apart); input order kept on request', () => {
  const r = twoReleaseRows();
  const lines = formatCurveTable(r).trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^adapter\s+side\s+release\s+bucket\s+events\s+CTR\s+AUC\s+log loss$/);
  const noneItem = lines.filter((l) => /^none\s+item\s/.test(l)).map((l) => l.split(/\s+/)[2]);
  assert.deepEqual([...new Set(noneItem)], ['emerg/v1', 'fm-i']);
  const kept = formatCurveTable(r, { order: 'input' }).trimEnd().split('\n').slice(2);
  assert.deepEqual(
    kept.map((l) => l.split(/\s+/).slice(0, 3).join(' ')),
    r.map((x) => `${x.adapter} ${x.side} ${x.release}`),
  );
  // One release: no release column unless asked.
  const one = r.filter((x) => x.release === 'fm-i');
  assert.doesNotMatch(formatCurveTable(one).split('\n')[0] ?? '', /release/);
  assert.match(formatCurveTable(one, { release: true }).split('\n')[0] ?? '', /release/);
});

void test("plot by side: one panel per side, each release's none its own series", () => {
  const svg = renderCurvesBySideSvg(twoReleaseRows(), { title: 'Demo' });
  assert.equal((svg.match(/<svg /g) ?? []).length, 3); // outer + item + user panels
  assert.ok(svg.includes('>Demo: item side</text>') && svg.includes('>Demo: user side</text>'));
  assert.equal((svg.match(/<g class="series"/g) ?? []).length, 7);
  for (const l of ['none (fm-i)', 'none (emerg/v1)', 'emerg (emerg/v1)', 'none (coldnas/v1)', 'coldnas (coldnas/v1)']) assert.ok(svg.includes(`>${l}</text>`), l);
  assert.ok(svg.includes('x="720"'), 'user panel to the right of the item panel');
  assert.doesNotMatch(svg, /NaN|undefined/);
  const itemOnly = renderCurvesBySideSvg(twoReleaseRows().filter((x) => x.side === 'item'));
  assert.equal((itemOnly.match(/<svg /g) ?? []).length, 2);
});

void test('curvesJson: release kept without the namespace for the demo; scope as before', () => {
  const r = twoReleaseRows().slice(0, 1);
  assert.deepEqual(Object.keys(curvesJson(r)[0] ?? {}), ['adapter', 'side', 'release', 'namespace', 'bucket', 'n', 'ctr', 'auc', 'logLoss']);
  assert.deepEqual(Object.keys(curvesJson(r, { scope: false })[0] ?? {}), ['adapter', 'side', 'bucket', 'n', 'ctr', 'auc', 'logLoss']);
  const demo = curvesJson(r, { scope: false, release: true })[0];
  assert.deepEqual(Object.keys(demo ?? {}), ['adapter', 'side', 'release', 'bucket', 'n', 'ctr', 'auc', 'logLoss']);
  assert.equal(demo?.release, 'fm-i');
});

void test("plot colours (issue 16): none shares its adapter's hue, dashed; an adapter keeps its colour across panels; n on hover", () => {
  const svg = renderCurvesBySideSvg(twoReleaseRows(), { title: 'Demo' });
  const strokeOf = (label: string): { color: string; dashed: boolean } => {
    const m = new RegExp(`<g class="series" data-label="${label.replace(/[()/]/g, '\\$&')}">\\n<path d="[^"]*" fill="none" stroke="(#[0-9a-f]{6})" stroke-width="2"( stroke-dasharray)?`).exec(svg);
    assert.ok(m, label);
    return { color: m[1] ?? '', dashed: m[2] !== undefined };
  };
  const emerg = strokeOf('emerg (emerg/v1)');
  assert.deepEqual(strokeOf('none (emerg/v1)'), { color: emerg.color, dashed: true });
  assert.equal(emerg.dashed, false);
  const coldnas = strokeOf('coldnas (coldnas/v1)');
  assert.deepEqual(strokeOf('none (coldnas/v1)'), { color: coldnas.color, dashed: true });
  assert.notEqual(emerg.color, coldnas.color);
  assert.match(svg, /<title>emerg \(emerg\/v1\) 0: AUC 0\.\d{4}, n 10<\/title>/);
  // fm-adagrad on both sides: one colour in both panels, whatever else each panel shows.
  const rows = twoReleaseRows().filter((r) => r.release.startsWith('fm'));
  const both = [...rows, ...rows.filter((r) => r.side === 'item').map((r) => ({ ...r, side: 'user' as const, release: 'fm-u', adapter: 'fm-adagrad' }))];
  const panels = renderCurvesBySideSvg(both, { label: (r) => `${r.adapter} ${r.side}` });
  const colors = [...panels.matchAll(/data-label="fm-adagrad (item|user)">\n<path d="[^"]*" fill="none" stroke="(#[0-9a-f]{6})"/g)].map((m) => m[2]);
  assert.equal(colors.length, 2);
  assert.equal(colors[0], colors[1]);
});

void test('curveStyles: fixed hues, lighter shades per release of one adapter, grey for a none without a single partner', () => {
  const k = (adapter: string, side: string, release: string): SeriesKey => ({ adapter, side, namespace: 'live', release });
  const styles = curveStyles([k('fm-adagrad', 'item', 'fm/1'), k('none', 'item', 'fm/1'), k('fm-adagrad', 'item', 'fm/2'), k('none', 'item', 'fm/2'), k('none', 'user', 'x'), k('zeta', 'user', 'z')]);
  const [a, an, b, bn, orphan, zeta] = styles;
  assert.deepEqual(an, { color: a?.color, dash: true });
  assert.deepEqual(bn, { color: b?.color, dash: true });
  assert.notEqual(a?.color, b?.color);
  assert.equal(b?.color, lighten(a?.color ?? '', 1));
  assert.deepEqual(orphan, { color: NEUTRAL_COLOR, dash: true });
  assert.equal(zeta?.dash, false);
  assert.deepEqual(adapterColors(['fm-adagrad']).get('fm-adagrad'), adapterColors(['zeta', 'emerg', 'fm-adagrad']).get('fm-adagrad'));
});
