/**
 * Thaw's public API: what `import … from 'thaw'` gives. Everything else under dist/ is internal and
 * may change without notice; the `thaw` command (bin/thaw.mjs) is the other public surface.
 *
 * One export per concern, in the order data flows: event schemas and their Avro codecs, the Kafka
 * stream processors, the adaptation worker, entity state and releases, analytics, serving.
 */

// Events and their wire format.
export type { Features, Side, Impression, Click, LabelledEvent, EntityProfile } from '../schemas/types.js';
export { SIDES, entityIdOf } from '../schemas/types.js';
export { encodeImpression, decodeImpression, encodeClick, decodeClick, encodeLabelled, decodeLabelled, encodeProfile, decodeProfile } from '../streams/serde.js';
export { TOPICS, labelledTopicFor, profileTopicFor } from '../streams/topics.js';

// Stream processors (Kafka in, Kafka out).
export { EventProducer, type EventProducerOptions, type OutMessage } from '../streams/producer.js';
export { ImpressionClickJoin, type ImpressionClickJoinOptions, type JoinStats } from '../streams/join.js';
export { Rekeyer, type RekeyOptions, type RekeyStats } from '../streams/rekey.js';

// Online adaptation of per-entity parameters.
export { AdaptationWorker } from '../consumers/worker.js';
export type { AdaptationWorkerOptions, WorkerState, WorkerStats } from '../consumers/worker-types.js';
export { ADAPTER_NAMES, createAdapter, createAdapterFromRelease, isAdapterName, type AdapterName, type AdapterOptions } from '../adapters/registry.js';

// Entity state and shared-model releases.
export { RedisEntityStore, type RedisEntityStoreOptions } from '../model-store/redis-store.js';
export { CachedEntityStore, type CachedEntityStoreOptions } from '../model-store/cached-store.js';
export { ReleaseStore, type ReleaseManifest, type LoadedRelease, type ReleaseStoreOptions } from '../model-store/releases.js';

// Analytics: the prediction log and warm-up curves.
export { ClickHouseSink, type ClickHouseSinkOptions } from '../analytics/clickhouse-sink.js';
export { ChdbSink, type ChdbSinkOptions } from '../analytics/chdb-sink.js';
export { queryCurves, type CurveFilter, type CurveSource } from '../analytics/curves.js';
export type { CurveRow } from '../analytics/types.js';

// Serving.
export { startScoringServer, createScoringApp, type ScoringServer, type ScoringServerOptions } from '../serving/server.js';

// Errors: every error Thaw throws is a ThawError with a stable `code`.
export { ThawError, ConfigError, PoisonEventError, errorMessage, type ErrorCode } from '../lib/errors.js';
