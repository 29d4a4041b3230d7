/**
 * Prometheus metrics of the scoring API (`GET /metrics`), one registry per server. Per stage (parse,
 * fetch, model, respond): queue depth, wait in the queue and service time. Counts per entity (cache
 * tiers, provenance) are summed per tick / micro-batch and added once, not per entity.
 *
 * Several models (serving/models.ts): their pipelines share one `ServingMetricFamilies` (one
 * registry, one metric per name) and every series carries a `model` label; a pipeline built alone
 * without a model name keeps its own families and no `model` label.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export const STAGES = ['parse', 'fetch', 'model', 'respond'] as const;
export type Stage = (typeof STAGES)[number];

/** Where an entity's state came from: the in-process cache, a Redis read of this tick, nowhere (store unavailable). */
export const TIERS = ['cache', 'store', 'unavailable'] as const;
export type Tier = (typeof TIERS)[number];

const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** What the collected gauges read from one model's pipeline. */
interface ModelSource {
  labels: { model?: string };
  depthOf: (stage: Stage) => number;
  releaseOf: () => { id: string; createdAtMs: number };
  refusedOf: () => number;
  /** Refusals already added to the counter. */
  counted: number;
}

/** The metrics of a server: one registry, one metric per name, a `model` label when `labelled`. */
export class ServingMetricFamilies {
  readonly registry = new Registry();
  readonly labelled: boolean;
  readonly wait: Histogram<'stage' | 'model'>;
  readonly service: Histogram<'stage' | 'model'>;
  readonly depth: Gauge<'stage' | 'model'>;
  readonly requests: Counter<'status' | 'model'>;
  readonly shed: Counter<'reason' | 'model'>;
  readonly tiers: Counter<'tier' | 'model'>;
  readonly sources: Counter<'source' | 'model'>;
  readonly batchSize: Histogram<'model'>;
  readonly mgetKeys: Histogram<'model'>;
  readonly latency: Histogram<'model'>;
  readonly release: Gauge<'release' | 'model'>;
  readonly releaseAge: Gauge<'model'>;
  readonly releaseRefused: Counter<'model'>;
  readonly shedThreshold: Gauge<'model'>;
  readonly shedP99Ratio: Gauge<'model'>;
  readonly pastDeadline: Counter<'model'>;
  private readonly models: ModelSource[] = [];

