/**
 * `thaw demo`: the whole pipeline in one process with no services. A seeded synthetic stream with
 * planted structure; on its first part the releases are trained offline (the two-sided shared FM;
 * EmerG for items; ColdNAS and the fixed/adaptive split for users, with the short training below);
 * then both sides' workers of every family replay the stream in lockstep through the production
 * BatchProcessor (each side scoring with the other side's fresh state, every adapter safeguarded),
 * the shared parameters keep learning and are switched in as releases, and the rows go to embedded
 * ClickHouse (chDB), from which the warm-up curves come by the same SQL analysts run. This is
 * `thaw eval --protocol stream` (evaluation/stream/run.ts) on a synthetic source, without peers.
 *
 * Baselines: one `none` per release family (the same release, never adapted, no cross-side read).
 * An adapter's lift is over the `none` of its own family; each family writes to its own namespace.
 */
import { join, resolve } from 'node:path';
import { renderCurvesBySideSvg, writePlot } from '../../analytics/plot.js';
import { CURVE_BUCKETS, type CurveRow } from '../../analytics/types.js';
import type { DemoConfig, DemoFamily } from '../../config/commands/demo.js';
import { FAMILIES, FAMILY_ADAPTER, FAMILY_SIDES, namespaceOf } from '../../evaluation/stream/families.js';
import type { MetaTrainOverrides } from '../../evaluation/stream/releases.js';
import { formatStreamEval } from '../../evaluation/stream/report.js';
import { runStreamEval, type StreamEvalResult } from '../../evaluation/stream/run.js';
import type { LockstepFinal } from '../../evaluation/stream/lockstep.js';
import { ThawError } from '../../lib/errors.js';
import { writeDemoServing, type DemoServingManifest } from '../../serving/demo-state.js';
import type { Side } from '../../schemas/types.js';
import { EXIT, type Command, type CommandContext } from '../context.js';
import { curvesJson } from '../curve-json.js';

/**
 * Offline training of the demo's meta-learned releases: fewer epochs than `thaw train <kind>
 * --source` (STREAM_DEFAULTS: epochs 3 (coldnas 20), meta epochs 5, search epochs 10) so the demo
 * stays a first command of a few minutes, and hot = 20 events in the prefix instead of 40 (the
 * synthetic prefix has few entities with 40). ColdNAS keeps 5 retrain epochs: with 1 its scores
 * were no better than chance on the demo stream. The demo's output says so; its curves show the
 * meta-learned adapters at work, not their best numbers (`thaw eval --protocol stream` trains with
 * the defaults).
 */
export const DEMO_META_TRAIN: Readonly<Record<Exclude<DemoFamily, 'fm'>, MetaTrainOverrides>> = {
  emerg: { epochs: 1, metaEpochs: 1, minEvents: 20 },
  coldnas: { epochs: 5, searchEpochs: 2, minEvents: 20 },
  'fixed-adaptive': { epochs: 1, metaEpochs: 1, minEvents: 20 },
};

/** One release family of the demo. */
export interface DemoRelease {
  family: DemoFamily;
  /** Sides its adapter runs on. */
  sides: Side[];
  /** The release id its rows carry first (online releases follow: `<family>/on-<offset>`). */
  release: string;
  /** Offline training time, seconds. */
  trainSec: number;
}

/** What `thaw demo --json` prints. */
export interface DemoResult {
  events: number;
  /** Events replayed per second, both sides' workers of every family together. */
  eventsPerSec: number;
  releases: DemoRelease[];
  /** Rows carry `release`: the family (every family has its own none). */
  curves: ReturnType<typeof curvesJson>;
  /** What `thaw serve --demo` serves (null when the FM family did not run). */
  serving: DemoServingManifest | null;
}

export const demoCommand: Command<DemoConfig> = { run: runDemo };

/** Families to run: `--quick` is the FM only. */
function familiesOf(cfg: DemoConfig): DemoFamily[] {
  return cfg.quick ? ['fm'] : [...new Set(cfg.adapters)];
}

