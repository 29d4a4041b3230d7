#!/usr/bin/env node
// Entry point of the `thaw` command: runs the compiled CLI (built by `npm run build`, which `npm ci` runs via `prepare`).
// runCli sets the exit code and makes sure the process exits once the command returned (cli/main.ts).
import { runCli } from '../dist/cli/main.js';

runCli(process.argv.slice(2));
