/** Argument parsing shared by the raw (parseArgs) commands: eval, eval-user, eval-retrieval, retrieval build. */
import { ConfigError } from '../lib/errors.js';

/** `v` as an integer ≥ `min`, `dflt` when absent; a ConfigError naming `key` otherwise. */
export function intArg(key: string, v: string | undefined, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(key, `must be an integer >= ${min}, got "${v}"`);
  return n;
}
