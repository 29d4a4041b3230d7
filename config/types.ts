import type { z } from 'zod';

/**
 * How a command-line flag's text becomes a config value. `list` splits on commas (e.g. several
 * brokers), `int`/`number` parse decimal numbers, `boolean` flags take no value.
 */
export type FlagKind = 'string' | 'int' | 'number' | 'boolean' | 'list';

/** One command-line flag and the config key it sets. */
export interface FlagDef {
  /** Flag name without the leading dashes, e.g. `metrics-port`. */
  flag: string;
  /** Dotted config key the flag sets, e.g. `metricsPort` or `kafka.brokers`. Help text and default come from the schema at this key. */
  key: string;
  kind: FlagKind;
  /** Placeholder shown in usage, e.g. `HOST:PORT`. */
  meta?: string;
}

/** A positional argument and the config key it sets (e.g. the side of `thaw run item`). */
export interface PositionalDef {
  key: string;
  /** Name shown in usage, e.g. `item|user`. */
  name: string;
}

/**
 * Everything the CLI knows about a command's options: the zod schema is the single source of
 * types, defaults and documentation (`.describe()`); flags and positionals map the command line
 * onto its keys. Usage text is generated from this.
 */
export interface CommandSpec<S extends z.ZodTypeAny = z.ZodTypeAny> {
  /** Command words, e.g. `demo` or `train fm`. */
  name: string;
  /** One line for `thaw help`. */
  summary: string;
  schema: S;
  flags: readonly FlagDef[];
  positionals?: readonly PositionalDef[];
  /** Extra paragraphs printed after the options in `--help`. */
  notes?: string;
}
