/**
 * `thaw serve tune`: replays a recorded load against a real scoring pipeline for each candidate
 * stage setting (serving/resource-manager.ts's coordinate descent) and writes the best feasible one
 * for `thaw serve --settings`. Each replay builds its pipeline as `thaw serve` does (release
 * follower, Redis state source, a fresh cache), so every setting starts from the same state.
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { RETRIEVAL_KEYS, serveFields, type ServeConfig } from '../../config/commands/serve.js';
import { servedModels } from '../../config/commands/serve-models.js';
import type { ServeTuneConfig } from '../../config/commands/serve-tune.js';
import { readLoad } from '../../serving/load-recording.js';
import { replayLoad, type ReplayResult } from '../../serving/load-replay.js';
import { searchSettings, SETTINGS_FORMAT, type SettingsFile, type StageSettings, type Trial } from '../../serving/resource-manager.js';
import { EXIT, type Command, type CommandContext } from '../context.js';
import { buildModels } from './serve-models.js';

export const serveTuneCommand: Command<ServeTuneConfig> = { run: tune };

const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '–');

/** One line per replay. */
export function trialLine(t: Trial): string {
  const s = t.settings;
  const r = t.result;
  return `fetchConcurrency ${s.fetchConcurrency}, modelMaxBatch ${s.modelMaxBatch}, modelMaxWaitMs ${s.modelMaxWaitMs}, maxInFlight ${s.maxInFlight}: goodput ${f1(r.goodputPerSec)}/s, p50 ${f1(r.p50)} ms, p99 ${f1(r.p99)} ms, 503 ${r.shed}${t.feasible ? '' : ' (p99 past the deadline)'}`;
}

async function tune(cfg: ServeTuneConfig, ctx: CommandContext): Promise<number> {
  const log = ctx.logger.child({ command: 'serve tune' });
  const load = readLoad(cfg.load);
  // The serve config of the one model replayed: no listener, no release announcements (a replay is short).
  // No retrieval either: its keys at their defaults.
  const serveCfg: ServeConfig = {
    ...cfg,
    ...serveFields.pick(RETRIEVAL_KEYS).parse({}),
    demo: false,
    out: '.thaw/demo',
    host: '127.0.0.1',
    port: 0,
    processes: 1,
    releasePollMs: 10_000,
    releaseAnnouncements: false,
    recordMaxArrivals: 100_000,
  };
  const specs = servedModels(serveCfg);
  const evaluate = async (settings: StageSettings): Promise<ReplayResult> => {
    const c = { ...serveCfg, ...settings };
    const registry = await buildModels(c, servedModels(c), log);
    try {
      await registry.start();
      const pipeline = registry.all()[0]?.pipeline;
      if (pipeline === undefined) throw new Error('no pipeline built');
      return await replayLoad(pipeline, load);
    } finally {
      await registry.stop();
    }
  };
  const start: StageSettings = { fetchConcurrency: cfg.fetchConcurrency, modelMaxBatch: cfg.modelMaxBatch, modelMaxWaitMs: cfg.modelMaxWaitMs, maxInFlight: cfg.maxInFlight };
  ctx.stdout.write(`thaw serve tune: ${load.arrivals.length} arrivals over ${f1(load.spanMs / 1000)} s, deadline ${load.deadlineMs} ms, model ${specs[0]?.model ?? '?'} (${cfg.adapter})\n`);
  // One untimed replay first: the first pipeline of a process runs cold (JIT), which would handicap the baseline.
  await evaluate(start);
  const result = await searchSettings(start, evaluate, { deadlineMs: load.deadlineMs, minGain: cfg.minGain, onTrial: (t) => ctx.stdout.write(`  ${trialLine(t)}\n`) });
  const doc: SettingsFile = {
    format: SETTINGS_FORMAT,
    settings: result.best.settings,
    tuning: {
      load: resolve(cfg.load),
      deadlineMs: load.deadlineMs,
      arrivals: load.arrivals.length,
      replays: result.trials.length,
      minGain: cfg.minGain,
      baseline: result.baseline,
      best: result.best,
      at: new Date().toISOString(),
    },
  };
  await writeFile(cfg.settingsOut, JSON.stringify(doc, (_, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
  ctx.stdout.write(`baseline: ${trialLine(result.baseline)}\nchosen:   ${trialLine(result.best)}\nwrote ${cfg.settingsOut} (thaw serve --settings ${cfg.settingsOut})\n`);
  return EXIT.ok;
}
