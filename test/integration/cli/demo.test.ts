import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUCKETS } from '../../../analytics/types.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Curve {
  adapter: string;
  side: string;
  release: string;
  bucket: string;
  n: number;
  ctr: number | null;
  auc: number | null;
  logLoss: number | null;
}

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/dev.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // A hang guard only (no timing assertion): the machine may be shared.
    const timer = setTimeout(() => child.kill('SIGKILL'), 900_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

/** The (side, release family, adapter) runs of a full demo: every family with its own none. */
const RUNS = [
  ['item', 'fm', 'none'],
  ['item', 'fm', 'fm-adagrad'],
  ['item', 'emerg', 'none'],
  ['item', 'emerg', 'emerg'],
  ['user', 'fm', 'none'],
  ['user', 'fm', 'fm-adagrad'],
  ['user', 'coldnas', 'none'],
  ['user', 'coldnas', 'coldnas'],
  ['user', 'fixed-adaptive', 'none'],
  ['user', 'fixed-adaptive', 'fixed-adaptive'],
] as const;

describe('thaw demo --json', () => {
  const out = join(tmpdir(), `thaw-demo-${randomUUID()}`);
  after(() => rmSync(out, { recursive: true, force: true }));
  const EVENTS = 20000;
  const TRAIN_FRACTION = 0.4;
  const rest = EVENTS - Math.floor(EVENTS * TRAIN_FRACTION);

  it('prints the curves of every adapter over its release, baselines kept apart by release, writes the SVG', async () => {
    const r = await run(['demo', '--json', '--events', String(EVENTS), '--train-fraction', String(TRAIN_FRACTION), '--out', out, '--log-level', 'warn']);
    assert.equal(r.code, 0, r.stderr);

    // stdout is exactly one JSON document.
    const result = JSON.parse(r.stdout) as {
      events: number;
      eventsPerSec: number;
      releases: { family: string; sides: string[]; release: string; trainSec: number }[];
      curves: Curve[];
      serving: { namespace: string; release: string } | null;
    };
    assert.deepEqual(Object.keys(result).sort(), ['curves', 'events', 'eventsPerSec', 'releases', 'serving']);
    // What `thaw serve --demo` serves (test/integration/cli/serve-demo.test.ts serves it).
    assert.equal(result.serving?.namespace, 'eval-fm');
    assert.match(result.serving.release, /^fm\//);
    assert.equal(result.events, EVENTS);
    assert.ok(result.eventsPerSec > 0);
    assert.deepEqual(
      result.releases.map((x) => `${x.sides.join('+')} ${x.family} ${x.release}`),
      ['user+item fm fm/history', 'item emerg emerg/history', 'user coldnas coldnas/history', 'user fixed-adaptive fixed-adaptive/history'],
    );
    for (const x of result.releases) assert.ok(x.trainSec > 0, x.release);

    for (const c of result.curves) {
      assert.deepEqual(Object.keys(c), ['adapter', 'side', 'release', 'bucket', 'n', 'ctr', 'auc', 'logLoss']);
      assert.ok(
        RUNS.some(([side, release, adapter]) => c.side === side && c.release === release && c.adapter === adapter),
        `${c.side} ${c.release} ${c.adapter}`,
      );
      assert.ok((BUCKETS as readonly string[]).includes(c.bucket), c.bucket);
      assert.ok(Number.isInteger(c.n) && c.n > 0);
      assert.ok(c.ctr !== null && c.ctr >= 0 && c.ctr <= 1);
      assert.ok(c.auc === null || (c.auc >= 0 && c.auc <= 1));
      assert.ok(c.logLoss !== null && Number.isFinite(c.logLoss) && c.logLoss > 0);
    }
    // Rows come in run order: items first, each release's none before its adapter.
    const seen = [...new Set(result.curves.map((c) => `${c.side}|${c.release}|${c.adapter}`))];
    assert.deepEqual(
      seen,
      RUNS.map((x) => x.join('|')),
    );

    const rowsOf = (side: string, release: string, adapter: string): Curve[] => result.curves.filter((c) => c.side === side && c.release === release && c.adapter === adapter);
    const auc = (side: string, release: string, adapter: string, bucket: string): number => {
      const row = rowsOf(side, release, adapter).find((c) => c.bucket === bucket);
      assert.ok(row?.auc !== null && row?.auc !== undefined, `${adapter} (${release}) ${side} ${bucket}`);
      return row.auc;
    };
    for (const [side, release, adapter] of RUNS) {
      // Every run scored every event of the window, with a finite AUC on the early and later buckets.
      assert.equal(
        rowsOf(side, release, adapter).reduce((s, c) => s + c.n, 0),
        rest,
        `${adapter} (${release}) ${side}`,
      );
      for (const bucket of ['1-2', '3-5', '6-10', '51+']) assert.ok(Number.isFinite(auc(side, release, adapter, bucket)));
    }
    // The nones of different families are different models: their curves differ.
    assert.notEqual(auc('item', 'fm', 'none', '0'), auc('item', 'emerg', 'none', '0'));
    assert.notEqual(auc('user', 'coldnas', 'none', '0'), auc('user', 'fixed-adaptive', 'none', '0'));
    // Adaptation pays on warm entities of both sides (on this short stream the early buckets hold a
    // few hundred events each: too few to assert an order on).
    for (const side of ['item', 'user']) {
      assert.ok(auc(side, 'fm', 'fm-adagrad', '51+') > auc(side, 'fm', 'none', '51+') + 0.01, `${side} 51+: fm-adagrad vs none`);
    }

    const svg = readFileSync(join(out, 'curves.svg'), 'utf8');
    assert.match(svg, /<svg[\s\S]*<\/svg>\s*$/);
    assert.ok(svg.includes('item side') && svg.includes('user side'));
    for (const label of ['none (emerg)', 'emerg (emerg)', 'coldnas (coldnas)', 'fixed-adaptive (fixed-adaptive)', 'fm-adagrad (fm)']) assert.ok(svg.includes(`>${label}</text>`), label);
  });
});

describe('thaw demo --quick', () => {
  const out = join(tmpdir(), `thaw-demo-${randomUUID()}`);
  after(() => rmSync(out, { recursive: true, force: true }));

  it('runs only the shared-FM adapters and prints the tables per side and the lift lines', async () => {
    const r = await run(['demo', '--quick', '--events', '20000', '--out', out, '--log-level', 'warn']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^item side: AUC by the item's prior events/m);
    assert.match(r.stdout, /^fm-adagrad \(fm\)(\s+\d\.\d{3}){8}$/m);
    assert.match(r.stdout, /^AUC lift of fm-adagrad over the none of fm \(item, points\): 1-2: -?\d/m);
    assert.doesNotMatch(r.stdout, /emerg|coldnas|fixed-adaptive/);
    assert.ok(existsSync(join(out, 'curves.svg')));
  });
});
