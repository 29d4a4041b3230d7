/**
 * `thaw`: finds the command, loads its typed config (defaults < file < env < flags), runs it.
 * Exit codes: 0 ok, 1 failure, 2 invalid configuration or usage, 130 interrupted.
 * stdout carries command output only; logs and progress go to stderr.
 */
import { readFileSync } from 'node:fs';
import { loadConfig } from '../config/load.js';
import { topLevelKeys } from '../config/describe.js';
import { errorMessage } from '../lib/errors.js';
import { createLogger, redactUrl, type LogLevel } from '../lib/log.js';
import { COMMANDS, findCommand } from './commands/index.js';
import { findRawCommand, RAW_COMMANDS } from './commands/raw.js';
import { EXIT, isUsageError, type CommandContext } from './context.js';
import { startedByNpm, watchParent } from './lifecycle.js';
import { commandUsage, mainUsage } from './usage.js';

/** The version in package.json (next to cli/ in the sources, and next to dist/ when built). */
function packageVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const v = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: unknown; version?: unknown };
      if (v.name === 'thaw' && typeof v.version === 'string') return v.version;
    } catch {
      // not at this level
    }
  }
  return 'unknown';
}

/** Runs `thaw` with argv (without node and script); resolves to the exit code. */
export async function main(argv: string[], io: Partial<Omit<CommandContext, 'logger' | 'signal'>> = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const env = io.env ?? process.env;
  const specs = COMMANDS.map((c) => c.spec);

  const listed = [...specs, ...RAW_COMMANDS];
  const first = argv[0];
  if (first === undefined || first === 'help' || first === '--help' || first === '-h') {
    const sub = first === 'help' ? findCommand(argv.slice(1)) : undefined;
    const raw = first === 'help' && sub === undefined ? findRawCommand(argv.slice(1)) : undefined;
    if (raw !== undefined) stdout.write(`${(await raw.entry.load()).usage}\n`);
    else stdout.write(sub === undefined ? mainUsage(listed) : commandUsage(sub.entry.spec));
    return first === undefined ? EXIT.usage : EXIT.ok;
  }
  if (first === '--version' || first === '-V' || first === 'version') {
    stdout.write(`thaw ${packageVersion()}\n`);
    return EXIT.ok;
  }
  const found = findCommand(argv);
  if (found === undefined) {
    const raw = findRawCommand(argv);
    if (raw !== undefined) return runRaw(raw.entry.name, () => raw.entry.load(), raw.argv, stderr);
    const group = listed.filter((s) => s.name.startsWith(`${first} `));
    stderr.write(group.length > 0 ? `thaw ${first}: expected one of: ${group.map((s) => s.name).join(', ')}\n` : `thaw: unknown command "${first}" (see: thaw help)\n`);
    return EXIT.usage;
  }
  const { entry, rest } = found;

  let config: unknown;
  try {
    const shared = COMMANDS.flatMap((c) => topLevelKeys(c.spec.schema));
    const loaded = loadConfig(entry.spec, rest, { env, sharedFileKeys: shared });
    if (loaded.help) {
      stdout.write(commandUsage(entry.spec));
      return EXIT.ok;
    }
    config = loaded.config;
  } catch (err) {
    if (isUsageError(err)) {
      stderr.write(`thaw ${entry.spec.name}: ${redactUrl(err.message)}\n`);
      return EXIT.usage;
    }
    throw err;
  }

  const level = (config as { logLevel?: LogLevel }).logLevel ?? 'info';
  const logger = createLogger(level, { cmd: entry.spec.name }, (line) => stderr.write(line + '\n'));
  const ac = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      logger.info('signal received: stopping', { signal: sig });
      ac.abort();
    } else {
      logger.warn('second signal: exiting now', { signal: sig });
      process.exit(EXIT.interrupted);
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // Under npm a SIGTERM to npm (`npx thaw run item &` then `kill $!`) ends npm's shell, not this
  // process: the parent's exit then counts as the SIGTERM, so the worker drains and exits.
  const stopWatch = startedByNpm(env)
    ? watchParent(() => {
        logger.info('parent process (npm) exited: stopping as on SIGTERM', { ppid: process.ppid });
        if (signals === 0) onSignal('SIGTERM');
      })
    : () => undefined;
  try {
    const command = await entry.load();
    return await command.run(config as never, { stdout, stderr, logger, signal: ac.signal, env });
  } catch (err) {
    if (isUsageError(err)) {
      stderr.write(`thaw ${entry.spec.name}: ${redactUrl(err.message)}\n`);
      return EXIT.usage;
    }
    logger.error(`${entry.spec.name} failed`, { error: err, code: (err as { code?: unknown }).code });
    if (level === 'silent') stderr.write(`thaw ${entry.spec.name}: ${redactUrl(errorMessage(err))}\n`);
    return EXIT.failure;
  } finally {
    stopWatch();
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

/**
 * How long the process may stay alive after the command returned, in ms: past it, handles some
 * client leaked (a reconnecting socket, a timer) would otherwise keep a failed command running for
 * ever, so the process exits with the command's code.
 */
export const EXIT_GRACE_MS = 3_000;

/** Entry point of the `thaw` binary (bin/thaw.mjs) and of cli/dev.ts: runs `main`, then exits. */
export function runCli(argv: string[]): void {
  const finish = (code: number): void => {
    process.exitCode = code;
    setTimeout(() => {
      process.stderr.write(`${JSON.stringify({ t: new Date().toISOString(), level: 'warn', msg: 'exiting: handles still open after the command returned', exitCode: code })}\n`);
      process.exit(code);
    }, EXIT_GRACE_MS).unref();
  };
  main(argv).then(finish, (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? `${err.name}: ${redactUrl(err.message)}` : redactUrl(String(err))}\n`);
    finish(EXIT.failure);
  });
}

/** Runs a command that parses its own argv; bad options still exit 2, with the message on stderr. */
async function runRaw(name: string, load: () => Promise<{ run(argv: string[]): Promise<number> }>, argv: string[], stderr: { write(s: string): unknown }): Promise<number> {
  try {
    return await (await load()).run(argv);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const usage = isUsageError(err) || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'));
    stderr.write(`thaw ${name}: ${redactUrl(errorMessage(err))}\n`);
    return usage ? EXIT.usage : EXIT.failure;
  }
}
