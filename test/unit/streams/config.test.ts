import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, PoisonEventError, ThawError } from '../../../lib/errors.js';
import { CATALOG, catalogRegistry, SCHEMA_NAMES } from '../../../schemas/catalog.js';
import { resolveBatchConsumerOptions } from '../../../streams/batch-consumer.js';
import { DLQ_HEADERS, deadLetterOf } from '../../../streams/dead-letters.js';
import { createKafka, kafkaError, scrubSecrets, validateKafkaConnection, type KafkaConnection } from '../../../streams/kafka.js';
import { labelledTopicFor, TOPICS } from '../../../streams/topics.js';
import { PartitionTransactions } from '../../../streams/transactions.js';

function configKey(fn: () => unknown, key: string): void {
  assert.throws(fn, (err: unknown) => err instanceof ConfigError && err.key === key);
}

test('catalog: unique ids, latest per name, unknown ids rejected', () => {
  const ids = CATALOG.map((e) => e.id);
  assert.equal(new Set(ids).size, ids.length);
  const r = catalogRegistry();
  for (const name of Object.values(SCHEMA_NAMES)) assert.equal(r.latest(name).type.name, name);
  const versions = CATALOG.filter((e) => e.name === SCHEMA_NAMES.labelled).map((e) => e.version);
  assert.ok(versions.length >= 2, 'an older LabelledEvent version is kept for evolution');
  assert.equal(r.latest(SCHEMA_NAMES.labelled).id, CATALOG.find((e) => e.name === SCHEMA_NAMES.labelled && e.version === Math.max(...versions))?.id);
  assert.throws(() => r.byId(12345), /unknown schema id 12345/);
  assert.throws(() => r.latest('thaw.Nope'), /no schema named thaw.Nope/);
});

test('topics', () => {
  assert.equal(labelledTopicFor('user'), 'thaw.labelled.by-user');
  assert.equal(labelledTopicFor('item'), TOPICS.byItem);
});

