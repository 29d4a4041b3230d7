/**
 * The serving bench's "tuned vs default" section (issue 12, the resource manager): record a load
 * from the workload with seed A (bench/serving/record.ts), search the stage settings by replaying
 * it in this process against real pipelines over the bench's Redis states (serving/resource-manager.ts,
 * as `thaw serve tune` does), then run `thaw serve` (its own process, over HTTP) with the default
 * settings and with the tuned ones on a load of seed B at the same rate and deadline, and report
 * p50 / p99 / goodput of both. The tuning never sees seed B's requests or arrival times.
 */
import { parseLoad } from '../../serving/load-recording.js';
import { replayLoad } from '../../serving/load-replay.js';
import type { ServingOptions } from '../../serving/options.js';
import { ScoringPipeline } from '../../serving/pipeline.js';
import { fixedRelease, type ServingRelease } from '../../serving/release.js';
import { searchSettings, type SearchResult, type StageSettings } from '../../serving/resource-manager.js';
import { RedisStateSource } from '../../serving/state-source.js';
import type { LoadResult } from './loadgen.js';
import { recordWorkload } from './record.js';
import type { Workload } from './workload.js';

export interface TunedVsDefault {
  rate: number;
  tuneSeconds: number;
  seedTune: number;
  seedRun: number;
  deadlineMs: number;
  search: SearchResult;
  defaults: StageSettings;
  /** The open loop of seed B on `thaw serve`, default settings then tuned ones. */
  runs: { name: 'default' | 'tuned'; settings: StageSettings; result: LoadResult }[];
}

export interface TunedVsDefaultOptions {
  release: ServingRelease;
  redisUrl: string;
  workload: Workload;
  serving: ServingOptions;
  rate: number;
  tuneSeconds: number;
  deadlineMs: number;
  /** Runs `thaw serve` with these settings on an open loop of `workload` at `rate` (the bench's ServerProcess + loadgen). */
  runServer: (settings: StageSettings, workload: Workload) => Promise<LoadResult>;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

export const DEFAULT_STAGE_SETTINGS: StageSettings = { fetchConcurrency: 4, modelMaxBatch: 64, modelMaxWaitMs: 0, maxInFlight: 2048 };

export async function tunedVsDefault(o: TunedVsDefaultOptions): Promise<TunedVsDefault> {
  const seedTune = o.workload.seed + 1000;
  const seedRun = o.workload.seed + 2000;
  const load = parseLoad(recordWorkload({ ...o.workload, seed: seedTune }, o.rate, o.tuneSeconds, o.deadlineMs));
  const evaluate = async (settings: StageSettings) => {
    const pipeline = new ScoringPipeline({ source: new RedisStateSource({ url: o.redisUrl }), releases: fixedRelease(o.release), serving: { ...o.serving, ...settings }, defaultMetrics: false });
    await pipeline.start();
    try {
      return await replayLoad(pipeline, load);
    } finally {
      await pipeline.stop();
    }
  };
  o.log('tuning: warm-up replay', { arrivals: load.arrivals.length });
  await evaluate(DEFAULT_STAGE_SETTINGS);
  const search = await searchSettings(DEFAULT_STAGE_SETTINGS, evaluate, {
    deadlineMs: o.deadlineMs,
    onTrial: (t) => o.log('tuning replay', { ...t.settings, goodput: Math.round(t.result.goodputPerSec), p99: t.result.p99, shed: t.result.shed }),
  });
  o.log('tuned', { ...search.best.settings });
  const runs: TunedVsDefault['runs'] = [];
  for (const [name, settings] of [
    ['default', DEFAULT_STAGE_SETTINGS],
    ['tuned', search.best.settings],
  ] as const) {
    runs.push({ name, settings, result: await o.runServer(settings, { ...o.workload, seed: seedRun }) });
  }
  return { rate: o.rate, tuneSeconds: o.tuneSeconds, seedTune, seedRun, deadlineMs: o.deadlineMs, search, defaults: DEFAULT_STAGE_SETTINGS, runs };
}
