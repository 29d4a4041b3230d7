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
import {
  DEFAULT_GRID,
  DEFAULT_SELECTION_EPOCHS,
  DEFAULT_VALIDATION_FRACTION,
  RETRIEVAL_MODELS,
  runRetrievalProtocol,
  type RetrievalModel,
  type SelectionGrid,
} from '../../evaluation/retrieval/protocol.js';
import { PSEUDO_NEGATIVE, PSEUDO_POSITIVE } from '../../retrieval/hard-negatives.js';
import { intArg } from '../raw-args.js';

export const usage = `thaw eval --protocol retrieval --source SRC [options]

  --protocol retrieval  retrieval of each test user's positives over the whole catalogue, cold items included
  --source SRC          synthetic[:k=v,...] | ml100k:DIR | ml1m:DIR | csv:FILE | jsonl:FILE
                        (MovieLens: item title words are features)
  --models LIST         comma list of ${RETRIEVAL_MODELS.join(',')} (default all)
  --train-fraction X    fraction of events, by time, in the training window (default 0.8)
  --epochs N            dual encoders: passes over the training positives (default 8)
  --validation-fraction X  share of the training window's events (the last, by time) that choose the
                        hyper-parameters below by validation recall@50 (default ${DEFAULT_VALIDATION_FRACTION});
                        0: no validation, each list's first value is used
  --selection-epochs N  epochs of each validation run (default ${DEFAULT_SELECTION_EPOCHS}; the final rows train --epochs)
  --temperature LIST    dual encoders: softmax temperatures tried (default ${DEFAULT_GRID.temperature.join(',')})
  --cross-batches LIST  +cross-batch on: past micro-batches of item vectors used as negatives, tried
                        (default ${DEFAULT_GRID.crossBatches.join(',')}; 0, no queue, lets validation turn them off)
  --threshold LIST      +denoised on: ranker score (0..1) at or above which a mined hard negative is
                        dropped, tried (default ${DEFAULT_GRID.threshold.join(',')}; RocketQA's is 0.1)
  --pseudo-top-k LIST   +augmented: unlabelled retrieved items per user given ranker pseudo-labels
                        (> ${PSEUDO_POSITIVE} positive, < ${PSEUDO_NEGATIVE} negative), tried (default ${DEFAULT_GRID.pseudoTopK.join(',')})
  --seed N              dual encoders: initialisation, shuffles and id dropout; the FM ranker's seed (default 1)
  --json                print { "rows": [...] } instead of a table`;

/** A comma list of numbers, each checked by `ok`. */
function list(key: string, v: string | undefined, dflt: readonly number[], ok: (x: number) => boolean, rule: string): readonly number[] {
  if (v === undefined) return dflt;
  const xs = v.split(',').map((t) => Number(t.trim()));
  for (const x of xs) if (!ok(x)) throw new ConfigError(key, `must be a comma list of ${rule}, got "${v}"`);
  return xs;
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
      'validation-fraction': { type: 'string' },
      'selection-epochs': { type: 'string' },
      temperature: { type: 'string' },
      'cross-batches': { type: 'string' },
      threshold: { type: 'string' },
      'pseudo-top-k': { type: 'string' },
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
  const epochs = intArg('epochs', values.epochs, 8, 1);
  const validationFraction = values['validation-fraction'] === undefined ? DEFAULT_VALIDATION_FRACTION : Number(values['validation-fraction']);
  if (!(validationFraction >= 0 && validationFraction < 1)) throw new ConfigError('validation-fraction', `must be a number in [0, 1), got "${values['validation-fraction']}"`);
  const grid: SelectionGrid = {
    temperature: list('temperature', values.temperature, DEFAULT_GRID.temperature, (x) => x > 0 && Number.isFinite(x), 'numbers > 0'),
    crossBatches: list('cross-batches', values['cross-batches'], DEFAULT_GRID.crossBatches, (x) => Number.isInteger(x) && x >= 0, 'integers >= 0'),
    threshold: list('threshold', values.threshold, DEFAULT_GRID.threshold, (x) => x > 0 && x <= 1, 'numbers in (0, 1]'),
    pseudoTopK: list('pseudo-top-k', values['pseudo-top-k'], DEFAULT_GRID.pseudoTopK, (x) => Number.isInteger(x) && x >= 1, 'integers >= 1'),
  };
  const seed = intArg('seed', values.seed, 1, 0);
  const spec = parseSourceSpec(values.source);
  const source = spec.kind === 'ml100k' || spec.kind === 'ml1m' ? { ...spec, titleTokens: true } : spec;
  const logger = createLogger();
  const events: LabelledEvent[] = [];
  for await (const e of openSource(source)) events.push(e);
  logger.info('retrieval: events loaded', { events: events.length });
  const res = await runRetrievalProtocol(events, {
    models: models as RetrievalModel[],
    trainFraction,
    validationFraction,
    selectionEpochs: intArg('selection-epochs', values['selection-epochs'], DEFAULT_SELECTION_EPOCHS, 1),
    grid,
    seed,
    encoder: { epochs, seed },
    onEpoch: (model, epoch, loss, mining) => logger.info('retrieval: epoch', { model, epoch, loss: Math.round(loss * 1e4) / 1e4, ...(mining ? { mining } : {}) }),
    onValidation: (t) => logger.info('retrieval: validation', { ...t, recall50: Math.round(t.recall50 * 1e4) / 1e4 }),
    onModel: (model, seconds) => logger.info('retrieval: model evaluated', { model, seconds: Math.round(seconds * 10) / 10 }),
  });
  if (values.json) {
    process.stdout.write(JSON.stringify({ rows: res.rows, chosen: res.chosen, validation: res.trials }) + '\n');
  } else {
    process.stdout.write(formatRetrievalTable(res.rows) + '\n');
    process.stdout.write(
      `${res.trainEvents} training events; ${res.items} items, ${res.coldItems} cold; ${res.counts.users} test users (${res.counts.usersWithCold} with cold positives, ${res.counts.usersWithWarm} with warm)\n`,
    );
    if (res.trials.length > 0) {
      process.stdout.write(`chosen on validation recall@50 (the training window's last ${res.validationEvents} events):\n`);
      for (const t of res.trials) process.stdout.write(`  ${t.stage} ${t.param}=${t.value}: ${t.recall50.toFixed(4)}${res.chosen[t.param] === t.value ? ' <- chosen' : ''}\n`);
    }
  }
  return 0;
}
