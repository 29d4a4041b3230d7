/**
 * The product peers of `thaw eval --protocol stream` (evaluation/peers: `vw`, `counts`) on MovieLens-100K
 * in time order: settings chosen on the first `--history-fraction` of the stream only, then one
 * prequential pass; AUC and log loss by warm-up bucket over the rest, per side (the bucket of a row is
 * its user's, resp. item's, prior interaction count from the stream start).
 *
 *   node --import tsx bench/peer-vw/stream-peers.ts [--data DIR] [--history-fraction 0.2] [--peers vw,counts]
 *        [--out .thaw/bench/stream-peers.json]
 *
 * Markdown on stdout, progress on stderr, JSON result file. Measures; never asserts.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runCountsPeer } from '../../evaluation/peers/counts-peer.js';
import { PEER_NAMES, type PeerName, type PeerRun } from '../../evaluation/peers/types.js';
import { runVwPeer } from '../../evaluation/peers/vw-peer.js';
import { ConfigError } from '../../lib/errors.js';
import { createLogger } from '../../lib/log.js';
import { SIDES, type LabelledEvent } from '../../schemas/types.js';
import { readMl100k } from '../../sources/movielens.js';
import { markdownTable } from '../stats.js';
import { BUCKET_KEYS, bucketMetrics, EARLY, priorCounts } from './evaluate.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string', default: process.env.THAW_ML100K_DIR ?? fileURLToPath(new URL('../../../shared/data/ml-100k', import.meta.url)) },
      'history-fraction': { type: 'string', default: '0.2' },
      peers: { type: 'string', default: PEER_NAMES.join(',') },
      out: { type: 'string', default: join(ROOT, '.thaw', 'bench', 'stream-peers.json') },
    },
  });
  const log = createLogger(undefined, { bench: 'stream-peers' });
  const fraction = Number(values['history-fraction']);
  if (!(fraction > 0 && fraction < 1)) throw new ConfigError('history-fraction', `must be in (0, 1), got ${values['history-fraction']}`);
  const peers = values.peers.split(',');
  if (peers.some((p) => !(PEER_NAMES as readonly string[]).includes(p))) throw new ConfigError('peers', `must be a comma list of ${PEER_NAMES.join(', ')}, got "${values.peers}"`);

  const events: LabelledEvent[] = [];
  for await (const ev of readMl100k(resolve(values.data))) events.push(ev);
  const historyN = Math.floor(events.length * fraction);
  const labels = Uint8Array.from(events, (e) => e.label);
  log.info('stream loaded', { events: events.length, historyN });

  const runs: PeerRun[] = [];
  for (const name of peers as PeerName[]) {
    const run = name === 'counts' ? runCountsPeer(events, historyN) : await runVwPeer(events, historyN, { cacheDir: join(ROOT, '.thaw'), workDir: join(ROOT, '.thaw', 'bench'), logger: log });
    log.info('peer done', { peer: name, chosen: run.chosen, ms: Math.round(run.ms) });
    runs.push(run);
  }

  const sides = SIDES.map((side) => {
    const prior = priorCounts(events, side);
    return { side, metrics: runs.map((r) => ({ peer: r.name, buckets: bucketMetrics(r.scores, labels, prior, historyN) })) };
  });
  const label = (b: string): string => (b === EARLY ? `**${EARLY} (early)**` : b);
  const tables = sides.map(({ side, metrics }) =>
    markdownTable(
      ['side', 'bucket', 'n', ...metrics.flatMap((m) => [`AUC ${m.peer}`, `log loss ${m.peer}`])],
      BUCKET_KEYS.map((b) => [side, label(b), (metrics[0]?.buckets[b].n ?? 0).toLocaleString('en-US'), ...metrics.flatMap((m) => [m.buckets[b].auc, m.buckets[b].logLoss])]),
    ),
  );
  const best = (r: PeerRun): string =>
    [...r.trials]
      .sort((a, b) => b.auc - a.auc)
      .slice(0, 5)
      .map((t) => `${JSON.stringify(t.settings)} ${t.auc.toFixed(4)}`)
      .join('; ');
  const result = {
    benchmark: 'stream-peers',
    events: events.length,
    historyN,
    peers: runs.map((r) => ({ name: r.name, chosen: r.chosen, trials: r.trials, ms: Math.round(r.ms) })),
    sides: sides.map(({ side, metrics }) => ({ side, peers: metrics.map((m) => ({ peer: m.peer, buckets: m.buckets })) })),
  };
  await mkdir(dirname(values.out), { recursive: true });
  await writeFile(values.out, JSON.stringify(result, (_, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
  process.stdout.write(
    [
      `Peers on MovieLens-100K (${events.length.toLocaleString('en-US')} events, label rating >= 4); settings chosen on events 0-${historyN.toLocaleString('en-US')} (progressive AUC), scored on ${historyN.toLocaleString('en-US')}-${events.length.toLocaleString('en-US')}.`,
      ...runs.map((r) => `  ${r.name}: chose ${JSON.stringify(r.chosen)} among ${r.trials.length} settings in ${(r.ms / 1000).toFixed(1)} s (best on the history: ${best(r)})`),
      '',
      ...tables.flatMap((t) => [t, '']),
      `JSON: ${values.out}`,
      '',
    ].join('\n'),
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`stream-peers failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
