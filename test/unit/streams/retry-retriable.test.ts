// retryRetriable (streams/admin.ts) asks again only for errors kafkajs marks retriable, and gives up
// with the last error at its deadline. The clean run's cli/streams failure ("This server is not the
// leader for that topic-partition" right after a topic was created) is the case it exists for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { retryRetriable } from '../../../streams/admin.js';

class FakeKafkaError extends Error {
  constructor(
    message: string,
    readonly retriable: boolean,
  ) {
    super(message);
  }
}

void test('retryRetriable: retriable errors are asked again until the call succeeds', async () => {
  let calls = 0;
  const value = await retryRetriable(() => {
    calls++;
    return calls < 3 ? Promise.reject(new FakeKafkaError('This server is not the leader for that topic-partition', true)) : Promise.resolve(42);
  });
  assert.equal(value, 42);
  assert.equal(calls, 3);
});

void test('retryRetriable: an error that is not retriable is thrown at once', async () => {
  let calls = 0;
  await assert.rejects(
    retryRetriable(() => {
      calls++;
      return Promise.reject(new FakeKafkaError('SASL authentication failed', false));
    }),
    /SASL authentication failed/,
  );
  assert.equal(calls, 1);
});

void test('retryRetriable: past its deadline the last retriable error is thrown', async () => {
  let calls = 0;
  await assert.rejects(
    retryRetriable(() => {
      calls++;
      return Promise.reject(new FakeKafkaError(`coordinator is loading (${calls})`, true));
    }, 300),
    (err: Error) => err.message === `coordinator is loading (${calls})`,
  );
  assert.ok(calls > 1, `asked again before giving up (${calls} calls)`);
});
