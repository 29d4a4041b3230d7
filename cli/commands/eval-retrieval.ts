/**
 * `thaw eval --protocol retrieval`: candidate retrieval over the whole catalogue, brand-new items
 * included, on a temporal split (evaluation/retrieval/protocol.ts). A table (or JSON with --json) on
 * stdout; progress on the stderr log.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../../lib/errors.js';
import { createLogger } from '../../lib/log.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { openSource, parseSourceSpec } from '../../sources/index.js';
import { formatRetrievalTable } from '../../evaluation/retrieval/evaluate.js';
import { DEFAULT_CROSS_BATCHES, RETRIEVAL_MODELS, runRetrievalProtocol, type RetrievalModel } from '../../evaluation/retrieval/protocol.js';

export const usage = `thaw eval --protocol retrieval --source SRC [options]

  --protocol retrieval  retrieval of each test user's positives over the whole catalogue, cold items included
  --source SRC          synthetic[:k=v,...] | ml100k:DIR | ml1m:DIR | csv:FILE | jsonl:FILE
                        (MovieLens: item title words are features)
  --models LIST         comma list of ${RETRIEVAL_MODELS.join(',')} (default all)
  --train-fraction X    fraction of events, by time, in the training window (default 0.8)
  --epochs N            dual encoder: passes over the training positives (default 8)
  --cross-batches N     +cross-batch: past micro-batches of item vectors used as negatives (default 8)
  --seed N              dual encoder: initialisation, shuffles and id dropout (default 1)
  --json                print { "rows": [...] } instead of a table`;

function int(key: string, v: string | undefined, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(key, `must be an integer >= ${min}, got "${v}"`);
  return n;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      protocol: { type: 'string' },
      source: { type: 'string' },
      models: { type: 'string' },
      'train-fraction': { type: 'string' },
      epochs: { type: 'string' },
      'cross-batches': { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(usage + '\n');
    return 0;
  }
  if (values.protocol !== 'retrieval') throw new ConfigError('protocol', `this command runs --protocol retrieval, got "${values.protocol ?? ''}"`);
  if (values.source === undefined) throw new ConfigError('source', 'is required: synthetic[:k=v,...] | ml100k:DIR | ml1m:DIR | csv:FILE | jsonl:FILE');
  const models = (values.models ?? RETRIEVAL_MODELS.join(',')).split(',').map((m) => m.trim());
  for (const m of models) if (!(RETRIEVAL_MODELS as readonly string[]).includes(m)) throw new ConfigError('models', `unknown model "${m}" (known: ${RETRIEVAL_MODELS.join(', ')})`);
  const trainFraction = values['train-fraction'] === undefined ? 0.8 : Number(values['train-fraction']);
  if (!(trainFraction > 0 && trainFraction < 1)) throw new ConfigError('train-fraction', `must be a number in (0, 1), got "${values['train-fraction']}"`);
  const epochs = int('epochs', values.epochs, 8, 1);
  const crossBatches = int('cross-batches', values['cross-batches'], DEFAULT_CROSS_BATCHES, 1);
  const seed = int('seed', values.seed, 1, 0);
  const spec = parseSourceSpec(values.source);
  const source = spec.kind === 'ml100k' || spec.kind === 'ml1m' ? { ...spec, titleTokens: true } : spec;
  const logger = createLogger();
  const events: LabelledEvent[] = [];
  for await (const e of openSource(source)) events.push(e);
  logger.info('retrieval: events loaded', { events: events.length });
  const res = runRetrievalProtocol(events, {
    models: models as RetrievalModel[],
    trainFraction,
    encoder: { epochs, seed },
    crossBatches,
    onEpoch: (model, epoch, loss) => logger.info('retrieval: epoch', { model, epoch, loss: Math.round(loss * 1e4) / 1e4 }),
    onModel: (model, seconds) => logger.info('retrieval: model evaluated', { model, seconds: Math.round(seconds * 10) / 10 }),
  });
  if (values.json) {
    process.stdout.write(JSON.stringify({ rows: res.rows }) + '\n');
  } else {
    process.stdout.write(formatRetrievalTable(res.rows) + '\n');
    process.stdout.write(
      `${res.trainEvents} training events; ${res.items} items, ${res.coldItems} cold; ${res.counts.users} test users (${res.counts.usersWithCold} with cold positives, ${res.counts.usersWithWarm} with warm)\n`,
    );
  }
  return 0;
}
