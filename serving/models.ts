/**
 * Several models side by side in one server (issue 12, "model as a service"): a named scoring
 * pipeline per model, each with its own release pointer, state namespace, settings, stages,
 * queues, admission and cache, so a slow or overloaded model never makes another's requests wait
 * in its queues. What is safe to share is shared: the HTTP server, the metrics registry (every
 * series labelled `model`) and, in `thaw serve`, one Redis client. The request picks a model by path
 * (`POST /v1/models/:name/score`) or by its body's `model` field (`POST /v1/score`); without one,
 * the default model (the first) scores it (serving/routes.ts).
 *
 * Lifecycle: the registry starts, drains and stops its pipelines together; a pipeline that fails
 * to start stops them all. `stop()` closes what the pipelines own, then what the registry was given
 * to close (the shared Redis client).
 */
import { ThawError } from '../lib/errors.js';
import { ServingMetricFamilies } from './metrics.js';
import type { PipelineState, ScoringPipeline } from './pipeline.js';
import { MODEL_NAME } from './request.js';

/** What `GET /v1/models` says of a model besides its release (how it was configured). */
export interface ServedModelInfo {
  adapter?: string;
  /** Model name in its release directory. */
  model?: string;
  namespace?: string;
  releaseDir?: string;
}

export interface ServedModel {
  readonly name: string;
  readonly pipeline: ScoringPipeline;
  readonly info: ServedModelInfo;
}

/** One model's state as `GET /v1/models` and `GET /readyz` report it. */
export interface ModelStatus extends ServedModelInfo {
  name: string;
  default: boolean;
  ready: boolean;
  state: PipelineState;
  release: string;
  releaseAgeMs: number;
  releasesRefused: number;
  store: 'ok' | 'unreachable';
}

/** A request named a model the server does not serve: HTTP 404, the known ones listed. */
export class UnknownModelError extends ThawError {
  override readonly name = 'UnknownModelError';
  readonly model: string;
  readonly known: readonly string[];
  constructor(model: string, known: readonly string[]) {
    super('MODEL_NOT_FOUND', `no model ${JSON.stringify(model)}; this server serves ${known.map((k) => JSON.stringify(k)).join(', ')}`);
    this.model = model;
    this.known = known;
  }
}

/** The name of the one model of a server built over a single pipeline (`thaw serve` without --models). */
export const DEFAULT_MODEL_NAME = 'default';

export class ModelRegistry {
  /** The model of requests that name none: the first. */
  readonly default: ServedModel;
  private readonly byName = new Map<string, ServedModel>();
  private readonly models: readonly ServedModel[];
  private readonly closeShared: () => Promise<void>;
  private stopping: Promise<void> | undefined;

  /**
   * @param models at least one; names unique, letters, digits, `-` and `_`
   * @param closeShared closes what the pipelines share (after they all stopped)
   */
  constructor(models: readonly ServedModel[], closeShared: () => Promise<void> = () => Promise.resolve()) {
    const first = models[0];
    if (first === undefined) throw new ThawError('USAGE', 'a scoring server needs at least one model');
    for (const m of models) {
      if (!MODEL_NAME.test(m.name)) throw new ThawError('USAGE', `model name ${JSON.stringify(m.name)}: letters, digits, - and _ only (1 to 64)`);
      if (this.byName.has(m.name)) throw new ThawError('USAGE', `model name ${JSON.stringify(m.name)} is used twice`);
      this.byName.set(m.name, m);
    }
    // One /metrics: the pipelines of several models report into the same labelled families.
    if (models.some((m) => m.pipeline.metrics.families !== first.pipeline.metrics.families || (models.length > 1 && !m.pipeline.metrics.families.labelled))) {
      throw new ThawError('USAGE', 'the pipelines of several models must share labelled metric families (sharedMetrics(), ScoringPipelineOptions.metricFamilies)');
    }
    this.default = first;
    this.models = models;
    this.closeShared = closeShared;
  }

  /** Names in configuration order. */
  get names(): string[] {
    return this.models.map((m) => m.name);
  }

  /** Whether requests may name a model (several, or pipelines built with shared, labelled metrics). */
  get several(): boolean {
    return this.models.length > 1;
  }

  all(): readonly ServedModel[] {
    return this.models;
  }

  /** The model `name` (undefined: the default); UnknownModelError when it is not served. */
  get(name: string | undefined): ServedModel {
    if (name === undefined) return this.default;
    const m = this.byName.get(name);
    if (m === undefined) throw new UnknownModelError(name, this.names);
    return m;
  }

  /** The model `name` or undefined (no error). */
  find(name: string): ServedModel | undefined {
    return this.byName.get(name);
  }

  /** Starts every pipeline (their stores connected and answering); on a failure stops them all and throws it. */
  async start(timeoutMs?: number): Promise<void> {
    const results = await Promise.allSettled(this.models.map((m) => m.pipeline.start(timeoutMs)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) {
      await this.stop(0);
      throw failed.reason;
    }
  }

  /** Drains every pipeline at once (at most `graceMs`); true when each answered everything in flight. */
  async drain(graceMs?: number): Promise<boolean> {
    const done = await Promise.all(this.models.map((m) => m.pipeline.drain(graceMs)));
    return done.every(Boolean);
  }

  /** Stops every pipeline (each drains first), then closes what they share. Idempotent. */
  stop(graceMs?: number): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all(this.models.map((m) => m.pipeline.stop(graceMs)));
      await this.closeShared();
    })();
    return this.stopping;
  }

  /** Each model's state, release and staleness, and whether its store answers (within `timeoutMs`). */
  async status(timeoutMs = 500): Promise<ModelStatus[]> {
    const now = Date.now();
    return Promise.all(
      this.models.map(async (m): Promise<ModelStatus> => {
        const p = m.pipeline;
        const release = p.currentRelease();
        const store = await p.storeAnswers(timeoutMs);
        return {
          name: m.name,
          default: m === this.default,
          ...m.info,
          ready: store && p.state === 'running',
          state: p.state,
          release: release.id,
          releaseAgeMs: Math.max(0, now - release.createdAtMs),
          releasesRefused: p.refusedReleases(),
          store: store ? 'ok' : 'unreachable',
        };
      }),
    );
  }
}

/** A server of one pipeline: the model `default`, its metrics as the pipeline made them. */
export function singleModel(pipeline: ScoringPipeline, info: ServedModelInfo = {}): ModelRegistry {
  return new ModelRegistry([{ name: DEFAULT_MODEL_NAME, pipeline, info }]);
}

/** Metric families for the pipelines of several named models (each series labelled `model`). */
export function sharedMetrics(defaultMetrics = true): ServingMetricFamilies {
  return new ServingMetricFamilies(true, defaultMetrics);
}