async function runDemo(cfg: DemoConfig, ctx: CommandContext): Promise<number> {
  const families = familiesOf(cfg);
  const out = resolve(cfg.out);
  let served: DemoServingManifest | undefined;
  // What `thaw serve --demo` serves: the FM family's last release and its fm-adagrad states.
  const onReplayed = async (final: LockstepFinal): Promise<void> => {
    const release = final.releases.get('fm');
    if (release === undefined) return;
    served = await writeDemoServing(out, { store: final.store, release, namespace: namespaceOf('fm') });
  };
  let result: StreamEvalResult;
  try {
    result = await runStreamEval({
      source: { kind: 'synthetic', events: cfg.events, seed: cfg.seed },
      historyFraction: cfg.trainFraction,
      adapters: families.map((f) => FAMILY_ADAPTER[f]),
      required: families.map((f) => FAMILY_ADAPTER[f]),
      metaTrain: DEMO_META_TRAIN,
      seed: cfg.seed,
      out,
      logger: ctx.logger,
      signal: ctx.signal,
      progressStream: ctx.stderr,
      onReplayed,
    });
  } catch (err) {
    if (ctx.signal.aborted && err instanceof ThawError && err.code === 'LIFECYCLE') return EXIT.interrupted;
    throw err;
  }
  // Items first, families in their order, each family's none before its adapter, buckets in curve order.
  const rank = (c: CurveRow): number => (c.side === 'item' ? 0 : 100) + FAMILIES.indexOf(c.release as DemoFamily) * 2 + (c.adapter === 'none' ? 0 : 1);
  const curves = result.curves.filter((c) => c.bucket !== '1-5').sort((a, b) => rank(a) - rank(b) || CURVE_BUCKETS.indexOf(a.bucket) - CURVE_BUCKETS.indexOf(b.bucket));
  const plotPath = join(out, 'curves.svg');
  await writePlot(plotPath, renderCurvesBySideSvg(curves, { title: `Thaw demo (${cfg.events.toLocaleString('en-US')} synthetic events)`, label: (r) => `${r.adapter} (${r.release})` }));
  const releases: DemoRelease[] = result.families.map((f) => ({ family: f.family, sides: [...FAMILY_SIDES[f.family]], release: `${f.family}/history`, trainSec: f.trainSec }));
  const eventsPerSec = Math.round(result.events / (result.replay.ms / 1000));

  if (cfg.json) {
    const doc: DemoResult = { events: result.events, eventsPerSec, releases, curves: curvesJson(curves, { scope: false, release: true }), serving: served ?? null };
    ctx.stdout.write(JSON.stringify(doc) + '\n');
    return EXIT.ok;
  }
  const metaKinds = families.filter((f): f is Exclude<DemoFamily, 'fm'> => f !== 'fm');
  ctx.stdout.write(
    [
      `Thaw demo (seed ${cfg.seed}).`,
      ...(metaKinds.length > 0
        ? [`Meta-learned releases use short demo training (${metaKinds.map((k) => `${k} ${JSON.stringify(DEMO_META_TRAIN[k])}`).join('; ')}); thaw train <kind> --source trains them fully.`]
        : []),
      formatStreamEval(result, `a synthetic stream (thaw demo, seed ${cfg.seed})`).trimEnd(),
      '',
      ...liftLines(result.curves),
      `Replay throughput: ${eventsPerSec.toLocaleString('en-US')} events/s (every family's workers of both sides together, in-memory store, chDB).`,
      `Plot: ${plotPath}`,
      ...families.map((f) => `Query again: thaw curves --chdb ${result.chdbDir} --namespace ${namespaceOf(f)}`),
      ...(served === undefined ? [] : [`Serve its scores: thaw serve --demo${cfg.out === '.thaw/demo' ? '' : ` --out ${cfg.out}`} (release ${served.release}, no services needed)`]),
      '',
    ].join('\n'),
  );
  return EXIT.ok;
}

/** One line per adapter: its AUC minus that of its own family's `none`, on the early buckets, per side. */
export function liftLines(rows: readonly CurveRow[]): string[] {
  const out: string[] = [];
  const runs = [...new Set(rows.filter((r) => r.adapter !== 'none').map((r) => `${r.side}|${r.release}|${r.adapter}`))];
  for (const key of runs) {
    const [side, release, adapter] = key.split('|') as [Side, string, string];
    const parts: string[] = [];
    for (const bucket of ['1-2', '3-5', '6-10'] as const) {
      const at = (name: string): CurveRow | undefined => rows.find((r) => r.side === side && r.release === release && r.bucket === bucket && r.adapter === name);
      const a = at(adapter);
      const b = at('none');
      if (a && b && Number.isFinite(a.auc) && Number.isFinite(b.auc)) parts.push(`${bucket}: ${((a.auc - b.auc) * 100).toFixed(1)}`);
    }
    if (parts.length > 0) out.push(`AUC lift of ${adapter} over the none of ${release} (${side}, points): ${parts.join(', ')}`);
  }
  if (out.length > 0) out.push('');
  return out;
}
