/**
 * Prometheus metrics of the scoring API (`GET /metrics`), one registry per server. Per stage (parse,
 * fetch, model, respond): queue depth, wait in the queue and service time. Counts per entity (cache
 * tiers, provenance) are summed per tick / micro-batch and added once, not per entity.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export const STAGES = ['parse', 'fetch', 'model', 'respond'] as const;
export type Stage = (typeof STAGES)[number];

/** Where an entity's state came from: the in-process cache, a Redis read of this tick, nowhere (store unavailable). */
export const TIERS = ['cache', 'store', 'unavailable'] as const;
export type Tier = (typeof TIERS)[number];

const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

export class ServingMetrics {
  readonly registry = new Registry();
  readonly wait: Histogram<'stage'>;
  readonly service: Histogram<'stage'>;
  readonly depth: Gauge<'stage'>;
  readonly requests: Counter<'status'>;
  readonly shed: Counter<'reason'>;
  readonly tiers: Counter<'tier'>;
  readonly sources: Counter<'source'>;
  readonly batchSize: Histogram;
  readonly mgetKeys: Histogram;
  readonly latency: Histogram;
  readonly release: Gauge<'release'>;
  readonly releaseAge: Gauge;
  readonly releaseRefused: Counter;

  constructor(depthOf: (stage: Stage) => number, releaseOf: () => { id: string; createdAtMs: number }, defaultMetrics = true, refusedOf: () => number = () => 0) {
    const registers = [this.registry];
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'thaw_serve_' });
    this.wait = new Histogram({ name: 'thaw_serve_stage_wait_seconds', help: 'Time a request waited in a stage queue', labelNames: ['stage'], buckets: LATENCY_BUCKETS, registers });
    this.service = new Histogram({ name: 'thaw_serve_stage_service_seconds', help: 'Service time per request of a stage (a batch stage: its batch time / requests)', labelNames: ['stage'], buckets: LATENCY_BUCKETS, registers });
    this.depth = new Gauge({
      name: 'thaw_serve_stage_queue_depth',
      help: 'Requests waiting in a stage queue',
      labelNames: ['stage'],
      registers,
      collect() {
        for (const s of STAGES) this.set({ stage: s }, depthOf(s));
      },
    });
    this.requests = new Counter({ name: 'thaw_serve_requests_total', help: 'Scoring requests by HTTP status', labelNames: ['status'], registers });
    this.shed = new Counter({ name: 'thaw_serve_shed_total', help: 'Requests refused by admission control (503) by reason', labelNames: ['reason'], registers });
    this.tiers = new Counter({ name: 'thaw_serve_state_reads_total', help: 'Entity states by the tier that answered: cache (in-process, within the freshness bound), store (Redis, this tick), unavailable', labelNames: ['tier'], registers });
    this.sources = new Counter({ name: 'thaw_serve_entities_total', help: 'Scored entities by provenance: fresh, cold, shared-only', labelNames: ['source'], registers });
    this.batchSize = new Histogram({ name: 'thaw_serve_model_batch_requests', help: 'Requests per model micro-batch', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers });
    this.mgetKeys = new Histogram({ name: 'thaw_serve_mget_keys', help: 'Keys per coalesced MGET', buckets: [1, 10, 100, 1000, 5000, 20000], registers });
    this.latency = new Histogram({ name: 'thaw_serve_request_seconds', help: 'Admission to response ready', buckets: LATENCY_BUCKETS, registers });
    this.release = new Gauge({
      name: 'thaw_serve_release_info',
      help: 'The release in use (value 1)',
      labelNames: ['release'],
      registers,
      collect() {
        this.reset();
        this.set({ release: releaseOf().id }, 1);
      },
    });
    this.releaseAge = new Gauge({
      name: 'thaw_serve_release_age_seconds',
      help: 'Staleness of the release in use: now minus its publication time',
      registers,
      collect() {
        this.set((Date.now() - releaseOf().createdAtMs) / 1000);
      },
    });
    let counted = 0;
    this.releaseRefused = new Counter({
      name: 'thaw_serve_releases_refused_total',
      help: 'Releases refused (corrupt or incompatible); the one in use kept serving',
      registers,
      collect() {
        const n = refusedOf();
        if (n > counted) this.inc(n - counted);
        counted = n;
      },
    });
  }
}
