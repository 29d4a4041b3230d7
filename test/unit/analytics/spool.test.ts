import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskSpool } from '../../../analytics/spool.js';
import { ThawError } from '../../../lib/errors.js';

const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'thaw-spool-unit-'));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const line = (i: number): string => JSON.stringify({ i, pad: 'x'.repeat(40) }) + '\n';

void test('segments replay in order and survive reopening; removal frees space', async () => {
  const dir = await tmp();
  let spool = await DiskSpool.open({ dir, segmentBytes: 200 });
  for (let i = 0; i < 10; i++) await spool.append(line(i));
  assert.ok(spool.segmentCount > 1, 'rolled over to several segments');
  const size = spool.sizeBytes;
  assert.equal(
    size,
    Array.from({ length: 10 }, (_, i) => Buffer.byteLength(line(i))).reduce((a, b) => a + b),
  );
  await spool.close();

  spool = await DiskSpool.open({ dir, segmentBytes: 200 });
  assert.equal(spool.sizeBytes, size);
  await spool.append(line(10)); // after reopening, new rows go behind the old ones
  const seen: number[] = [];
  for (let seg = await spool.oldest(); seg !== null; seg = await spool.oldest()) {
    for (const l of seg.text.trimEnd().split('\n')) seen.push((JSON.parse(l) as { i: number }).i);
    await spool.remove(seg);
  }
  assert.deepEqual(seen, [...Array(11).keys()]);
  assert.equal(spool.sizeBytes, 0);
  assert.ok(spool.isEmpty);
  assert.deepEqual(await readdir(dir), []);
  await spool.close();
});

void test('the segment being written is sealed before it is replayed', async () => {
  const spool = await DiskSpool.open({ dir: await tmp() });
  await spool.append(line(1));
  const seg = await spool.oldest();
  assert.ok(seg);
  await spool.append(line(2)); // goes to a new segment, not into the one being replayed
  await spool.remove(seg);
  const next = await spool.oldest();
  assert.equal(next?.text, line(2));
  await spool.close();
});

void test('a torn last line (crash mid-write) is not replayed', async () => {
  const dir = await tmp();
  let spool = await DiskSpool.open({ dir });
  await spool.append(line(1));
  await spool.close();
  const [name] = await readdir(dir);
  await appendFile(join(dir, name ?? ''), '{"i":2,"pa');
  spool = await DiskSpool.open({ dir });
  const seg = await spool.oldest();
  assert.equal(seg?.text, line(1));
  await spool.close();
});

void test('full spool: append waits for space, then rejects; never drops', async () => {
  const one = Buffer.byteLength(line(0));
  const spool = await DiskSpool.open({ dir: await tmp(), maxBytes: one * 2, fullWaitMs: 300 });
  await spool.append(line(0));
  await spool.append(line(1));
  const t0 = Date.now();
  await assert.rejects(spool.append(line(2)), (e: unknown) => e instanceof ThawError && e.code === 'SPOOL_ERROR' && /full/.test(e.message));
  assert.ok(Date.now() - t0 >= 250, 'waited before rejecting');
  assert.equal(spool.sizeBytes, one * 2);

  // A waiting append completes as soon as the drainer frees a segment.
  const pending = spool.append(line(3));
  const seg = await spool.oldest();
  assert.ok(seg);
  await spool.remove(seg);
  await pending;
  assert.equal((await spool.oldest())?.text, line(3));
  await assert.rejects(spool.append(line(4) + line(5) + line(6)), { code: 'SPOOL_ERROR' }); // larger than the whole spool
  await assert.rejects(spool.append('no newline'), { code: 'SPOOL_ERROR' });
  await spool.close();
  await assert.rejects(spool.append(line(7)), { code: 'LIFECYCLE' });
});

void test('bad options are refused naming the key', async () => {
  await assert.rejects(DiskSpool.open({ dir: await tmp(), maxBytes: 0 }), { code: 'CONFIG_INVALID', key: 'spoolMaxBytes' });
});
