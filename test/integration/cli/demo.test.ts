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
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

describe('thaw demo --json', () => {
  const out = join(tmpdir(), `thaw-demo-${randomUUID()}`);
  after(() => rmSync(out, { recursive: true, force: true }));

  it('prints the curves as JSON only, adapters beat none early on, writes the SVG', async () => {
    const r = await run(['demo', '--json', '--events', '30000', '--out', out, '--log-level', 'warn']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.ms < 60_000, `demo took ${r.ms} ms`);

    // stdout is exactly one JSON document.
    const result = JSON.parse(r.stdout) as { events: number; eventsPerSec: number; curves: Curve[] };
    assert.deepEqual(Object.keys(result).sort(), ['curves', 'events', 'eventsPerSec']);
    assert.equal(result.events, 30000);
    assert.ok(result.eventsPerSec > 0);

    for (const c of result.curves) {
      assert.deepEqual(Object.keys(c), ['adapter', 'side', 'bucket', 'n', 'ctr', 'auc', 'logLoss']);
      assert.ok(['none', 'fm-adagrad'].includes(c.adapter), c.adapter);
      assert.ok(['item', 'user'].includes(c.side), c.side);
      assert.ok((BUCKETS as readonly string[]).includes(c.bucket), c.bucket);
      assert.ok(Number.isInteger(c.n) && c.n > 0);
      assert.ok(c.ctr !== null && c.ctr >= 0 && c.ctr <= 1);
      assert.ok(c.auc === null || (c.auc >= 0 && c.auc <= 1));
      assert.ok(c.logLoss !== null && c.logLoss > 0);
    }
    // Every (adapter, side) pair has a curve, and both adapters saw the same events.
    for (const adapter of ['none', 'fm-adagrad']) {
      for (const side of ['item', 'user']) {
        const n = result.curves.filter((c) => c.adapter === adapter && c.side === side).reduce((s, c) => s + c.n, 0);
        assert.equal(n, 30000 - Math.floor(30000 * 0.3), `${adapter}/${side}`);
      }
    }
    const auc = (adapter: string, bucket: string): number => {
      const row = result.curves.find((c) => c.adapter === adapter && c.side === 'item' && c.bucket === bucket);
      assert.ok(row?.auc !== null && row?.auc !== undefined, `${adapter} item ${bucket}`);
      return row.auc;
    };
    for (const bucket of ['1-2', '3-5']) {
      assert.ok(auc('fm-adagrad', bucket) > auc('none', bucket), `item ${bucket}: fm-adagrad ${auc('fm-adagrad', bucket)} <= none ${auc('none', bucket)}`);
    }
    // Bucket 0 is scored before any adaptation: identical for both adapters.
    assert.equal(auc('fm-adagrad', '0'), auc('none', '0'));

    const svg = join(out, 'curves.svg');
    assert.ok(existsSync(svg));
    assert.match(readFileSync(svg, 'utf8'), /<svg[\s\S]*<\/svg>\s*$/);
  });
});
