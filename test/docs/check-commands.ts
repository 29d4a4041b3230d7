/** Every `thaw` command of a Markdown document's shell blocks parsed by the CLI's own parser (README tests). */
import { COMMANDS, findCommand } from '../../cli/commands/index.js';
import { findRawCommand } from '../../cli/commands/raw.js';
import { topLevelKeys } from '../../config/describe.js';
import { loadConfig } from '../../config/load.js';
import { errorMessage } from '../../lib/errors.js';
import { shellBlocks, thawCommands } from './shell-blocks.js';

/**
 * What keeps the commands of `markdown` from running as written: placeholders, unknown commands or
 * options, missing or bad values. Commands that parse their own argv are checked against their usage.
 */
export async function commandProblems(file: string, markdown: string): Promise<string[]> {
  const shared = COMMANDS.flatMap((c) => topLevelKeys(c.spec.schema));
  const problems: string[] = [];
  for (const block of shellBlocks(markdown)) {
    for (const argv of thawCommands(block.text)) {
      const where = `${file}:${block.line} thaw ${argv.join(' ')}`;
      if (argv.some((a) => /^\[.*\]?$|^\.\.\.$|\|/.test(a))) {
        problems.push(`${where}: a placeholder ([...], ..., a|b) cannot be run as written; put hints in a comment`);
        continue;
      }
      if (argv.includes('--help') || argv[0] === 'help' || argv[0] === '--version') continue;
      const found = findCommand(argv);
      if (found !== undefined) {
        try {
          loadConfig(found.entry.spec, found.rest, { env: {}, sharedFileKeys: shared });
        } catch (err) {
          problems.push(`${where}: ${errorMessage(err)}`);
        }
        continue;
      }
      const raw = findRawCommand(argv);
      if (raw === undefined) {
        problems.push(`${where}: no such command`);
        continue;
      }
      const usage = (await raw.entry.load()).usage;
      for (const flag of raw.argv.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0] ?? a)) {
        if (!new RegExp(`${flag}(?![\\w-])`).test(usage)) problems.push(`${where}: ${flag} is not in the usage of thaw ${raw.entry.name}`);
      }
    }
  }
  return problems;
}
