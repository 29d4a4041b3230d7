#!/usr/bin/env node
// Entry point of the `thaw` command: runs the compiled CLI (built by `npm run build`, which `npm ci` runs via `prepare`).
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(err instanceof Error ? `${err.name}: ${err.message}` : String(err)); process.exitCode = 1; },
);
