/** Topic administration and offset queries (kafkajs admin client behind small functions). */
import { AssignerProtocol, type Admin } from 'kafkajs';
import pRetry from 'p-retry';
import { ConfigError, errorMessage, ThawError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { tlsCertificateProblem } from '../lib/tls.js';
import { createKafka, kafkaError, scrubSecrets, type KafkaConnection } from './kafka.js';
import { partitionKey, type TopicPartition } from './assignment.js';

/** A topic to create. */
export interface TopicSpec {
  topic: string;
  /** Partition count. @default 4 */
  partitions?: number;
  /**
   * Copies of each partition (count, 1..brokers in the cluster). @default min(3, brokers in the
   * cluster): 3 on a production cluster, 1 on a single development broker (see replicationDefaults)
   */
  replicationFactor?: number;
  /**
   * Topic configs, e.g. { 'retention.ms': '86400000' }. `min.insync.replicas` defaults to
   * min(2, replicationFactor − 1), at least 1 (see replicationDefaults); a value here wins. @default {}
   */
  config?: Record<string, string>;
}

/**
 * The replication Thaw gives a topic it creates on a cluster of `brokers` brokers, when the caller
 * does not choose: replication factor min(3, brokers) and min.insync.replicas min(2, RF − 1), at least
 * 1. With the producers' acks=all, a write is acknowledged once 2 of the 3 copies have it, so one
 * broker can die (or be restarted for an upgrade) with no write refused and no acknowledged write
 * lost; with a single development broker both are 1. Thaw sets min.insync.replicas on the topic
 * because Kafka's broker default (1) would let acks=all acknowledge a write held by the leader alone.
 */
export function replicationDefaults(brokers: number, replicationFactor?: number): { replicationFactor: number; minInsyncReplicas: number } {
  const rf = replicationFactor ?? Math.max(1, Math.min(3, brokers));
  return { replicationFactor: rf, minInsyncReplicas: Math.max(1, Math.min(2, rf - 1)) };
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

/**
 * Creates the topics that do not exist yet and waits for leaders; replication as `replicationDefaults`
 * says unless a spec chooses. Existing topics are left as they are, with a warning when one has fewer
 * copies than asked for (Kafka cannot change a replication factor in place).
 */
export async function ensureTopics(conn: KafkaConnection, topics: readonly TopicSpec[], logger: Logger = silentLogger): Promise<void> {
  topics.forEach((t, i) => {
    if (typeof t.topic !== 'string' || !/^[A-Za-z0-9._-]{1,249}$/.test(t.topic)) throw new ConfigError(`topics[${i}].topic`, `invalid topic name ${JSON.stringify(t.topic)}`);
    if (t.partitions !== undefined && (!Number.isInteger(t.partitions) || t.partitions < 1)) throw new ConfigError(`topics[${i}].partitions`, 'must be an integer >= 1');
    if (t.replicationFactor !== undefined && (!Number.isInteger(t.replicationFactor) || t.replicationFactor < 1)) {
      throw new ConfigError(`topics[${i}].replicationFactor`, 'must be an integer >= 1');
    }
  });
  if (topics.length === 0) return;
  await withAdmin(
    conn,
    async (admin) => {
      let brokers: number;
      let existing: Set<string>;
      try {
        brokers = (await admin.describeCluster()).brokers.length;
        existing = new Set(await admin.listTopics());
      } catch (err) {
        throw kafkaError(conn, 'reading the cluster before creating topics failed', err);
      }
      topics.forEach((t, i) => {
        if (t.replicationFactor !== undefined && t.replicationFactor > brokers) {
          throw new ConfigError(`topics[${i}].replicationFactor`, `${t.replicationFactor} copies asked for ${t.topic}, but the cluster has ${brokers} broker(s)`);
        }
      });
      await warnUnderReplicated(
        admin,
        topics.filter((t) => existing.has(t.topic)),
        brokers,
        logger,
      );
      const missing = topics.filter((t) => !existing.has(t.topic));
      if (missing.length === 0) return;
      try {
        await admin.createTopics({
          // Waited for below: kafkajs' own wait gives up on the first UNKNOWN_TOPIC_OR_PARTITION, which
          // a cluster answers until every broker has the new topic's metadata.
          waitForLeaders: false,
          topics: missing.map((t) => {
            const r = replicationDefaults(brokers, t.replicationFactor);
            const config = { 'min.insync.replicas': String(r.minInsyncReplicas), ...t.config };
            return {
              topic: t.topic,
              numPartitions: t.partitions ?? 4,
              replicationFactor: r.replicationFactor,
              configEntries: Object.entries(config).map(([name, value]) => ({ name, value })),
            };
          }),
        });
      } catch (err) {
        throw kafkaError(conn, `creating topics ${missing.map((t) => t.topic).join(',')} failed`, err);
      }
      await waitForLeaders(
        admin,
        missing.map((t) => t.topic),
        30_000,
      ).catch((err: unknown) => {
        throw kafkaError(conn, `topics ${missing.map((t) => t.topic).join(',')} created, but their leaders`, err);
      });
    },
    logger,
  );
}

/**
 * Runs `fn` again while it fails with an error kafkajs marks retriable (a coordinator loading or
 * moved, a leader being elected for a topic just created), for up to `timeoutMs`; then throws the
 * last error. kafkajs' admin does not retry these for every request (fetchOffsets, fetchTopicOffsets).
 */
export function retryRetriable<T>(fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  return pRetry(fn, {
    retries: Number.POSITIVE_INFINITY,
    minTimeout: 50,
    maxTimeout: 1000,
    maxRetryTime: timeoutMs,
    shouldRetry: ({ error }) => (error as { retriable?: unknown }).retriable === true,
  });
}

/** Resolves once every partition of `topics` has a leader; retriable metadata errors are asked again. */
async function waitForLeaders(admin: Admin, topics: readonly string[], timeoutMs: number): Promise<void> {
  await retryRetriable(async () => {
    const meta = await admin.fetchTopicMetadata({ topics: [...topics] });
    const ready = topics.every((name) => {
      const parts = meta.topics.find((t) => t.name === name)?.partitions ?? [];
      return parts.length > 0 && parts.every((p) => p.leader >= 0 && p.partitionErrorCode === 0);
    });
    if (!ready) throw Object.assign(new ThawError('KAFKA_ERROR', `no leader for every partition after ${timeoutMs} ms`), { retriable: true });
  }, timeoutMs);
}

/** Logs a warning for each existing topic whose partitions have fewer copies than its spec wants. */
async function warnUnderReplicated(admin: Admin, topics: readonly TopicSpec[], brokers: number, logger: Logger): Promise<void> {
  if (topics.length === 0) return;
  const meta = await admin.fetchTopicMetadata({ topics: topics.map((t) => t.topic) }).catch(() => undefined);
  for (const t of topics) {
    const want = replicationDefaults(brokers, t.replicationFactor).replicationFactor;
    const parts = meta?.topics.find((m) => m.name === t.topic)?.partitions ?? [];
    const have = Math.min(...parts.map((p) => p.replicas.length));
    if (parts.length > 0 && have < want) {
      logger.warn('existing topic has fewer copies than asked for; Kafka cannot change it in place (kafka-reassign-partitions can)', { topic: t.topic, replicationFactor: have, wanted: want });
    }
  }
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

/**
 * Where a member of `groupId` would start each of `partitions` (its committed offset, else the reset
 * position: the low offset with fromBeginning, the end otherwise) and each partition's end, by
 * `topic:partition` (streams/assignment.ts partitionKey).
 */
export async function groupPositions(
  admin: Admin,
  groupId: string,
  partitions: readonly TopicPartition[],
  fromBeginning: boolean,
): Promise<Map<string, { fetchedFrom: number; highWatermark: number }>> {
  const topics = [...new Set(partitions.map((tp) => tp.topic))];
  const committed = await admin.fetchOffsets({ groupId, topics });
  const out = new Map<string, { fetchedFrom: number; highWatermark: number }>();
  for (const topic of topics) {
    const parts = committed.find((c) => c.topic === topic)?.partitions ?? [];
    for (const end of await topicOffsets(admin, topic)) {
      const c = Number(parts.find((x) => x.partition === end.partition)?.offset ?? -1);
      const fetchedFrom = c >= 0 ? Math.max(c, end.low) : fromBeginning ? end.low : end.high;
      out.set(partitionKey({ topic, partition: end.partition }), { fetchedFrom, highWatermark: end.high });
    }
  }
  return out;
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

/** One partition's replicas as the cluster's metadata says: broker ids of the leader, all copies, the in-sync ones. */
export interface PartitionReplicas {
  partition: number;
  leader: number;
  replicas: number[];
  isr: number[];
}

/** Leader, replicas and ISR of every partition of `topic`, by partition. For drills and operators. */
export async function partitionReplicas(conn: KafkaConnection, topic: string, logger?: Logger): Promise<PartitionReplicas[]> {
  return withAdmin(
    conn,
    async (admin) => {
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      const parts = meta.topics.find((t) => t.name === topic)?.partitions ?? [];
      return parts.map((p) => ({ partition: p.partitionId, leader: p.leader, replicas: [...p.replicas], isr: [...p.isr] })).sort((a, b) => a.partition - b.partition);
    },
    logger,
  );
}

/** The partitions of `topic` each member of consumer group `groupId` holds now, by member client id. */
export async function groupAssignment(conn: KafkaConnection, groupId: string, topic: string, logger?: Logger): Promise<{ clientId: string; memberId: string; partitions: number[] }[]> {
  return withAdmin(
    conn,
    async (admin) => {
      const { groups } = await admin.describeGroups([groupId]);
      const members = groups.find((g) => g.groupId === groupId)?.members ?? [];
      return members.map((m) => {
        const decoded = m.memberAssignment.length === 0 ? null : AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
        const partitions = decoded?.assignment[topic] ?? [];
        return { clientId: m.clientId, memberId: m.memberId, partitions: [...partitions].sort((a, b) => a - b) };
      });
    },
    logger,
  );
}

/** Which of `topics` exist on the cluster now, in the order given. */
export async function existingTopics(conn: KafkaConnection, topics: readonly string[], logger?: Logger): Promise<string[]> {
  const all = new Set(await withAdmin(conn, (admin) => admin.listTopics(), logger));
  return topics.filter((t) => all.has(t));
}
