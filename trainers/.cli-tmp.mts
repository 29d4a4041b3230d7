import { run } from '../cli/commands/train-meta.ts';
process.exitCode = await run(process.argv.slice(2));