  /** @param labelled every series carries the `model` label (a server of named models) */
  constructor(labelled: boolean, defaultMetrics = true) {
    this.labelled = labelled;
    const registers = [this.registry];
    const m = labelled ? (['model'] as const) : ([] as const);
    const models = this.models;
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'thaw_serve_' });
    this.wait = new Histogram({ name: 'thaw_serve_stage_wait_seconds', help: 'Time a request waited in a stage queue', labelNames: [...m, 'stage'], buckets: LATENCY_BUCKETS, registers });
    this.service = new Histogram({
      name: 'thaw_serve_stage_service_seconds',
      help: 'Service time per request of a stage (a batch stage: its batch time / requests)',
      labelNames: [...m, 'stage'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.depth = new Gauge({
      name: 'thaw_serve_stage_queue_depth',
      help: 'Requests waiting in a stage queue',
      labelNames: [...m, 'stage'],
      registers,
      collect() {
        for (const src of models) for (const s of STAGES) this.set({ ...src.labels, stage: s }, src.depthOf(s));
      },
    });
    this.requests = new Counter({ name: 'thaw_serve_requests_total', help: 'Scoring requests by HTTP status', labelNames: [...m, 'status'], registers });
    this.shed = new Counter({ name: 'thaw_serve_shed_total', help: 'Requests refused by admission control (503) by reason', labelNames: [...m, 'reason'], registers });
    this.tiers = new Counter({
      name: 'thaw_serve_state_reads_total',
      help: 'Entity states by the tier that answered: cache (in-process, within the freshness bound), store (Redis, this tick), unavailable',
      labelNames: [...m, 'tier'],
      registers,
    });
    this.sources = new Counter({ name: 'thaw_serve_entities_total', help: 'Scored entities by provenance: fresh, cold, shared-only', labelNames: [...m, 'source'], registers });
    this.batchSize = new Histogram({ name: 'thaw_serve_model_batch_requests', help: 'Requests per model micro-batch', labelNames: [...m], buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers });
    this.mgetKeys = new Histogram({ name: 'thaw_serve_mget_keys', help: 'Keys per coalesced MGET', labelNames: [...m], buckets: [1, 10, 100, 1000, 5000, 20000], registers });
    this.latency = new Histogram({ name: 'thaw_serve_request_seconds', help: 'Admission to response ready', labelNames: [...m], buckets: LATENCY_BUCKETS, registers });
    this.shedThreshold = new Gauge({
      name: 'thaw_serve_shed_threshold',
      help: 'Shedding threshold: a request is refused when its predicted latency exceeds this × its deadline (serving/shed-controller.ts; 1 when off)',
      labelNames: [...m],
      registers,
    });
    this.shedP99Ratio = new Gauge({ name: 'thaw_serve_shed_window_p99_ratio', help: "The shed controller's last window: p99 of admitted latency / deadline", labelNames: [...m], registers });
    this.pastDeadline = new Counter({ name: 'thaw_serve_past_deadline_total', help: 'Admitted requests finished after their deadline (answered late or dropped late)', labelNames: [...m], registers });
    this.release = new Gauge({
      name: 'thaw_serve_release_info',
      help: 'The release in use (value 1)',
      labelNames: [...m, 'release'],
      registers,
      collect() {
        this.reset();
        for (const src of models) this.set({ ...src.labels, release: src.releaseOf().id }, 1);
      },
    });
    this.releaseAge = new Gauge({
      name: 'thaw_serve_release_age_seconds',
      help: 'Staleness of the release in use: now minus its publication time',
      labelNames: [...m],
      registers,
      collect() {
        for (const src of models) this.set(src.labels, (Date.now() - src.releaseOf().createdAtMs) / 1000);
      },
    });
    this.releaseRefused = new Counter({
      name: 'thaw_serve_releases_refused_total',
      help: 'Releases refused (corrupt or incompatible); the one in use kept serving',
      labelNames: [...m],
      registers,
      collect() {
        for (const src of models) {
          const n = src.refusedOf();
          if (n > src.counted) this.inc(src.labels, n - src.counted);
          src.counted = n;
        }
      },
    });
  }

  /** Adds a model's pipeline to the collected gauges; `model` is required when labelled, ignored otherwise. */
  add(model: string | undefined, depthOf: ModelSource['depthOf'], releaseOf: ModelSource['releaseOf'], refusedOf: ModelSource['refusedOf']): { model?: string } {
    if (this.labelled && model === undefined) throw new Error('serving metrics: a model name is required when series carry the model label');
    const labels = this.labelled && model !== undefined ? { model } : {};
    if (!this.labelled && this.models.length > 0) throw new Error('serving metrics: unlabelled families serve one model');
    this.models.push({ labels, depthOf, releaseOf, refusedOf, counted: 0 });
    return labels;
  }
}

/** A metric of the families with this model's label bound: `observe(labels, v)` / `inc(labels, v)` as prom-client's. */
interface Bound<L extends string> {
  observe(labels: Partial<Record<L, string>>, value: number): void;
  inc(labels: Partial<Record<L, string>>, value?: number): void;
}

type AnyLabels = Partial<Record<string, string>>;

function bind<L extends string>(metric: Histogram<string> | Counter<string>, model: { model?: string }): Bound<L> {
  const add = (labels: AnyLabels): AnyLabels => (model.model === undefined ? labels : { model: model.model, ...labels });
  return {
    observe: (labels, value) => (metric as Histogram<string>).observe(add(labels), value),
    inc: (labels, value) => (metric as Counter<string>).inc(add(labels), value),
  };
}

function bindPlain(metric: Histogram<'model'>, model: { model?: string }): { observe(value: number): void } {
  return { observe: model.model === undefined ? (v) => metric.observe(v) : (v) => metric.observe(model, v) };
}

/** One pipeline's view of the server's metrics: the families with its `model` label bound. */
export class ServingMetrics {
  readonly families: ServingMetricFamilies;
  /** The server's registry (shared by every model). */
  readonly registry: Registry;
  readonly wait: Pick<Bound<'stage'>, 'observe'>;
  readonly service: Pick<Bound<'stage'>, 'observe'>;
  readonly requests: Pick<Bound<'status'>, 'inc'>;
  readonly shed: Pick<Bound<'reason'>, 'inc'>;
  readonly tiers: Pick<Bound<'tier'>, 'inc'>;
  readonly sources: Pick<Bound<'source'>, 'inc'>;
  readonly batchSize: { observe(value: number): void };
  readonly mgetKeys: { observe(value: number): void };
  readonly latency: { observe(value: number): void };
  readonly pastDeadline: Pick<Bound<never>, 'inc'>;
  /** The shed controller closed a window: its threshold and p99 ratio. */
  readonly shedWindow: (threshold: number, p99Ratio: number) => void;

  /**
   * @param families the server's families (several models), or undefined: own, unlabelled ones
   * @param model this pipeline's model name (the label value when the families are labelled)
   */
  constructor(
    depthOf: (stage: Stage) => number,
    releaseOf: () => { id: string; createdAtMs: number },
    defaultMetrics = true,
    refusedOf: () => number = () => 0,
    families?: ServingMetricFamilies,
    model?: string,
  ) {
    this.families = families ?? new ServingMetricFamilies(false, defaultMetrics);
    this.registry = this.families.registry;
    const f = this.families;
    const labels = f.add(model, depthOf, releaseOf, refusedOf);
    this.wait = bind<'stage'>(f.wait, labels);
    this.service = bind<'stage'>(f.service, labels);
    this.requests = bind<'status'>(f.requests, labels);
    this.shed = bind<'reason'>(f.shed, labels);
    this.tiers = bind<'tier'>(f.tiers, labels);
    this.sources = bind<'source'>(f.sources, labels);
    this.batchSize = bindPlain(f.batchSize, labels);
    this.mgetKeys = bindPlain(f.mgetKeys, labels);
    this.latency = bindPlain(f.latency, labels);
    this.pastDeadline = bind<never>(f.pastDeadline, labels);
    f.shedThreshold.set(labels, 1);
    this.shedWindow = (threshold, p99Ratio) => {
      f.shedThreshold.set(labels, threshold);
      f.shedP99Ratio.set(labels, p99Ratio);
    };
  }
}
