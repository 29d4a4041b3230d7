/**
 * `thaw dashboard` in a real headless Chromium, against the real ClickHouse server (a table this test
 * fills) and a real worker metrics endpoint (consumers/metrics.ts' WorkerMetrics on a free port,
 * scraped over HTTP): each side's chart has one series per (adapter, release) of that side, the
 * workers panel shows the worker's rate, lag, dead letters and release, a target nobody listens on
 * (and then the worker, once closed) shows as down, the release pointer is shown with the workers on
 * it, no console or page error happens, and SIGTERM stops the command with exit 0.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, ClickHouseLogLevel } from '@clickhouse/client';
import type { Browser, Page } from 'playwright-core';
import { ClickHouseSink } from '../../../analytics/clickhouse-sink.js';
import type { PredictionRow } from '../../../analytics/types.js';
import { WorkerMetrics } from '../../../consumers/metrics.js';
import type { BatchResult } from '../../../consumers/processor.js';
import { freePort } from '../../../lib/free-port.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import type { Side } from '../../../schemas/types.js';
import { launchChromium, openPage, startDashboard, waitForCharts, type DashboardProcess } from './browser.js';
import { rng } from '../analytics/fixtures.js';

const CH_URL = process.env.THAW_CLICKHOUSE_URL ?? 'http://127.0.0.1:18123';
const id = randomUUID().replace(/-/g, '');
const database = `thaw_dash_${id}`;
const table = `p_${id}`;
const namespace = `dash-${id.slice(0, 12)}`;

/** (side, release, adapter) of the rows: item has 4 series (fm-adagrad, emerg, and each one's none), user 3. */
const RUNS: readonly [Side, string, string][] = [
  ['item', 'fm/v1', 'fm-adagrad'],
  ['item', 'fm/v1', 'none'],
  ['item', 'emerg/v1', 'emerg'],
  ['item', 'emerg/v1', 'none'],
  ['user', 'fm/v1', 'fm-adagrad'],
  ['user', 'fm/v1', 'none'],
  ['user', 'coldnas/v1', 'coldnas'],
];

function rows(): PredictionRow[] {
  const r = rng(16);
  const out: PredictionRow[] = [];
  const t0 = Date.UTC(2026, 11, 1);
  RUNS.forEach(([side, release, adapter], k) => {
    for (let i = 0; i < 600; i++) {
      const priorCount = Math.floor(r() ** 2 * 70);
      const label: 0 | 1 = r() < 0.3 ? 1 : 0;
      const z = (label === 1 ? 0.3 + priorCount / 40 + k * 0.05 : 0) + (r() - 0.5) * 2;
      out.push({
        eventId: `e${k}-${i}`,
        eventTimeMs: t0 + (i % 2) * 86_400_000 + i,
        side,
        entityId: `${side}-${i % 50}`,
        priorCount,
        score: Math.fround(1 / (1 + Math.exp(-z))),
        label,
        adapter,
        release,
        namespace,
      });
    }
  });
  return out;
}

function batch(processed: number, totalMs: number): BatchResult {
  return {
    processed,
    skipped: 0,
    entities: processed,
    newEntities: 0,
    waves: 1,
    originMismatches: 0,
    statesWritten: processed,
    statesRefused: 0,
    maxEventMs: Date.now(),
    crossRead: 0,
    crossRefused: 0,
    timings: { loadMs: 1, computeMs: totalMs - 3, sinkMs: 1, storeMs: 1, totalMs },
  };
}

/** The little of the DOM these page functions use (the project compiles without the DOM lib). */
interface Cell {
  textContent: string | null;
}
interface Row {
  getAttribute(name: string): string | null;
  querySelectorAll(selector: string): Iterable<Cell>;
}

/** The workers table as the page shows it: per target URL, its cells' text. */
async function workerRows(page: Page): Promise<Map<string, { up: string; cells: string[] }>> {
  const list = await page.$$eval('#workers tbody tr', (trs: Row[]) =>
    trs.map((tr) => ({ target: tr.getAttribute('data-target') ?? '', up: tr.getAttribute('data-up') ?? '', cells: [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '') })),
  );
  return new Map(list.map((r) => [r.target, { up: r.up, cells: r.cells }]));
}

