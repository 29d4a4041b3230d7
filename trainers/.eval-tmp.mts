import { run } from '../cli/commands/eval.ts';
process.exitCode = await run(process.argv.slice(2));
