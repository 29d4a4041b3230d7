import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTime, readCsvEvents, readJsonlEvents, splitCsvLine } from '../../../sources/generic.js';
import { ThawError } from '../../../lib/errors.js';
import type { LabelledEvent } from '../../../schemas/types.js';

async function collect(it: AsyncIterable<LabelledEvent>): Promise<LabelledEvent[]> {
  const out: LabelledEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
}

async function withFile(name: string, text: string, fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'thaw-generic-'));
  try {
    const path = join(dir, name);
    await writeFile(path, text);
    await fn(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const rejectsAt = (p: Promise<unknown>, line: number, re: RegExp): Promise<void> =>
  assert.rejects(p, (e: unknown) => e instanceof ThawError && e.code === 'DATA_FORMAT' && e.message.includes(`:${line}: `) && re.test(e.message));

void test('parseTime accepts unix ms and ISO-8601, rejects the rest', () => {
  assert.equal(parseTime('1704067200000'), 1_704_067_200_000);
  assert.equal(parseTime(1_704_067_200_000), 1_704_067_200_000);
  assert.equal(parseTime('2024-01-01T00:00:00Z'), 1_704_067_200_000);
  assert.equal(parseTime('2024-01-01T01:00:00+01:00'), 1_704_067_200_000);
  assert.equal(parseTime('2024-01-01T00:00:00.250Z'), 1_704_067_200_250);
  assert.equal(parseTime('2024-01-01'), 1_704_067_200_000);
  for (const bad of ['', 'yesterday', '2024-01-01T00:00:00', '1.5', '-3', '2024-13-45T00:00:00Z', 1.5]) assert.equal(parseTime(bad), undefined, String(bad));
});

void test('splitCsvLine handles quotes', () => {
  assert.deepEqual(splitCsvLine('a,"b,c","say ""hi""",'), ['a', 'b,c', 'say "hi"', '']);
  assert.equal(splitCsvLine('a,"b'), undefined);
  assert.equal(splitCsvLine('"a"x,b'), undefined);
});

void test('CSV: events with multi-valued features in sorted field order', async () => {
  const csv = ['event_id,time,user_id,item_id,label,u_gender,i_tags,i_category', 'e1,2024-01-01T00:00:00Z,u1,i1,1,F,a|b,books', 'e2,1704067201000,u2,i1,0,,"x,y",books', ''].join('\n');
  await withFile('ev.csv', csv, async (path) => {
    const evs = await collect(readCsvEvents(path));
    assert.deepEqual(evs, [
      { eventId: 'e1', timeMs: 1_704_067_200_000, userId: 'u1', itemId: 'i1', label: 1, userFeatures: { gender: ['F'] }, itemFeatures: { category: ['books'], tags: ['a', 'b'] } },
      { eventId: 'e2', timeMs: 1_704_067_201_000, userId: 'u2', itemId: 'i1', label: 0, userFeatures: {}, itemFeatures: { category: ['books'], tags: ['x,y'] } },
    ]);
    assert.deepEqual(Object.keys(evs[0]!.itemFeatures), ['category', 'tags']);
  });
});

void test('CSV errors carry the line number', async () => {
  const head = 'event_id,time,user_id,item_id,label,u_g\n';
  await withFile('a.csv', head + 'e1,1,u,i,1,F\ne2,1,u,i,2,F\n', (p) => rejectsAt(collect(readCsvEvents(p)), 3, /label must be 0 or 1/));
  await withFile('b.csv', head + 'e1,1,u,i,1\n', (p) => rejectsAt(collect(readCsvEvents(p)), 2, /expected 6 cells, got 5/));
  await withFile('c.csv', head + 'e1,noon,u,i,1,F\n', (p) => rejectsAt(collect(readCsvEvents(p)), 2, /neither unix ms nor ISO-8601/));
  await withFile('d.csv', head + 'e1,1,,i,1,F\n', (p) => rejectsAt(collect(readCsvEvents(p)), 2, /empty user_id/));
  await withFile('e.csv', head + 'e1,1,u,i,1,F||M\n', (p) => rejectsAt(collect(readCsvEvents(p)), 2, /empty token in column "u_g"/));
  await withFile('f.csv', 'event_id,time,user_id,item_id,score\n', (p) => rejectsAt(collect(readCsvEvents(p)), 1, /unknown column "score"/));
  await withFile('g.csv', 'event_id,time,user_id,item_id\n', (p) => rejectsAt(collect(readCsvEvents(p)), 1, /missing column\(s\) label/));
  await withFile('h.csv', '', (p) => rejectsAt(collect(readCsvEvents(p)), 1, /empty file/));
  await assert.rejects(collect(readCsvEvents('/nonexistent/x.csv')), (e: unknown) => e instanceof ThawError && e.code === 'DATA_FORMAT');
});

void test('JSONL: time as ISO or ms, features normalised', async () => {
  const lines = [
    JSON.stringify({ eventId: 'a', time: '2024-01-01T00:00:00Z', userId: 'u', itemId: 'i', label: 1, userFeatures: { z: ['1'], a: ['2'] }, itemFeatures: { g: ['x', 'y'] } }),
    '',
    JSON.stringify({ eventId: 'b', timeMs: 5, userId: 'u', itemId: 'i', label: 0 }),
    JSON.stringify({ eventId: 'c', time: 7, userId: 'u', itemId: 'i', label: 0, userFeatures: {}, itemFeatures: {} }),
  ].join('\n');
  await withFile('ev.jsonl', lines, async (path) => {
    const evs = await collect(readJsonlEvents(path));
    assert.equal(evs.length, 3);
    assert.equal(evs[0]!.timeMs, 1_704_067_200_000);
    assert.deepEqual(Object.keys(evs[0]!.userFeatures), ['a', 'z']);
    assert.deepEqual(evs[0]!.itemFeatures, { g: ['x', 'y'] });
    assert.deepEqual([evs[1]!.timeMs, evs[2]!.timeMs], [5, 7]);
    assert.deepEqual(evs[1]!.userFeatures, {});
  });
});

void test('JSONL errors carry the line number', async () => {
  const ok = JSON.stringify({ eventId: 'a', timeMs: 1, userId: 'u', itemId: 'i', label: 1 });
  const cases: [string, RegExp][] = [
    ['{not json', /invalid JSON/],
    ['[1,2]', /expected a JSON object/],
    [JSON.stringify({ eventId: 'a', timeMs: 1, userId: 'u', itemId: 'i', label: 1, extra: 1 }), /unknown key "extra"/],
    [JSON.stringify({ eventId: '', timeMs: 1, userId: 'u', itemId: 'i', label: 1 }), /eventId must be a non-empty string/],
    [JSON.stringify({ eventId: 'a', userId: 'u', itemId: 'i', label: 1 }), /missing time/],
    [JSON.stringify({ eventId: 'a', time: 'soon', userId: 'u', itemId: 'i', label: 1 }), /neither unix ms nor ISO-8601/],
    [JSON.stringify({ eventId: 'a', timeMs: 1, userId: 'u', itemId: 'i', label: true }), /label must be 0 or 1/],
    [JSON.stringify({ eventId: 'a', timeMs: 1, userId: 'u', itemId: 'i', label: 1, userFeatures: { g: 'F' } }), /userFeatures\.g must be an array/],
  ];
  for (const [line, re] of cases) {
    await withFile('bad.jsonl', `${ok}\n\n${line}\n`, (p) => rejectsAt(collect(readJsonlEvents(p)), 3, re));
  }
});
