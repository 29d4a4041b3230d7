/** Development runner: `node --import tsx cli/dev.ts <command> [options]` runs the CLI from source. */
import { runCli } from './main.js';

runCli(process.argv.slice(2));
