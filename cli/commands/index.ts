/**
 * The command table: spec (options, help) plus a lazy loader of the implementation, so `thaw curves`
 * does not load kafkajs and `thaw --help` loads nothing heavy. To add a command (e.g. `train emerg`),
 * add its spec under config/commands/ and one entry here.
 */
import type { CommandSpec } from '../../config/types.js';
import { curvesSpec } from '../../config/commands/curves.js';
import { dashboardSpec } from '../../config/commands/dashboard.js';
import { demoSpec } from '../../config/commands/demo.js';
import { distillLearnSpec } from '../../config/commands/distill-learn.js';
import { distillTeachSpec } from '../../config/commands/distill-teach.js';
import { joinSpec } from '../../config/commands/join.js';
import { produceSpec } from '../../config/commands/produce.js';
import { rekeySpec } from '../../config/commands/rekey.js';
import { replaySpec } from '../../config/commands/replay.js';
import { runSpec } from '../../config/commands/run.js';
import { serveSpec } from '../../config/commands/serve.js';
import { serveTuneSpec } from '../../config/commands/serve-tune.js';
import { trainFmSpec } from '../../config/commands/train-fm.js';
import type { Command } from '../context.js';

export interface CommandEntry {
  spec: CommandSpec;
  // The config type is checked where each command pairs its spec with its run function.
  load: () => Promise<Command<never>>;
}

export const COMMANDS: readonly CommandEntry[] = [
  { spec: demoSpec, load: async () => (await import('./demo.js')).demoCommand },
  { spec: runSpec, load: async () => (await import('./run.js')).runCommand },
  { spec: serveSpec, load: async () => (await import('./serve.js')).serveCommand },
  { spec: serveTuneSpec, load: async () => (await import('./serve-tune.js')).serveTuneCommand },
  { spec: trainFmSpec, load: async () => (await import('./train-fm.js')).trainFmCommand },
  { spec: produceSpec, load: async () => (await import('./produce.js')).produceCommand },
  { spec: rekeySpec, load: async () => (await import('./rekey.js')).rekeyCommand },
  { spec: joinSpec, load: async () => (await import('./join.js')).joinCommand },
  { spec: curvesSpec, load: async () => (await import('./curves.js')).curvesCommand },
  { spec: replaySpec, load: async () => (await import('./replay.js')).replayCommand },
  { spec: distillTeachSpec, load: async () => (await import('./distill-teach.js')).distillTeachCommand },
  { spec: distillLearnSpec, load: async () => (await import('./distill-learn.js')).distillLearnCommand },
  { spec: dashboardSpec, load: async () => (await import('./dashboard.js')).dashboardCommand },
];

/** The entry whose words start argv (longest match: `train fm` before `train`), and the rest of argv. */
export function findCommand(argv: readonly string[]): { entry: CommandEntry; rest: string[] } | undefined {
  let best: { entry: CommandEntry; rest: string[] } | undefined;
  let bestLen = 0;
  for (const entry of COMMANDS) {
    const words = entry.spec.name.split(' ');
    if (words.length > bestLen && words.every((w, i) => argv[i] === w)) {
      best = { entry, rest: argv.slice(words.length) };
      bestLen = words.length;
    }
  }
  return best;
}
