/** Shared bits of the streams integration tests: connection, unique names, polling, reading a topic. */
import { randomUUID } from 'node:crypto';
import { kafkaFromEnv, type KafkaConnection } from '../../../streams/kafka.js';
import type { RawMessage } from '../../../streams/message.js';
import { readRange, resolveRange } from '../../../streams/replay.js';

export const conn: KafkaConnection = { ...kafkaFromEnv(), clientId: 'thaw-streams-test' };
export const REDIS_URL = process.env.THAW_REDIS_URL ?? 'redis://127.0.0.1:16379';

/** A topic/group name owned by one test. */
export function uniqueName(what: string): string {
  return `test.${what}.${randomUUID()}`;
}

/** Polls `check` until it returns true or `timeoutMs` passes (then throws with `what`). */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Number of records currently in a topic (sum of high - low). */
export async function topicCount(topic: string): Promise<number> {
  const ranges = await resolveRange(conn, topic, { offset: 0 }, { offset: Number.MAX_SAFE_INTEGER });
  return ranges.reduce((s, r) => s + r.end - r.start, 0);
}

/** Waits until `topic` holds at least `n` records and returns all of them. */
export async function readTopic(topic: string, n: number, timeoutMs = 30_000): Promise<RawMessage[]> {
  await waitFor(`${n} records in ${topic}`, async () => (await topicCount(topic)) >= n, timeoutMs);
  const ranges = await resolveRange(conn, topic, { offset: 0 }, { offset: Number.MAX_SAFE_INTEGER });
  const out: RawMessage[] = [];
  for await (const b of readRange(conn, topic, ranges)) out.push(...b.messages);
  return out;
}
