/**
 * The Kafka indexer of `thaw serve --retrieval`: a consumer of the item profile topic
 * (thaw.profiles.item, EntityProfile records) and of the item-keyed labelled topic
 * (thaw.labelled.by-item, LabelledEvent records) that puts a new item into the index's growing
 * segment the moment its profile or its first event arrives (serving/retrieve.ts `indexItem`):
 * searchable at once, sealed into the graph in the background.
 *
 * Every server process keeps the whole catalogue, so each process is its own consumer group
 * (`<groupPrefix>-<random>`) reading every partition, from the beginning by default: an item already
 * in the snapshot costs an id lookup (events) or a tower pass (profiles, re-indexed only when the
 * vector changed). A record that does not decode is counted and skipped: the index is a view derived
 * from the topics, and the workers route the same bad record to dead letters.
 *
 * A topic missing at start is not read (warned); neither existing is a ConfigError.
 *
 * Backpressure: when the growing segment holds more than `maxGrowing` items (the sealer is behind),
 * the handler waits for the sealer before it returns, so the consumer stops fetching.
 */
import { randomUUID } from 'node:crypto';
import { ConfigError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { existingTopics } from '../streams/admin.js';
import { BatchConsumer, type MessageBatch } from '../streams/batch-consumer.js';
import type { KafkaConnection } from '../streams/kafka.js';
import { defaultSerde } from '../streams/serde.js';
import { TOPICS } from '../streams/topics.js';
import type { RetrievalService } from './retrieve.js';

export interface RetrievalIndexerOptions {
  kafka: KafkaConnection;
  service: RetrievalService;
  /** Topic of item profiles. @default thaw.profiles.item */
  profileTopic?: string;
  /** Topic of labelled events keyed by item. @default thaw.labelled.by-item */
  eventTopic?: string;
  /** Group id prefix; the group is `<prefix>-<random uuid>`, one per process. @default thaw-retrieval */
  groupPrefix?: string;
  /** Read the topics from their beginning (true) or from the latest records (false). @default true */
  fromBeginning?: boolean;
  /** Growing-segment size above which the handler waits for the sealer (items). @default 50000 */
  maxGrowing?: number;
  logger?: Logger;
}

/** Counters of the indexer. */
export interface IndexerCounts {
  records: number;
  undecodable: number;
  /** Records of a profile topic about users (not indexed). */
  ignored: number;
}

export class RetrievalIndexer {
  private consumer: BatchConsumer | undefined;
  readonly counts: IndexerCounts = { records: 0, undecodable: 0, ignored: 0 };
  private readonly profileTopic: string;
  private readonly eventTopic: string;
  private readonly maxGrowing: number;
  private readonly logger: Logger;

  constructor(private readonly opts: RetrievalIndexerOptions) {
    this.profileTopic = opts.profileTopic ?? TOPICS.profilesItem;
    this.eventTopic = opts.eventTopic ?? TOPICS.byItem;
    this.maxGrowing = opts.maxGrowing ?? 50_000;
    this.logger = (opts.logger ?? silentLogger).child({ component: 'retrieval-indexer' });
  }

  /**
   * Joins its own group and starts indexing; resolves once the consumer runs. A topic that does not
   * exist at start is not read (a warning says so); when neither exists, start fails with
   * CONFIG_INVALID naming the option.
   */
  async start(): Promise<void> {
    const groupId = `${this.opts.groupPrefix ?? 'thaw-retrieval'}-${randomUUID()}`;
    const topics = await existingTopics(this.opts.kafka, [this.profileTopic, this.eventTopic], this.logger);
    if (topics.length === 0)
      throw new ConfigError(
        'retrievalProfileTopic',
        `neither ${this.profileTopic} nor ${this.eventTopic} (--retrieval-event-topic) exists on the Kafka cluster: create them (thaw produce / thaw rekey do) or name others`,
      );
    for (const t of [this.profileTopic, this.eventTopic]) if (!topics.includes(t)) this.logger.warn('retrieval: topic does not exist, not read', { topic: t });
    const consumer = new BatchConsumer({ kafka: this.opts.kafka, groupId, topics, fromBeginning: this.opts.fromBeginning ?? true, logger: this.logger, maxWaitTimeMs: 100 });
    this.consumer = consumer;
    consumer.onFailed((err) => this.logger.error('retrieval indexer stopped', { error: String(err) }));
    await consumer.start((batch) => this.handle(batch));
    this.logger.info('indexing items', { groupId, topics });
  }

  async stop(): Promise<void> {
    await this.consumer?.stop();
    this.consumer = undefined;
  }

  private async handle(batch: MessageBatch): Promise<void> {
    const serde = defaultSerde();
    const service = this.opts.service;
    const isProfile = batch.topic === this.profileTopic;
    for (const m of batch.messages) {
      this.counts.records++;
      if (m.value === null) continue;
      try {
        if (isProfile) {
          const p = serde.decodeProfile(m.value);
          if (p.side !== 'item') this.counts.ignored++;
          else service.indexItem(p.entityId, p.features, 'profile');
        } else {
          const e = serde.decodeLabelled(m.value);
          service.indexItem(e.itemId, e.itemFeatures, 'event');
        }
      } catch (err) {
        this.counts.undecodable++;
        if (this.counts.undecodable <= 10) this.logger.warn('record not indexed: it does not decode', { topic: batch.topic, partition: batch.partition, offset: m.offset, error: String(err) });
      }
    }
    while (service.index.growingCount > this.maxGrowing) await new Promise((r) => setTimeout(r, 10));
  }
}
