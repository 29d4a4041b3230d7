/**
 * How Thaw connects to Kafka. The only file that builds a kafkajs `Kafka` client, so the client
 * library can be swapped behind `streams/`. Secrets (SASL password, TLS keys) are never logged and
 * never put in error messages: `kafkaError` scrubs them.
 */
import type * as tls from 'node:tls';
import { Kafka, logLevel, type LogEntry, type SASLOptions } from 'kafkajs';
import { ConfigError, ThawError, errorMessage } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { assertKafkajsPatched } from './kafkajs-patch.js';

export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';
const SASL_MECHANISMS: readonly SaslMechanism[] = ['plain', 'scram-sha-256', 'scram-sha-512'];

/** Connection settings of a Kafka cluster. */
export interface KafkaConnection {
  /** Bootstrap brokers as `host:port`. No default: at least one is required. */
  brokers: string[];
  /** Client id reported to the brokers. @default 'thaw' */
  clientId?: string;
  /** TLS: `true` for system CAs, or node TLS options (CA, client cert/key). @default false (plaintext) */
  ssl?: boolean | tls.ConnectionOptions;
  /** SASL authentication (use with `ssl` outside a private network). @default none */
  sasl?: { mechanism: SaslMechanism; username: string; password: string };
}

/** Throws ConfigError naming the bad key. */
export function validateKafkaConnection(conn: KafkaConnection): void {
  if (!Array.isArray(conn.brokers) || conn.brokers.length === 0) throw new ConfigError('kafka.brokers', 'at least one broker is required');
  conn.brokers.forEach((b, i) => {
    if (typeof b !== 'string' || !/^[^\s:/]+:\d{1,5}$/.test(b)) throw new ConfigError(`kafka.brokers[${i}]`, `expected host:port, got ${JSON.stringify(b)}`);
  });
  if (conn.clientId !== undefined && (typeof conn.clientId !== 'string' || conn.clientId === '')) {
    throw new ConfigError('kafka.clientId', 'must be a non-empty string');
  }
  if (conn.sasl !== undefined) {
    if (!SASL_MECHANISMS.includes(conn.sasl.mechanism)) {
      throw new ConfigError('kafka.sasl.mechanism', `expected one of ${SASL_MECHANISMS.join(', ')}`);
    }
    if (typeof conn.sasl.username !== 'string' || conn.sasl.username === '') throw new ConfigError('kafka.sasl.username', 'must be a non-empty string');
    // The value itself never goes into the message.
    if (typeof conn.sasl.password !== 'string' || conn.sasl.password === '') throw new ConfigError('kafka.sasl.password', 'must be a non-empty string');
  }
}

/** Removes the connection's secrets from a message. */
export function scrubSecrets(text: string, conn: KafkaConnection): string {
  let out = text;
  const secrets: string[] = [];
  if (conn.sasl?.password) secrets.push(conn.sasl.password);
  if (typeof conn.ssl === 'object') {
    for (const k of ['key', 'passphrase', 'pfx'] as const) {
      const v = conn.ssl[k];
      if (typeof v === 'string' && v.length > 0) secrets.push(v);
    }
  }
  for (const s of secrets) out = out.split(s).join('***');
  return out;
}

/** Wraps a kafkajs failure in a retryable ThawError('KAFKA_ERROR') whose message has no secrets. */
export function kafkaError(conn: KafkaConnection, what: string, err: unknown): ThawError {
  if (err instanceof ThawError) return err;
  // The cause keeps the original error object for debugging, but its message is what gets logged.
  return new ThawError('KAFKA_ERROR', `${what}: ${scrubSecrets(errorMessage(err), conn)}`, { cause: err });
}

function toSasl(conn: KafkaConnection): SASLOptions | undefined {
  const s = conn.sasl;
  if (s === undefined) return undefined;
  switch (s.mechanism) {
    case 'plain':
      return { mechanism: 'plain', username: s.username, password: s.password };
    case 'scram-sha-256':
      return { mechanism: 'scram-sha-256', username: s.username, password: s.password };
    case 'scram-sha-512':
      return { mechanism: 'scram-sha-512', username: s.username, password: s.password };
  }
}

/** Builds a kafkajs client; its own log lines go to `logger` (warn and above), scrubbed of secrets. */
export function createKafka(conn: KafkaConnection, logger: Logger = silentLogger): Kafka {
  validateKafkaConnection(conn);
  assertKafkajsPatched();
  const log = logger.child({ component: 'kafkajs' });
  const sasl = toSasl(conn);
  return new Kafka({
    clientId: conn.clientId ?? 'thaw',
    brokers: conn.brokers,
    ...(conn.ssl !== undefined ? { ssl: conn.ssl } : {}),
    ...(sasl !== undefined ? { sasl } : {}),
    logLevel: logLevel.WARN,
    logCreator: () => (entry: LogEntry) => {
      const { message, timestamp: _t, ...rest } = entry.log;
      const fields: Record<string, unknown> = { ns: entry.namespace };
      for (const [k, v] of Object.entries(rest)) fields[k] = typeof v === 'string' ? scrubSecrets(v, conn) : v;
      const msg = scrubSecrets(String(message), conn);
      if (entry.level <= logLevel.ERROR) log.error(msg, fields);
      else if (entry.level === logLevel.WARN) log.warn(msg, fields);
      else log.debug(msg, fields);
    },
  });
}

/** Brokers from `THAW_KAFKA` (comma separated), default the local test broker. */
export function kafkaFromEnv(env: NodeJS.ProcessEnv = process.env): KafkaConnection {
  const brokers = (env.THAW_KAFKA ?? '127.0.0.1:19092')
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '');
  return { brokers };
}
