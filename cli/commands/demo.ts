/**
 * `thaw demo`: the whole pipeline in one process with no services. A seeded synthetic stream with
 * planted structure; the shared FM is trained offline on the hot entities of the stream's first part;
 * the rest runs through the production BatchProcessor (predict, then adapt) for each side and
 * adapter, into embedded ClickHouse (chDB); the warm-up curves come from the same SQL analysts run.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createAdapter } from '../../adapters/registry.js';
import { ChdbSink } from '../../analytics/chdb-sink.js';
import { queryCurves } from '../../analytics/curves.js';
import { renderCurvesSvg, writePlot } from '../../analytics/plot.js';
import { formatCurveTable } from '../../analytics/table.js';
import { BUCKETS, type CurveRow } from '../../analytics/types.js';
import type { DemoConfig } from '../../config/commands/demo.js';
import { BatchProcessor, type BatchItem } from '../../consumers/processor.js';
import { Progress } from '../../lib/progress.js';
import { MemoryEntityStore } from '../../model-store/memory-store.js';
import type { LabelledEvent, Side } from '../../schemas/types.js';
import { SyntheticStream } from '../../sources/synthetic.js';
import { trainFm } from '../../trainers/fm-trainer.js';
import { EXIT, type Command, type CommandContext } from '../context.js';
import { curvesJson } from '../curve-json.js';

const SIDES: readonly Side[] = ['item', 'user'];
const ADAPTERS = ['none', 'fm-adagrad'] as const;
const NAMESPACE = 'demo';

/** What `thaw demo --json` prints. */
export interface DemoResult {
  events: number;
  eventsPerSec: number;
  curves: ReturnType<typeof curvesJson>;
}

export const demoCommand: Command<DemoConfig> = { run: runDemo };

async function runDemo(cfg: DemoConfig, ctx: CommandContext): Promise<number> {
  const log = ctx.logger;
  const out = resolve(cfg.out);
  const chdbDir = join(out, 'chdb');
  // A fresh prediction log each run: the demo's numbers must come from this run only.
  await rm(chdbDir, { recursive: true, force: true });
  await mkdir(out, { recursive: true });

  const tGen = performance.now();
  const events: LabelledEvent[] = [];
  for await (const e of new SyntheticStream({ events: cfg.events, seed: cfg.seed })) events.push(e);
  const trainN = Math.floor(events.length * cfg.trainFraction);
  const prefix = events.slice(0, trainN);
  const rest = events.slice(trainN);
  log.info('synthetic stream generated', { events: events.length, trainEvents: trainN, ms: Math.round(performance.now() - tGen) });

  const sink = new ChdbSink({ dataDir: chdbDir });
  let processedTotal = 0;
  let processMs = 0;
  let rows: CurveRow[];
  try {
    await sink.ensureSchema();
    const progress = new Progress({ label: 'demo', total: rest.length * SIDES.length * ADAPTERS.length, stream: ctx.stderr, logger: log });
    for (const side of SIDES) {
      if (ctx.signal.aborted) return EXIT.interrupted;
      const t0 = performance.now();
      // One shared FM per side: its per-entity vector stands for that side's entities while training.
      const trained = await trainFm(prefix, { side, seed: cfg.seed, release: `demo-fm-${side}` });
      log.info('shared FM trained', { side, hotEntities: trained.hotEntities, trainEvents: trained.trainEvents, ms: Math.round(performance.now() - t0) });
      for (const name of ADAPTERS) {
        const adapter = createAdapter(name, side, trained.model);
        const processor = new BatchProcessor({ adapter, store: new MemoryEntityStore(), sink, scope: { namespace: NAMESPACE, side, adapter: name }, logger: log });
        const t1 = performance.now();
        for (let i = 0; i < rest.length; i += cfg.batchSize) {
          if (ctx.signal.aborted) return EXIT.interrupted;
          const items: BatchItem[] = rest.slice(i, i + cfg.batchSize).map((event, j) => ({ offset: trainN + i + j, event }));
          const r = await processor.process(items);
          processedTotal += r.processed;
          progress.tick(items.length);
        }
        processMs += performance.now() - t1;
      }
    }
    progress.finish();
    await sink.flush();
    // Baseline first, items first, buckets in curve order: the order a reader compares them in.
    rows = (await queryCurves(sink, { namespace: NAMESPACE })).sort(
      (a, b) =>
        ADAPTERS.indexOf(a.adapter as (typeof ADAPTERS)[number]) - ADAPTERS.indexOf(b.adapter as (typeof ADAPTERS)[number]) ||
        SIDES.indexOf(a.side) - SIDES.indexOf(b.side) ||
        BUCKETS.indexOf(a.bucket) - BUCKETS.indexOf(b.bucket),
    );
  } finally {
    await sink.close();
  }

  const plotPath = join(out, 'curves.svg');
  await writePlot(plotPath, renderCurvesSvg(rows, { title: `Thaw demo: warm-up curves (${cfg.events.toLocaleString('en-US')} synthetic events)` }));
  const eventsPerSec = processMs > 0 ? Math.round(processedTotal / (processMs / 1000)) : 0;

  if (cfg.json) {
    const result: DemoResult = { events: cfg.events, eventsPerSec, curves: curvesJson(rows, { scope: false }) };
    ctx.stdout.write(JSON.stringify(result) + '\n');
    return EXIT.ok;
  }
  ctx.stdout.write(
    [
      `Thaw demo: ${cfg.events.toLocaleString('en-US')} synthetic events (seed ${cfg.seed}); shared FM trained on the first ` +
        `${Math.round(cfg.trainFraction * 100)}%, the rest replayed predict-then-adapt per side and adapter.`,
      `Adaptation throughput: ${eventsPerSec.toLocaleString('en-US')} events/s (BatchProcessor + in-memory store + chDB).`,
      '',
      formatCurveTable(rows).trimEnd(),
      '',
      ...liftLines(rows),
      `Plot: ${plotPath}`,
      `Query again: thaw curves --chdb ${chdbDir} --namespace ${NAMESPACE}`,
      '',
    ].join('\n'),
  );
  return EXIT.ok;
}

/** One line per side: AUC of fm-adagrad minus none on the early buckets. */
function liftLines(rows: readonly CurveRow[]): string[] {
  const out: string[] = [];
  for (const side of SIDES) {
    const parts: string[] = [];
    for (const bucket of ['1-2', '3-5', '6-10'] as const) {
      const a = rows.find((r) => r.side === side && r.bucket === bucket && r.adapter === 'fm-adagrad');
      const b = rows.find((r) => r.side === side && r.bucket === bucket && r.adapter === 'none');
      if (a && b && Number.isFinite(a.auc) && Number.isFinite(b.auc)) parts.push(`${bucket}: ${((a.auc - b.auc) * 100).toFixed(1)}`);
    }
    if (parts.length > 0) out.push(`AUC lift of fm-adagrad over none (${side}, points): ${parts.join(', ')}`);
  }
  if (out.length > 0) out.push('');
  return out;
}
