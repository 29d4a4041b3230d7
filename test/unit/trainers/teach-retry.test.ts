/** Issue 14, the teacher workers' retry policy: retried with backoff, then TEACHER_FAILED with its cause; bad input never retried. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PoisonEventError, ThawError } from '../../../lib/errors.js';
import { scoreWithRetry, teacherRetryOf } from '../../../trainers/distill/teach-retry.js';

const fast = teacherRetryOf({ retries: 3, minTimeoutMs: 1, maxTimeoutMs: 2 });

void test('teacher retry: a scorer that fails twice then scores is retried, and each retried failure is reported', async () => {
  let calls = 0;
  const seen: number[] = [];
  const out = await scoreWithRetry(
    () => {
      calls++;
      if (calls <= 2) throw new Error(`inference failed ${calls}`);
      return 'scored';
    },
    fast,
    (attempt) => seen.push(attempt),
  );
  assert.equal(out, 'scored');
  assert.equal(calls, 3);
  assert.deepStrictEqual(seen, [1, 2]);
});

void test('teacher retry: a scorer that keeps failing is tried retries + 1 times, then TEACHER_FAILED carries the last error', async () => {
  let calls = 0;
  const err = await scoreWithRetry(() => {
    calls++;
    throw new Error(`release load failed ${calls}`);
  }, fast).then(
    () => assert.fail('expected a failure'),
    (e: unknown) => e,
  );
  assert.equal(calls, 4);
  assert.ok(err instanceof ThawError);
  assert.equal(err.code, 'TEACHER_FAILED');
  assert.equal((err.cause as Error).message, 'release load failed 4');
});

void test('teacher retry: a poison event is bad input, thrown at once without retries', async () => {
  let calls = 0;
  await assert.rejects(
    scoreWithRetry(() => {
      calls++;
      throw new PoisonEventError('VALIDATION_FAILED', 'bad event');
    }, fast),
    (e: unknown) => e instanceof PoisonEventError,
  );
  assert.equal(calls, 1);
});

void test('teacher retry: retries 0 gives up on the first failure; options are range-checked naming the key', async () => {
  let calls = 0;
  await assert.rejects(
    scoreWithRetry(
      () => {
        calls++;
        return Promise.reject(new Error('down'));
      },
      teacherRetryOf({ retries: 0 }),
    ),
    { code: 'TEACHER_FAILED' },
  );
  assert.equal(calls, 1);
  assert.throws(() => teacherRetryOf({ retries: -1 }), /teacherRetry\.retries/);
  assert.throws(() => teacherRetryOf({ minTimeoutMs: 100, maxTimeoutMs: 10 }), /maxTimeoutMs/);
  assert.deepStrictEqual(teacherRetryOf(), { retries: 3, minTimeoutMs: 200, maxTimeoutMs: 5000 });
});
