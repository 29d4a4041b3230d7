/**
 * `thaw demo`: the whole pipeline in one process with no services. A seeded synthetic stream with
 * planted structure; on the stream's first part, the shared FM of each side and the meta-learned
 * releases (EmerG: items; ColdNAS and the fixed/adaptive split: users) are trained offline on the
 * hot entities; the rest runs through the production BatchProcessor (predict, then adapt) for each
 * side and adapter, into embedded ClickHouse (chDB); the warm-up curves come from the same SQL
 * analysts run.
 *
 * Baselines: one `none` per release (the FM's NoneAdapter; a FrozenAdapter over each meta-learned
 * release: that release's initial states, never adapted). An adapter's lift is over the `none` of its
 * own release, so it measures the online adaptation alone; rows are told apart by their release.
 * Each meta-learned release writes to its own namespace (`demo-<kind>`; the FMs to `demo`): the
 * prediction log de-duplicates, and its ReplacingMergeTree collapses, rows by (namespace, adapter,
 * side, event_id), so two `none`s of one namespace scoring the same events would keep only one.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createAdapter, createAdapterFromRelease } from '../../adapters/registry.js';
import type { Adapter } from '../../adapters/types.js';
import { ChdbSink } from '../../analytics/chdb-sink.js';
import { queryCurves } from '../../analytics/curves.js';
import { renderCurvesBySideSvg, writePlot } from '../../analytics/plot.js';
import { formatCurveTable } from '../../analytics/table.js';
import { BUCKETS, type CurveRow, CURVE_BUCKETS } from '../../analytics/types.js';
import type { DemoConfig, DemoFamily } from '../../config/commands/demo.js';
import { BatchProcessor, type BatchItem } from '../../consumers/processor.js';
import { Progress } from '../../lib/progress.js';
import { MemoryEntityStore } from '../../model-store/memory-store.js';
import type { LabelledEvent, Side } from '../../schemas/types.js';
import { SyntheticStream } from '../../sources/synthetic.js';
import { initBackend } from '../../models/backend.js';
import type { LoadedRelease } from '../../model-store/releases.js';
import { trainFm } from '../../trainers/fm-trainer.js';
import { sideOfKind, trainFromEvents, type EventTrainerOptions, type StreamKind } from '../../trainers/event-trainer.js';
import { EXIT, type Command, type CommandContext } from '../context.js';
import { curvesJson } from '../curve-json.js';

const SIDES: readonly Side[] = ['item', 'user'];
const NAMESPACE = 'demo';
/** Namespace of a release's rows (see the file comment). */
const namespaceOf = (family: DemoFamily): string => (family === 'fm' ? NAMESPACE : `${NAMESPACE}-${family}`);
/** Meta-learned release kinds, in the order the demo trains and runs them (item side first). */
const META_KINDS = ['emerg', 'coldnas', 'fixed-adaptive'] as const satisfies readonly StreamKind[];

/**
 * Offline training of the demo's meta-learned releases: fewer epochs than `thaw train <kind>
 * --source` (STREAM_DEFAULTS: epochs 3 (coldnas 20), meta epochs 5, search epochs 10) so the demo
 * stays a first command of a few minutes, and hot = 20 events in the prefix instead of 40 (the
 * synthetic prefix has few entities with 40). ColdNAS keeps 5 retrain epochs: with 1 its scores
 * were no better than chance on the demo stream. The demo's output says so; its curves show the
 * meta-learned adapters at work, not their best numbers (bench/peer-vw trains with the defaults).
 */
export const DEMO_META_TRAIN: Readonly<Record<(typeof META_KINDS)[number], Partial<EventTrainerOptions>>> = {
  emerg: { epochs: 1, metaEpochs: 1, minEvents: 20 },
  coldnas: { epochs: 5, searchEpochs: 2, minEvents: 20 },
  'fixed-adaptive': { epochs: 1, metaEpochs: 1, minEvents: 20 },
};

/** One offline-trained release of the demo. */
export interface DemoRelease {
  /** `fm` or the meta-learned kind. */
  family: DemoFamily;
  side: Side;
  /** Its id: the `release` column of its rows. */
  release: string;
  /** Hot (training) entities of the prefix. */
  hotEntities: number;
  /** Offline training time, seconds. */
  trainSec: number;
}

