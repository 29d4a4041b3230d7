/**
 * `thaw train emerg|deepfm|metaemb`: offline training on the hot items of MovieLens-100K's warm-up
 * split, with a checkpoint after every epoch in --out and --resume to continue after a kill.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../../lib/errors.js';
import { createLogger } from '../../lib/log.js';
import { initBackend, type BackendPreference } from '../../models/backend.js';
import { buildWarmupSplit } from '../../evaluation/warmup-split.js';
import { trainMeta, type TrainKind } from '../../trainers/meta-trainer.js';

export const usage = `thaw train emerg|deepfm|metaemb --data DIR --out CKPT_DIR [options]

  --data DIR          MovieLens-100K directory (hot items of the warm-up split are the training set)
  --out DIR           checkpoint directory (checkpoint.bin, replaced atomically after every epoch)
  --epochs N          supervised epochs (default 3)
  --meta-epochs N     episodic epochs, metaemb and emerg (default 10)
  --seed N            seed (default 7788)
  --inner-lr X        inner SGD rate on item params (default 0.3)
  --inner-steps N     inner SGD steps per task (default 5)
  --graph-lr-scale X  EmerG graph inner rate as a multiple of --inner-lr (default 1)
  --resume            continue from the checkpoint in --out
  --backend B         auto|native|wasm|cpu (default auto)`;

const KINDS: readonly TrainKind[] = ['emerg', 'deepfm', 'metaemb'];

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      data: { type: 'string' },
      out: { type: 'string' },
      epochs: { type: 'string' },
      'meta-epochs': { type: 'string' },
      seed: { type: 'string' },
      'inner-lr': { type: 'string' },
      'inner-steps': { type: 'string' },
      'graph-lr-scale': { type: 'string' },
      resume: { type: 'boolean', default: false },
      backend: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(usage + '\n');
    return 0;
  }
  const kind = positionals[0] as TrainKind | undefined;
  if (kind === undefined || !KINDS.includes(kind)) throw new ConfigError('model', `expected one of ${KINDS.join('|')}, got "${kind ?? ''}"`);
  if (values.data === undefined) throw new ConfigError('data', 'a MovieLens-100K directory is required');
  if (values.out === undefined) throw new ConfigError('out', 'a checkpoint directory is required');
  const int = (key: string, v: string | undefined, d: number): number => {
    const n = v === undefined ? d : Number(v);
    if (!Number.isInteger(n) || n < 0) throw new ConfigError(key, `must be a non-negative integer, got "${v}"`);
    return n;
  };
  const innerLr = values['inner-lr'] === undefined ? 0.3 : Number(values['inner-lr']);
  if (!Number.isFinite(innerLr) || innerLr <= 0) throw new ConfigError('inner-lr', `must be a positive number, got "${values['inner-lr']}"`);
  const graphLrScale = values['graph-lr-scale'] === undefined ? 1 : Number(values['graph-lr-scale']);
  if (!Number.isFinite(graphLrScale) || graphLrScale < 0) throw new ConfigError('graph-lr-scale', `must be a non-negative number, got "${values['graph-lr-scale']}"`);
  const logger = createLogger();
  const backend = await initBackend((values.backend ?? 'auto') as BackendPreference, logger);
  const split = buildWarmupSplit(values.data);
  const res = await trainMeta(
    { layout: split.layout, vocabSize: split.vocabSize, hot: split.hot, hotItemCount: split.hotItems.length },
    {
      kind,
      seed: int('seed', values.seed, 7788),
      baseEpochs: int('epochs', values.epochs, 3),
      metaEpochs: int('meta-epochs', values['meta-epochs'], 10),
      innerLr,
      innerSteps: Math.max(1, int('inner-steps', values['inner-steps'], 5)),
      graphLrScale,
      checkpointDir: values.out,
      resume: values.resume,
      logger,
    },
  );
  process.stdout.write(`${kind}: ${res.epochsDone} epochs, ${Math.round(res.examplesPerSec)} examples/s on ${backend}, checkpoint in ${values.out}\n`);
  return 0;
}