describe('thaw dashboard in headless Chromium', () => {
  const admin = createClient({ url: CH_URL, log: { level: ClickHouseLogLevel.OFF } });
  let dir: string;
  let browser: Browser;
  let dash: DashboardProcess;
  let worker: WorkerMetrics;
  let workerUrl: string;
  let downUrl: string;
  let ticker: NodeJS.Timeout;

  before(async () => {
    browser = await launchChromium(); // fails with how to install Chromium when it is missing
    dir = await mkdtemp(join(tmpdir(), 'thaw-dashboard-'));
    await admin.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
    const sink = new ClickHouseSink({ url: CH_URL, database, table, spoolDir: join(dir, 'spool') });
    try {
      await sink.ensureSchema();
      await sink.write(rows());
      await sink.flush();
    } finally {
      await sink.close();
    }
    const releases = new ReleaseStore({ root: join(dir, 'releases') });
    const published = await releases.publish({ model: 'fm', version: 'v1', architecture: { type: 'fm' }, files: { 'weights.bin': Buffer.alloc(16) } });
    await releases.promote('fm', 'v1');

    worker = new WorkerMetrics({ side: 'item', adapter: 'fm-adagrad', namespace, port: 0, processMetrics: false });
    workerUrl = `http://127.0.0.1:${await worker.listen()}`;
    worker.setRelease('fm/v1', published.createdAtMs);
    worker.setLag(42);
    for (let i = 0; i < 3; i++) worker.recordDeadLetter('DECODE_FAILED');
    // A working worker: batches of 100 events of 20 ms each, every 50 ms.
    ticker = setInterval(() => worker.recordBatch(batch(100, 20)), 50);
    downUrl = `http://127.0.0.1:${await freePort()}`; // nobody listens there

    dash = await startDashboard(
      [
        '--clickhouse',
        CH_URL,
        '--namespace',
        namespace,
        '--targets',
        `${workerUrl},${downUrl}`,
        '--poll-ms',
        '500',
        '--scrape-timeout-ms',
        '400',
        '--release-dir',
        join(dir, 'releases'),
        '--log-level',
        'info',
      ],
      { THAW_CLICKHOUSE_DATABASE: database, THAW_CLICKHOUSE_TABLE: table },
    );
  });

  after(async () => {
    clearInterval(ticker);
    await dash?.stop();
    await worker?.close();
    await browser?.close();
    await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await admin.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("draws each side's curves, the worker's rate and a down target, with no console error", async () => {
    const { page, errors } = await openPage(browser, dash.url);
    await waitForCharts(page);
    // Series: the API's, and what uPlot drew (its legend has a row per series plus the x series).
    assert.equal(await page.getAttribute('#chart-item', 'data-series'), '4');
    assert.equal(await page.getAttribute('#chart-user', 'data-series'), '3');
    assert.equal(await page.locator('#chart-item .u-legend .u-series').count(), 5);
    assert.equal(await page.locator('#chart-user .u-legend .u-series').count(), 4);
    const legend = await page.locator('#chart-item .u-legend').innerText();
    for (const label of ['fm-adagrad (fm/v1)', 'none (fm/v1)', 'emerg (emerg/v1)', 'none (emerg/v1)']) assert.ok(legend.includes(label), `${label} in ${legend}`);

    // n on hover: the middle of the plot is bucket 6-10; every series' legend entry shows its AUC and events there.
    const box = await page.locator('#chart-item .u-over').boundingBox();
    assert.ok(box);
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    const values = await page.locator('#chart-item .u-legend .u-series .u-value').allInnerTexts();
    const expectedN = rows().filter((r) => r.side === 'item' && r.adapter === 'emerg' && r.priorCount >= 6 && r.priorCount <= 10).length;
    assert.ok(
      values.some((v) => v.endsWith(` n ${expectedN}`)),
      `${values.join(' | ')} should show n ${expectedN}`,
    );
    // One day's curves: the rows of 2026-12-02 only (every other row of the fixture).
    assert.deepEqual(await page.locator('#day option').evaluateAll((os: Row[]) => os.map((o) => o.getAttribute('value'))), ['all', '2026-12-01', '2026-12-02']);
    await page.selectOption('#day', '2026-12-02');
    await page.waitForFunction("document.body.dataset.curvesDay === '2026-12-02'", undefined, { timeout: 10_000 });
    assert.equal(await page.getAttribute('#chart-item', 'data-series'), '4');
    const oneDay = (await (await fetch(`${dash.url}/api/curves?day=2026-12-02`)).json()) as { sides: { item: { n: number[] }[] } };
    const dayN = oneDay.sides.item.reduce((a, s) => a + s.n.reduce((x, y) => x + y, 0), 0);
    assert.equal(dayN, rows().filter((r) => r.side === 'item' && r.eventTimeMs - Date.UTC(2026, 11, 1) >= 86_400_000).length);

    // The worker's rate needs two scrapes with batches in between.
    const rateCell = JSON.stringify(`#workers tr[data-target="${workerUrl}/metrics"] td.rate`);
    await page.waitForFunction(`Number((document.querySelector(${rateCell})?.textContent ?? '').replace(/,/g, '')) > 0`, undefined, { timeout: 15_000 });
    const table = await workerRows(page);
    const up = table.get(`${workerUrl}/metrics`);
    assert.ok(up, [...table.keys()].join());
    assert.equal(up.up, 'true');
    const [, status, ns, sideAdapter, rate, lag, latency, dead, release] = up.cells;
    assert.equal(status, 'up');
    assert.equal(ns, namespace);
    assert.equal(sideAdapter, 'item / fm-adagrad');
    assert.ok(Number((rate ?? '').replace(/,/g, '')) > 0, `rate ${rate}`);
    assert.equal(lag, '42');
    // Every batch took 20 ms: the histogram's 10-25 ms bucket holds both quantiles.
    const [p50, p99] = (latency ?? '').split(' / ').map(Number);
    assert.ok(p50 !== undefined && p50 >= 10 && p50 <= 25 && p99 !== undefined && p99 >= 10 && p99 <= 25, `latency ${latency}`);
    assert.equal(dead, '3');
    assert.equal(release, 'fm/v1');
    const down = table.get(`${downUrl}/metrics`);
    assert.equal(down?.up, 'false');
    assert.match(down.cells[1] ?? '', /^down: ECONNREFUSED/);
    // The release pointer, with the one worker that runs it.
    const releases = await page.$$eval('#releases tbody tr', (trs: Row[]) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
    assert.deepEqual(
      releases.map((r) => [r[0], r[1], r[5]]),
      [['fm', 'fm/v1', '1']],
    );

    await page.screenshot({ path: join(dir, 'dashboard.png'), fullPage: true });
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('shows a worker that went away as down, and keeps serving', async () => {
    clearInterval(ticker);
    await worker.close();
    const { page, errors } = await openPage(browser, dash.url);
    await waitForCharts(page);
    await page.waitForSelector(`#workers tr[data-target="${workerUrl}/metrics"][data-up="false"]`, { timeout: 15_000 });
    const row = (await workerRows(page)).get(`${workerUrl}/metrics`);
    assert.match(row?.cells[1] ?? '', /^down: /);
    assert.equal(await page.getAttribute('#chart-item', 'data-series'), '4');
    const api = (await (await fetch(`${dash.url}/api/workers`)).json()) as { targets: { url: string; up: boolean; error: string | null }[] };
    assert.deepEqual(
      api.targets.map((t) => t.up),
      [false, false],
    );
    assert.deepEqual(errors, []);
    await page.close();
    assert.equal(await dash.stop(), 0, dash.stderr());
  });
});