/** What `thaw demo --json` prints. */
export interface DemoResult {
  events: number;
  eventsPerSec: number;
  releases: DemoRelease[];
  /** Rows carry `release`: every release has its own `none`. */
  curves: ReturnType<typeof curvesJson>;
}

export const demoCommand: Command<DemoConfig> = { run: runDemo };

/** Families to run: `--quick` is the FM only. */
function familiesOf(cfg: DemoConfig): DemoFamily[] {
  return cfg.quick ? ['fm'] : [...new Set(cfg.adapters)];
}

function releaseOf(kind: StreamKind, bundle: { architecture: unknown; files: Record<string, Buffer> }): LoadedRelease {
  return { manifest: { model: `demo-${kind}`, version: 'v1', parent: null, createdAtMs: 0, architecture: bundle.architecture, metrics: {}, files: {} }, files: bundle.files };
}

async function runDemo(cfg: DemoConfig, ctx: CommandContext): Promise<number> {
  const log = ctx.logger;
  const out = resolve(cfg.out);
  const chdbDir = join(out, 'chdb');
  const families = familiesOf(cfg);
  const metaKinds = META_KINDS.filter((k) => families.includes(k));
  const namespaces = families.map(namespaceOf);
  // A fresh prediction log each run: the demo's numbers must come from this run only.
  await rm(chdbDir, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  if (metaKinds.length > 0) await initBackend('auto', log);

  const tGen = performance.now();
  const events: LabelledEvent[] = [];
  for await (const e of new SyntheticStream({ events: cfg.events, seed: cfg.seed })) events.push(e);
  const trainN = Math.floor(events.length * cfg.trainFraction);
  const prefix = events.slice(0, trainN);
  const rest = events.slice(trainN);
  log.info('synthetic stream generated', { events: events.length, trainEvents: trainN, ms: Math.round(performance.now() - tGen) });

  const sink = new ChdbSink({ dataDir: chdbDir });
  const releases: DemoRelease[] = [];
  /** `side|release|adapter` in run order: the order rows are shown in. */
  const order: string[] = [];
  let processedTotal = 0;
  let processMs = 0;
  let rows: CurveRow[];
  try {
    await sink.ensureSchema();
    const runsPerSide = (side: Side): number => (families.includes('fm') ? 2 : 0) + 2 * metaKinds.filter((k) => sideOfKind(k) === side).length;
    const progress = new Progress({ label: 'demo', total: rest.length * SIDES.reduce((s, side) => s + runsPerSide(side), 0), stream: ctx.stderr, logger: log });

    /** Predict-then-adapt over the rest of the stream; false when interrupted. */
    const replay = async (side: Side, family: DemoFamily, name: string, adapter: Adapter): Promise<boolean> => {
      order.push(`${side}|${adapter.release}|${name}`);
      const scope = { namespace: namespaceOf(family), side, adapter: name };
      const processor = new BatchProcessor({ adapter, store: new MemoryEntityStore(), sink, scope, logger: log });
      const t1 = performance.now();
      try {
        for (let i = 0; i < rest.length; i += cfg.batchSize) {
          if (ctx.signal.aborted) return false;
          const items: BatchItem[] = rest.slice(i, i + cfg.batchSize).map((event, j) => ({ offset: trainN + i + j, event }));
          const r = await processor.process(items);
          processedTotal += r.processed;
          progress.tick(items.length);
        }
      } finally {
        processMs += performance.now() - t1;
        adapter.dispose?.();
      }
      return true;
    };

    for (const side of SIDES) {
      if (ctx.signal.aborted) return EXIT.interrupted;
      if (families.includes('fm')) {
        const t0 = performance.now();
        // One shared FM per side: its per-entity vector stands for that side's entities while training.
        const release = `demo-fm-${side}`;
        const trained = await trainFm(prefix, { seed: cfg.seed, release });
        const trainSec = (performance.now() - t0) / 1000;
        releases.push({ family: 'fm', side, release, hotEntities: trained.hotEntities[side], trainSec });
        log.info('shared FM trained', { side, hotEntities: trained.hotEntities[side], trainEvents: trained.trainEvents, ms: Math.round(trainSec * 1000) });
        for (const name of ['none', 'fm-adagrad']) {
          if (!(await replay(side, 'fm', name, createAdapter(name, side, trained.model)))) return EXIT.interrupted;
        }
      }
      for (const kind of metaKinds.filter((k) => sideOfKind(k) === side)) {
        if (ctx.signal.aborted) return EXIT.interrupted;
        const res = await trainFromEvents({ kind, events: prefix, seed: cfg.seed, logger: log, ...DEMO_META_TRAIN[kind] });
        const rel = releaseOf(kind, res.bundle);
        const release = `${rel.manifest.model}/${rel.manifest.version}`;
        releases.push({ family: kind, side, release, hotEntities: res.stats.entities, trainSec: res.stats.trainSec });
        // Baseline first: the same release's initial states, never adapted.
        for (const name of ['none', kind]) {
          if (!(await replay(side, kind, name, createAdapterFromRelease(name, side, rel)))) return EXIT.interrupted;
        }
      }
    }
    progress.finish();
    await sink.flush();
    // Run order (items first, each release's none before its adapter), buckets in curve order.
    const rank = (r: CurveRow): number => order.indexOf(`${r.side}|${r.release}|${r.adapter}`);
    rows = (await queryCurves(sink, { namespace: namespaces })).sort((a, b) => rank(a) - rank(b) || CURVE_BUCKETS.indexOf(a.bucket) - CURVE_BUCKETS.indexOf(b.bucket));
  } finally {
    await sink.close();
  }

  const plotPath = join(out, 'curves.svg');
  await writePlot(plotPath, renderCurvesBySideSvg(rows, { title: `Thaw demo (${cfg.events.toLocaleString('en-US')} synthetic events)` }));
  const eventsPerSec = processMs > 0 ? Math.round(processedTotal / (processMs / 1000)) : 0;

  if (cfg.json) {
    const result: DemoResult = { events: cfg.events, eventsPerSec, releases, curves: curvesJson(rows, { scope: false, release: true }) };
    ctx.stdout.write(JSON.stringify(result) + '\n');
    return EXIT.ok;
  }
  const pct = Math.round(cfg.trainFraction * 100);
  ctx.stdout.write(
    [
      `Thaw demo: ${cfg.events.toLocaleString('en-US')} synthetic events (seed ${cfg.seed}); the releases are trained on the first ` +
        `${pct}%, the rest is replayed predict-then-adapt per side and adapter.`,
      ...releases.map(
        (r) => `  release ${r.release} (${r.side} side): ${r.hotEntities.toLocaleString('en-US')} hot ${r.side}s, trained in ${r.trainSec.toFixed(1)} s`,
      ),
      ...(metaKinds.length > 0
        ? [
            `  Meta-learned releases use short demo training to stay fast (${metaKinds.map((k) => `${k} ${JSON.stringify(DEMO_META_TRAIN[k])}`).join('; ')}); ` +
              '`thaw train <kind> --source` trains them fully.',
          ]
        : []),
      `Every release has its own none baseline (its model, never adapted). Adaptation throughput: ${eventsPerSec.toLocaleString('en-US')} events/s ` +
        '(BatchProcessor + in-memory store + chDB, all adapters).',
      '',
      formatCurveTable(rows, { release: true, order: 'input' }).trimEnd(),
      '',
      ...liftLines(rows, order),
      `Plot: ${plotPath}`,
      ...namespaces.map((ns) => `Query again: thaw curves --chdb ${chdbDir} --namespace ${ns}`),
      '',
    ].join('\n'),
  );
  return EXIT.ok;
}

/** One line per adapter: its AUC minus that of the `none` of the same release, on the early buckets. */
export function liftLines(rows: readonly CurveRow[], order: readonly string[]): string[] {
  const out: string[] = [];
  for (const key of order) {
    const [side, release, adapter] = key.split('|') as [Side, string, string];
    if (adapter === 'none') continue;
    const parts: string[] = [];
    for (const bucket of ['1-2', '3-5', '6-10'] as const) {
      const at = (name: string): CurveRow | undefined => rows.find((r) => r.side === side && r.release === release && r.bucket === bucket && r.adapter === name);
      const a = at(adapter);
      const b = at('none');
      if (a && b && Number.isFinite(a.auc) && Number.isFinite(b.auc)) parts.push(`${bucket}: ${((a.auc - b.auc) * 100).toFixed(1)}`);
    }
    if (parts.length > 0) out.push(`AUC lift of ${adapter} over none of ${release} (${side}, points): ${parts.join(', ')}`);
  }
  if (out.length > 0) out.push('');
  return out;
}
