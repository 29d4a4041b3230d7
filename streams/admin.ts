/** Topic administration and offset queries (kafkajs admin client behind small functions). */
import type { Admin } from 'kafkajs';
import { ConfigError, errorMessage, ThawError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { tlsCertificateProblem } from '../lib/tls.js';
import { createKafka, kafkaError, scrubSecrets, type KafkaConnection } from './kafka.js';

/** A topic to create. */
export interface TopicSpec {
  topic: string;
  /** Partition count. @default 4 */
  partitions?: number;
  /** Replication factor; -1 uses the broker's default. @default -1 */
  replicationFactor?: number;
  /** Topic configs, e.g. { 'retention.ms': '86400000' }. @default {} */
  config?: Record<string, string>;
}

/** Runs `fn` with a connected admin client and always disconnects it. */
export async function withAdmin<T>(conn: KafkaConnection, fn: (admin: Admin) => Promise<T>, logger: Logger = silentLogger): Promise<T> {
  const admin = createKafka(conn, logger).admin();
  try {
    await admin.connect();
  } catch (err) {
    throw kafkaError(conn, 'admin connect failed', err);
  }
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

/**
 * Connects an admin client and asks for the cluster's brokers: throws AUTH_FAILED when SASL is
 * refused (naming the mechanism and user, never the password), TLS_FAILED when the broker's
 * certificate is not trusted (not signed by kafka.tlsCaFile's CA), KAFKA_ERROR when no broker answers (after kafkajs' connect retries, about 10 s). For
 * start-up checks.
 */
export async function probeKafka(conn: KafkaConnection, logger?: Logger): Promise<void> {
  try {
    await withAdmin(conn, (admin) => admin.describeCluster(), logger);
  } catch (err) {
    const cause = err instanceof ThawError && err.cause !== undefined ? err.cause : err;
    if (cause instanceof Error && /SASL|Authentication/i.test(`${cause.name} ${cause.message}`)) {
      const who = conn.sasl === undefined ? 'no SASL configured' : `${conn.sasl.mechanism.toUpperCase()} for user ${JSON.stringify(conn.sasl.username)}`;
      throw new ThawError('AUTH_FAILED', `kafka: SASL authentication failed (${who}): ${scrubSecrets(errorMessage(cause), conn)}; check kafka.sasl.username and kafka.sasl.password`, { cause: err });
    }
    const tls = tlsCertificateProblem(cause);
    if (tls !== undefined) {
      throw new ThawError('TLS_FAILED', `kafka: TLS certificate not trusted (${scrubSecrets(tls, conn)}); check kafka.tlsCaFile`, { cause: err });
    }
    throw kafkaError(conn, 'kafka unreachable', err);
  }
}

/** Creates the topics that do not exist yet (existing ones are left as they are) and waits for leaders. */
export async function ensureTopics(conn: KafkaConnection, topics: readonly TopicSpec[], logger?: Logger): Promise<void> {
  topics.forEach((t, i) => {
    if (typeof t.topic !== 'string' || !/^[A-Za-z0-9._-]{1,249}$/.test(t.topic)) throw new ConfigError(`topics[${i}].topic`, `invalid topic name ${JSON.stringify(t.topic)}`);
    if (t.partitions !== undefined && (!Number.isInteger(t.partitions) || t.partitions < 1)) throw new ConfigError(`topics[${i}].partitions`, 'must be an integer >= 1');
  });
  if (topics.length === 0) return;
  await withAdmin(
    conn,
    async (admin) => {
      try {
        const existing = new Set(await admin.listTopics());
        const missing = topics.filter((t) => !existing.has(t.topic));
        if (missing.length === 0) return;
        await admin.createTopics({
          waitForLeaders: true,
          topics: missing.map((t) => ({
            topic: t.topic,
            numPartitions: t.partitions ?? 4,
            replicationFactor: t.replicationFactor ?? -1,
            configEntries: Object.entries(t.config ?? {}).map(([name, value]) => ({ name, value })),
          })),
        });
      } catch (err) {
        throw kafkaError(conn, `creating topics ${topics.map((t) => t.topic).join(',')} failed`, err);
      }
    },
    logger,
  );
}

/** Deletes the topics that exist; unknown names are ignored. */
export async function deleteTopics(conn: KafkaConnection, topics: readonly string[], logger?: Logger): Promise<void> {
  if (topics.length === 0) return;
  await withAdmin(
    conn,
    async (admin) => {
      try {
        const existing = new Set(await admin.listTopics());
        const present = topics.filter((t) => existing.has(t));
        if (present.length > 0) await admin.deleteTopics({ topics: present });
      } catch (err) {
        throw kafkaError(conn, `deleting topics ${topics.join(',')} failed`, err);
      }
    },
    logger,
  );
}

/** Per-partition low (first) and high (next) offsets of a topic. */
export async function topicOffsets(admin: Admin, topic: string): Promise<{ partition: number; low: number; high: number }[]> {
  const rows = await admin.fetchTopicOffsets(topic);
  return rows.map((r) => ({ partition: r.partition, low: Number(r.low), high: Number(r.high) })).sort((a, b) => a.partition - b.partition);
}

/**
 * Messages not yet committed by `groupId` on `topics` (sum over partitions). A partition without a
 * committed offset counts from its low offset (the group would start there with fromBeginning).
 */
export async function groupLag(admin: Admin, groupId: string, topics: readonly string[]): Promise<number> {
  const committed = await admin.fetchOffsets({ groupId, topics: [...topics] });
  let lag = 0;
  for (const topic of topics) {
    const ends = await topicOffsets(admin, topic);
    const parts = committed.find((c) => c.topic === topic)?.partitions ?? [];
    for (const e of ends) {
      const c = Number(parts.find((p) => p.partition === e.partition)?.offset ?? -1);
      lag += Math.max(0, e.high - Math.max(c < 0 ? e.low : c, e.low));
    }
  }
  return lag;
}

/** Partitions of `topic` (from the cluster's metadata); throws KAFKA_ERROR when the topic does not exist. */
export async function partitionCount(conn: KafkaConnection, topic: string, logger?: Logger): Promise<number> {
  return withAdmin(
    conn,
    async (admin) => {
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      const n = meta.topics.find((t) => t.name === topic)?.partitions.length ?? 0;
      if (n === 0) throw new ThawError('KAFKA_ERROR', `topic ${topic} has no partitions (does it exist?)`);
      return n;
    },
    logger,
  );
}
