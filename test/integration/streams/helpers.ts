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

/** Offsets currently in a topic (sum of high - low): the record count of a topic written without transactions. */
export async function topicCount(topic: string): Promise<number> {
  const ranges = await resolveRange(conn, topic, { offset: 0 }, { offset: Number.MAX_SAFE_INTEGER });
  return ranges.reduce((s, r) => s + r.end - r.start, 0);
}

/** Every committed record of `topic` now (read_committed; commit markers and aborted records are skipped). */
export async function readCommittedRecords(topic: string): Promise<RawMessage[]> {
  const ranges = await resolveRange(conn, topic, { offset: 0 }, { offset: Number.MAX_SAFE_INTEGER });
  const out: RawMessage[] = [];
  for await (const b of readRange(conn, topic, ranges)) out.push(...b.messages);
  return out;
}

/**
 * Waits until `topic` holds at least `n` committed records and returns all of them. Offsets are not
 * a count: topics written in transactions (rekey, join) hold a commit marker per transaction.
 */
export async function readTopic(topic: string, n: number, timeoutMs = 30_000): Promise<RawMessage[]> {
  let out: RawMessage[] = [];
  await waitFor(`${n} records in ${topic}`, async () => (out = await readCommittedRecords(topic)).length >= n, timeoutMs);
  return out;
}
