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
 * Backpressure: when the growing segment holds more than `maxGrowing` items (the sealer is behind),
 * the handler waits for the sealer before it returns, so the consumer stops fetching.
 */
import { randomUUID } from 'node:crypto';
import { silentLogger, type Logger } from '../lib/log.js';
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

  /** Joins its own group and starts indexing; resolves once the consumer runs. */
  async start(): Promise<void> {
    const groupId = `${this.opts.groupPrefix ?? 'thaw-retrieval'}-${randomUUID()}`;
    const consumer = new BatchConsumer({ kafka: this.opts.kafka, groupId, topics: [this.profileTopic, this.eventTopic], fromBeginning: this.opts.fromBeginning ?? true, logger: this.logger, maxWaitTimeMs: 100 });
    this.consumer = consumer;
    consumer.onFailed((err) => this.logger.error('retrieval indexer stopped', { error: String(err) }));
    await consumer.start((batch) => this.handle(batch));
    this.logger.info('indexing items', { groupId, topics: [this.profileTopic, this.eventTopic] });
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
