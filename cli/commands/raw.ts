/**
 * Commands that parse their own argv (`{ usage, run(argv) }` modules, e.g. the meta-learning
 * trainers, the paper-protocol evaluation and release management). They are listed in `thaw help`
 * and dispatched by main; their options are documented in their own usage text. ConfigErrors they
 * throw still exit with code 2.
 */
export interface RawModule {
  usage: string;
  run(argv: string[]): Promise<number>;
}

export interface RawCommandEntry {
  /** Command words, e.g. `train emerg`. */
  name: string;
  summary: string;
  /** How many trailing words of `name` are passed on to `run` (e.g. 1: `emerg` for train-meta). @default 0 */
  passWords?: number;
  load: () => Promise<RawModule>;
}

/** `--side user` / `--side=user` in argv. */
function userSide(argv: readonly string[]): boolean {
  return argv.some((a, i) => a === '--side=user' || (a === '--side' && argv[i + 1] === 'user'));
}

/** `--protocol NAME` / `--protocol=NAME` in argv. */
function hasProtocol(argv: readonly string[], name: string): boolean {
  return argv.some((a, i) => a === `--protocol=${name}` || (a === '--protocol' && argv[i + 1] === name));
}

const trainMeta = async (): Promise<RawModule> => import('./train-meta.js');

export const RAW_COMMANDS: readonly RawCommandEntry[] = [
  { name: 'train emerg', summary: "meta-train EmerG (item-specific feature graphs) on MovieLens-100K or Meta-Embedding's ML-1M splits, with checkpoints", passWords: 1, load: trainMeta },
  { name: 'train metaemb', summary: "meta-train Meta-Embedding on MovieLens-100K or Meta-Embedding's ML-1M splits, with checkpoints", passWords: 1, load: trainMeta },
  { name: 'train deepfm', summary: "train the DeepFM backbone on MovieLens-100K or Meta-Embedding's ML-1M splits, with checkpoints", passWords: 1, load: trainMeta },
  { name: 'train coldnas', summary: 'search and train ColdNAS (new users) on MovieLens-100K hot users, with checkpoints', passWords: 1, load: trainMeta },
  { name: 'train fixed-adaptive', summary: 'meta-train the fixed/adaptive split (new users) on MovieLens-100K hot users, with checkpoints', passWords: 1, load: trainMeta },
  {
    name: 'train --online',
    summary: 'online trainer: fresh shared parameters and the online meta stage from the labelled stream, a release every sync interval',
    load: async () => import('./train-online.js'),
  },
  {
    name: 'eval',
    summary:
      "stream evaluation against peers on any source (--protocol stream); the papers' warm-up protocol on MovieLens-100K (--protocol warmup); retrieval with brand-new items (--protocol retrieval)",
    load: async () => {
      const [stream, items, users, retrieval] = await Promise.all([import('./eval-stream.js'), import('./eval.js'), import('./eval-user.js'), import('./eval-retrieval.js')]);
      return {
        usage: `${stream.usage}\n\n${items.usage}\n${users.usage}\n\n${retrieval.usage}`,
        run: (argv) => (hasProtocol(argv, 'stream') ? stream.run(argv) : hasProtocol(argv, 'retrieval') ? retrieval.run(argv) : userSide(argv) ? users.run(argv) : items.run(argv)),
      };
    },
  },
  {
    name: 'retrieval build',
    summary: 'train the dual encoder on a source and write a retrieval snapshot (towers + ANN index of every item) for thaw serve --retrieval',
    load: async () => import('./retrieval-build.js'),
  },
  { name: 'release', summary: 'publish, list, promote or roll back releases of shared parameters', load: async () => import('./release.js') },
];

/** The raw command whose words start argv, and the argv to pass to its `run`. */
export function findRawCommand(argv: readonly string[]): { entry: RawCommandEntry; argv: string[] } | undefined {
  for (const entry of RAW_COMMANDS) {
    const words = entry.name.split(' ');
    if (words.every((w, i) => argv[i] === w)) {
      const keep = entry.passWords ?? 0;
      return { entry, argv: argv.slice(words.length - keep) };
    }
  }
  return undefined;
}
