import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ageBand, readMl100k, readMl1m, readMovieLensProfiles } from '../../../sources/movielens.js';
import { ThawError } from '../../../lib/errors.js';
import type { LabelledEvent } from '../../../schemas/types.js';

// The real dataset (not in the repository: MovieLens may not be redistributed).
const ML100K = process.env.THAW_ML100K_DIR ?? path.resolve(import.meta.dirname, '../../../../shared/data/ml-100k');

async function collect(it: AsyncIterable<LabelledEvent>): Promise<LabelledEvent[]> {
  const out: LabelledEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
}

void test('MovieLens-100K: 100,000 time-sorted events, label = rating >= 4', async () => {
  const evs = await collect(readMl100k(ML100K));
  assert.equal(evs.length, 100_000);
  assert.equal(
    evs.reduce((s, e) => s + e.label, 0),
    55_375,
  ); // ratings >= 4 in u.data
  assert.equal(new Set(evs.map((e) => e.userId)).size, 943);
  assert.equal(new Set(evs.map((e) => e.itemId)).size, 1682);
  assert.equal(new Set(evs.map((e) => e.eventId)).size, 100_000);
  for (let i = 1; i < evs.length; i++) {
    const a = evs[i - 1]!;
    const b = evs[i]!;
    const order = a.timeMs - b.timeMs || Number(a.userId) - Number(b.userId) || Number(a.itemId) - Number(b.itemId);
    assert.ok(order < 0, `events ${i - 1} and ${i} out of order`);
  }
  // The earliest rating in u.data: user 259 rated item 255 at 874724710.
  assert.deepEqual(evs[0], {
    eventId: 'ml100k-259-255',
    timeMs: 874_724_710_000,
    userId: '259',
    itemId: '255',
    label: 1,
    userFeatures: { age: ['18'], gender: ['M'], occupation: ['student'], zip2: ['48'] },
    itemFeatures: { genres: ['Comedy', 'Romance'], year: ['1997'] },
  });
  // Item 267 has no title, date or year: no year field.
  const unknown = evs.find((e) => e.itemId === '267')!;
  assert.deepEqual(unknown.itemFeatures, { genres: ['unknown'] });
});

void test('MovieLens-100K title tokens are optional', async () => {
  const profiles = await readMovieLensProfiles('ml100k', ML100K, { titleTokens: true });
  const toy = profiles.find((p) => p.side === 'item' && p.entityId === '1')!;
  assert.deepEqual(toy.features, { genres: ['Animation', "Children's", 'Comedy'], title: ['toy', 'story'], year: ['1995'] });
  assert.equal(profiles.filter((p) => p.side === 'user').length, 943);
});

void test('ages are bucketed into the ML-1M bands', () => {
  assert.deepEqual([7, 17, 18, 24, 25, 34, 35, 44, 45, 49, 50, 55, 56, 73].map(ageBand), ['1', '1', '18', '18', '25', '25', '35', '35', '45', '45', '50', '50', '56', '56']);
});

void test('MovieLens-1M parser on a fixture', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'thaw-ml1m-'));
  try {
    await writeFile(join(dir, 'users.dat'), '1::F::1::10::48067\n2::M::56::16::70072\n');
    // latin1 title: "Café" must survive the decoding.
    await writeFile(join(dir, 'movies.dat'), Buffer.from("1::Toy Story (1995)::Animation|Children's|Comedy\n2::Caf\xe9 Society (1995)::Drama\n", 'latin1'));
    await writeFile(join(dir, 'ratings.dat'), '2::1::3::978300760\n1::2::5::978300760\n1::1::4::978300000\n');
    const evs = await collect(readMl1m(dir, { titleTokens: true }));
    assert.deepEqual(
      evs.map((e) => e.eventId),
      ['ml1m-1-1', 'ml1m-1-2', 'ml1m-2-1'],
    );
    assert.deepEqual(
      evs.map((e) => e.label),
      [1, 1, 0],
    );
    assert.equal(evs[0]!.timeMs, 978_300_000_000);
    assert.deepEqual(evs[0]!.userFeatures, { age: ['1'], gender: ['F'], occupation: ['10'], zip2: ['48'] });
    assert.deepEqual(evs[1]!.itemFeatures, { genres: ['Drama'], title: ['café', 'society'], year: ['1995'] });
    // Real users.dat / movies.dat parse too.
    const real = await readMovieLensProfiles('ml1m', path.resolve(import.meta.dirname, '../../../../shared/data/ml-1m'));
    assert.equal(real.filter((p) => p.side === 'user').length, 6040);
    assert.equal(real.filter((p) => p.side === 'item').length, 3883);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

void test('MovieLens errors name the file and line', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'thaw-ml1m-'));
  try {
    await writeFile(join(dir, 'users.dat'), '1::F::1::10::48067\n');
    await writeFile(join(dir, 'movies.dat'), '1::Toy Story (1995)::Comedy\n');
    await writeFile(join(dir, 'ratings.dat'), '1::1::4::978300000\n1::1::9::978300001\n');
    await assert.rejects(collect(readMl1m(dir)), (e: unknown) => e instanceof ThawError && e.code === 'DATA_FORMAT' && /ratings\.dat:2: rating must be 1\.\.5/.test(e.message));
    await writeFile(join(dir, 'ratings.dat'), '1::7::4::978300000\n');
    await assert.rejects(collect(readMl1m(dir)), (e: unknown) => e instanceof ThawError && /unknown item 7/.test(e.message));
    await assert.rejects(collect(readMl1m(join(dir, 'missing'))), (e: unknown) => e instanceof ThawError && e.code === 'DATA_FORMAT');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
