/**
 * Issue 11 item 9: fuzzing decode and validation. 100,000+ records (valid encodings mutated by bit
 * flips, byte overwrites, truncation, insertion, a wrong schema id, varint bombs, pure noise; and
 * structurally hostile objects handed to validation) each end as a decoded, valid event or as a
 * PoisonEventError (what the worker dead-letters with its reason), never as another thrown error and
 * never as a hang. Deterministic (seeded), a few seconds.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PoisonEventError } from '../../../lib/errors.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { decodeClick, decodeImpression, decodeLabelled, decodeProfile, encodeLabelled, validateLabelled } from '../../../streams/serde.js';

const NOW = 1_750_000_000_000;
const RECORDS = 100_000;

/** mulberry32: a small seeded PRNG, so a failure replays. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = rng(11);
const int = (n: number): number => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
const text = (max: number): string => Array.from({ length: int(max) }, () => String.fromCodePoint(pick([0x41 + int(26), 0x30 + int(10), 0xe9, 0x1f600, 0x20, 0]))).join('');

function baseEvent(i: number): LabelledEvent {
  return {
    eventId: `e-${i}-${text(12)}`,
    timeMs: NOW - int(10_000_000),
    userId: `u-${int(1000)}`,
    itemId: `i-${int(1000)}`,
    label: int(2) as 0 | 1,
    userFeatures: int(2) === 0 ? {} : { gender: [pick(['F', 'M'])], age: [text(6)] },
    itemFeatures: { genres: Array.from({ length: int(4) }, () => text(8)) },
  };
}

const bases = Array.from({ length: 200 }, (_, i) => encodeLabelled(baseEvent(i)));

function mutate(buf: Buffer): Buffer {
  const b = Buffer.from(buf);
  switch (int(8)) {
    case 0: // bit flips
      for (let k = 1 + int(4); k > 0; k--) {
        const at = int(b.length);
        b[at] = (b[at] ?? 0) ^ (1 << int(8));
      }
      return b;
    case 1: // overwrite bytes
      for (let k = 1 + int(6); k > 0; k--) b[int(b.length)] = int(256);
      return b;
    case 2: // truncate
      return b.subarray(0, int(b.length));
    case 3: {
      // insert bytes
      const at = int(b.length);
      return Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + int(8) }, () => int(256))), b.subarray(at)]);
    }
    case 4: // wrong magic byte or schema id
      b[int(5)] = int(256);
      return b;
    case 5: {
      // varint bomb: a huge length or count right after the header
      const at = 5 + int(Math.max(1, b.length - 5));
      return Buffer.concat([b.subarray(0, at), Buffer.from([0xfe, 0xff, 0xff, 0xff, 0x0f]), b.subarray(at)]);
    }
    case 6: // trailing garbage
      return Buffer.concat([b, Buffer.from(Array.from({ length: 1 + int(16) }, () => int(256)))]);
    default: {
      // pure noise, sometimes with a valid header
      const noise = Buffer.from(Array.from({ length: int(64) }, () => int(256)));
      if (noise.length >= 5 && int(2) === 0) buf.copy(noise, 0, 0, 5);
      return noise;
    }
  }
}

/** Structurally hostile events for validation: wrong types, non-finite numbers, huge and odd strings. */
function hostileEvent(i: number): unknown {
  const e: Record<string, unknown> = { ...baseEvent(i) };
  const field = pick(['eventId', 'timeMs', 'userId', 'itemId', 'label', 'userFeatures', 'itemFeatures']);
  e[field] = pick<unknown>([undefined, null, NaN, Infinity, -1, 2, 0.5, '', 'x'.repeat(100_000), {}, [], [1], { a: [null] }, { a: 'b' }, 1n, true, NOW * 10]);
  return e;
}

type Verdict = 'ok' | 'poison';

function judge(run: () => unknown): Verdict {
  try {
    const out = run();
    if (out !== undefined) validateLabelled(out as LabelledEvent, NOW); // a decoded event is valid as well
    return 'ok';
  } catch (err) {
    if (err instanceof PoisonEventError && err.message.length > 0) return 'poison';
    throw err;
  }
}

test(`${RECORDS} mutated and random records: each decodes valid or is poison, none crashes or hangs`, { timeout: 60_000 }, () => {
  const counts = { ok: 0, poison: 0 };
  const crashes: string[] = [];
  const t0 = Date.now();
  let slowest = 0;
  for (let i = 0; i < RECORDS; i++) {
    const kind = int(10);
    const input = kind === 9 ? undefined : mutate(pick(bases));
    const started = performance.now();
    try {
      const v =
        input === undefined
          ? judge(() => {
              validateLabelled(hostileEvent(i) as LabelledEvent, NOW);
              return undefined;
            })
          : kind === 8
            ? judge(() => {
                // The other decoders share the codec: any of them may meet a stray record.
                const dec = pick([decodeImpression, decodeClick, decodeProfile]);
                dec(input, NOW);
                return undefined;
              })
            : judge(() => decodeLabelled(input, NOW));
      counts[v]++;
    } catch (err) {
      if (crashes.length < 5) crashes.push(`record ${i} (${input?.toString('hex') ?? 'object'}): ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    }
    slowest = Math.max(slowest, performance.now() - started);
  }
  assert.deepEqual(crashes, [], 'records that crashed instead of being poison');
  assert.equal(counts.ok + counts.poison, RECORDS);
  // Both outcomes are exercised: mutations that keep a record valid, and poison.
  assert.ok(counts.ok > 1000 && counts.poison > 50_000, JSON.stringify(counts));
  assert.ok(slowest < 1_000, `one record took ${slowest.toFixed(0)} ms`);
  assert.ok(Date.now() - t0 < 30_000);
});