test('kafka connection validation names the key and never the password', () => {
  configKey(() => validateKafkaConnection({ brokers: [] }), 'kafka.brokers');
  configKey(() => validateKafkaConnection({ brokers: ['localhost'] }), 'kafka.brokers[0]');
  configKey(() => validateKafkaConnection({ brokers: ['h:1'], sasl: { mechanism: 'gssapi' as 'plain', username: 'u', password: 'p' } }), 'kafka.sasl.mechanism');
  configKey(() => validateKafkaConnection({ brokers: ['h:1'], sasl: { mechanism: 'plain', username: '', password: 'p' } }), 'kafka.sasl.username');
  validateKafkaConnection({ brokers: ['h:1', '10.0.0.1:9093'], sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' }, ssl: true });
  // Building the client does not connect; SCRAM and TLS settings are accepted.
  createKafka({ brokers: ['h:1'], sasl: { mechanism: 'scram-sha-256', username: 'u', password: 'p' }, ssl: { rejectUnauthorized: true } });
});

test('secrets are scrubbed from Kafka error messages', () => {
  const conn: KafkaConnection = { brokers: ['h:1'], sasl: { mechanism: 'plain', username: 'bob', password: 's3cr3t-pw' }, ssl: { passphrase: 'tls-pass' } };
  assert.equal(scrubSecrets('auth s3cr3t-pw and tls-pass failed', conn), 'auth *** and *** failed');
  const e = kafkaError(conn, 'connect', new Error('SASL failed for password s3cr3t-pw'));
  assert.equal(e.code, 'KAFKA_ERROR');
  assert.ok(ThawError.isRetryable(e));
  assert.doesNotMatch(e.message, /s3cr3t/);
});

test('batch consumer options: defaults and validation', () => {
  const r = resolveBatchConsumerOptions({ kafka: { brokers: ['h:1'] }, groupId: 'g', topics: ['t'] });
  assert.equal(r.maxBatchMessages, 5000);
  assert.equal(r.partitionsConsumedConcurrently, undefined, 'default: every partition of the topics, looked up at start');
  assert.equal(resolveBatchConsumerOptions({ kafka: { brokers: ['h:1'] }, groupId: 'g', topics: ['t'], partitionsConsumedConcurrently: 1 }).partitionsConsumedConcurrently, 1);
  configKey(() => resolveBatchConsumerOptions({ kafka: { brokers: ['h:1'] }, groupId: 'g', topics: ['t'], partitionsConsumedConcurrently: 0 }), 'consumer.partitionsConsumedConcurrently');
  configKey(() => resolveBatchConsumerOptions({ kafka: { brokers: ['h:1'] }, groupId: 'g', topics: ['t'], partitionsConsumedConcurrently: 1.5 }), 'consumer.partitionsConsumedConcurrently');
  configKey(() => resolveBatchConsumerOptions({ kafka: { brokers: ['h:1'] }, groupId: 'g', topics: ['t'], partitionsConsumedConcurrently: 257 }), 'consumer.partitionsConsumedConcurrently');
  assert.equal(r.offsetCommit, 'consumer');
  configKey(() => resolveBatchConsumerOptions({ kafka: { brokers: ['h:1'] }, groupId: 'g', topics: ['t'], offsetCommit: 'transaction', pipelineDepth: 2 }), 'consumer.pipelineDepth');
  assert.equal(r.retryInitialMs, 200);
  assert.equal(r.retryMaxMs, 5000);
  assert.equal(r.fromBeginning, true);
  configKey(() => resolveBatchConsumerOptions({ kafka: { brokers: ['h:1'] }, groupId: '', topics: ['t'] }), 'consumer.groupId');
  configKey(() => resolveBatchConsumerOptions({ kafka: { brokers: ['h:1'] }, groupId: 'g', topics: [] }), 'consumer.topics');
  configKey(() => resolveBatchConsumerOptions({ kafka: { brokers: ['h:1'] }, groupId: 'g', topics: ['t'], maxBatchMessages: 0 }), 'consumer.maxBatchMessages');
  configKey(() => resolveBatchConsumerOptions({ kafka: { brokers: ['h:1'] }, groupId: 'g', topics: ['t'], retryInitialMs: 500, retryMaxMs: 100 }), 'consumer.retryMaxMs');
});

test('dead-letter copy keeps bytes and headers and adds the reason', () => {
  const msg = { topic: 'src', partition: 2, offset: 41, key: Buffer.from('k'), value: Buffer.from([1, 2, 3]), headers: { trace: 'abc' }, timestampMs: 1000 };
  const dl = deadLetterOf(msg, new PoisonEventError('VALIDATION_FAILED', 'label must be 0 or 1, got 2'));
  assert.deepStrictEqual(dl.value, msg.value);
  assert.deepStrictEqual(dl.key, msg.key);
  assert.deepStrictEqual(dl.headers, {
    trace: 'abc',
    [DLQ_HEADERS.reason]: 'label must be 0 or 1, got 2',
    [DLQ_HEADERS.code]: 'VALIDATION_FAILED',
    [DLQ_HEADERS.topic]: 'src',
    [DLQ_HEADERS.partition]: '2',
    [DLQ_HEADERS.offset]: '41',
    [DLQ_HEADERS.timestamp]: '1000',
  });
  assert.equal(deadLetterOf(msg, new Error('x'.repeat(5000))).headers?.[DLQ_HEADERS.reason]?.length, 1000);
  assert.equal(deadLetterOf({ ...msg, value: null }, 'boom').headers?.[DLQ_HEADERS.code], 'UNKNOWN');
});

void test('transactions: one stable transactional id per input partition, options checked by key', () => {
  const tx = new PartitionTransactions({ kafka: { brokers: ['h:1'] }, groupId: 'thaw-rekey' });
  assert.equal(tx.transactionalIdOf({ topic: 'thaw.labelled', partition: 3 }), 'thaw-rekey.thaw.labelled.3');
  const prefixed = new PartitionTransactions({ kafka: { brokers: ['h:1'] }, groupId: 'g', transactionalIdPrefix: 'eu-1' });
  assert.equal(prefixed.transactionalIdOf({ topic: 't', partition: 0 }), 'eu-1.t.0');
  configKey(() => new PartitionTransactions({ kafka: { brokers: ['h:1'] }, groupId: 'g', transactionTimeoutMs: 10 }), 'transactions.transactionTimeoutMs');
  configKey(() => new PartitionTransactions({ kafka: { brokers: ['h:1'] }, groupId: 'g', maxRequestBytes: 1 }), 'transactions.maxRequestBytes');
});
