/**
 * `thaw retrieval build`: trains the dual encoder on a source's labelled events and writes a
 * retrieval snapshot (the towers and the ANN index of every item) for `thaw serve --retrieval DIR`.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '../../lib/errors.js';
import { createLogger } from '../../lib/log.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { openSource, parseSourceSpec } from '../../sources/index.js';
import { buildRetrievalSnapshot } from '../../retrieval/index/build.js';
import { intArg } from '../raw-args.js';

export const usage = `thaw retrieval build --source SRC --out DIR [options]

  Trains the dual encoder on every event of SRC (time order) and writes a retrieval snapshot to DIR:
  DIR/encoder (the towers, the trained item ids) and DIR/index (the HNSW graph of every item's vector).
  Serve it with \`thaw serve --retrieval DIR\`.

  --source SRC          synthetic[:k=v,...] | ml100k:DIR | ml1m:DIR | csv:FILE | jsonl:FILE
                        (MovieLens: item title words are features)
  --out DIR             the snapshot directory (required; replaced)
  --epochs N            passes over the positives (default 8)
  --dim N               vector width (default 32)
  --cross-batches N     past micro-batches of item vectors used as extra negatives (default 0: in-batch only)
  --seed N              initialisation, shuffles and id dropout (default 1)
  --m N                 HNSW graph degree (default 16)
  --ef-construction N   HNSW candidate list while inserting (default 100)`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      source: { type: 'string' },
      out: { type: 'string' },
      epochs: { type: 'string' },
      dim: { type: 'string' },
      'cross-batches': { type: 'string' },
      seed: { type: 'string' },
      m: { type: 'string' },
      'ef-construction': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(usage + '\n');
    return 0;
  }
  if (values.source === undefined) throw new ConfigError('source', 'is required: synthetic[:k=v,...] | ml100k:DIR | ml1m:DIR | csv:FILE | jsonl:FILE');
  if (values.out === undefined) throw new ConfigError('out', 'is required: the snapshot directory');
  const encoder = {
    epochs: intArg('epochs', values.epochs, 8, 1),
    dim: intArg('dim', values.dim, 32, 1),
    crossBatches: intArg('cross-batches', values['cross-batches'], 0, 0),
    seed: intArg('seed', values.seed, 1, 0),
  };
  const index = { m: intArg('m', values.m, 16, 2), efConstruction: intArg('ef-construction', values['ef-construction'], 100, 1) };
  const spec = parseSourceSpec(values.source);
  const source = spec.kind === 'ml100k' || spec.kind === 'ml1m' ? { ...spec, titleTokens: true } : spec;
  const logger = createLogger();
  const events: LabelledEvent[] = [];
  for await (const e of openSource(source)) events.push(e);
  logger.info('retrieval build: events loaded', { events: events.length });
  const out = resolve(values.out);
  const res = await buildRetrievalSnapshot(events, out, { encoder, index, onEpoch: (epoch, loss) => logger.info('retrieval build: epoch', { epoch, loss: Math.round(loss * 1e4) / 1e4 }) });
  process.stdout.write(
    `thaw retrieval build: ${res.items} items indexed from ${res.events} events (${res.positives} positives); trained in ${res.trainSeconds.toFixed(1)} s, indexed in ${res.indexSeconds.toFixed(1)} s; snapshot in ${out}\n`,
  );
  return 0;
}
