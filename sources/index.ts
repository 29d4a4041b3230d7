/**
 * One entry point for every event source, and the CLI's string form of a source:
 *
 *   synthetic                         synthetic stream with defaults
 *   synthetic:events=200000,seed=7    any SyntheticOptions key=number, comma-separated
 *   ml100k:/data/ml-100k              MovieLens-100K directory
 *   ml1m:/data/ml-1m                  MovieLens-1M directory
 *   csv:/path/events.csv              generic CSV (docs/event-format.md)
 *   jsonl:/path/events.jsonl          generic JSONL
 */
import type { LabelledEvent } from '../schemas/types.js';
import { ConfigError } from '../lib/errors.js';
import { SyntheticStream, SYNTHETIC_OPTION_KEYS, type SyntheticOptions } from './synthetic.js';
import { readMovieLens, type MovieLensOptions } from './movielens.js';
import { readCsvEvents, readJsonlEvents } from './generic.js';

export type SourceSpec =
  | ({ kind: 'synthetic' } & SyntheticOptions)
  | ({ kind: 'ml100k'; dir: string } & MovieLensOptions)
  | ({ kind: 'ml1m'; dir: string } & MovieLensOptions)
  | { kind: 'csv'; path: string }
  | { kind: 'jsonl'; path: string };

export const SOURCE_KINDS = ['synthetic', 'ml100k', 'ml1m', 'csv', 'jsonl'] as const;

/** The events of a source, in the source's order (time order for synthetic and MovieLens). */
export function openSource(spec: SourceSpec): AsyncIterable<LabelledEvent> {
  switch (spec.kind) {
    case 'synthetic': {
      const { kind: _kind, ...opts } = spec;
      return new SyntheticStream(opts);
    }
    case 'ml100k':
    case 'ml1m': {
      const { kind, dir, ...opts } = spec;
      return readMovieLens(kind, dir, opts);
    }
    case 'csv':
      return readCsvEvents(spec.path);
    case 'jsonl':
      return readJsonlEvents(spec.path);
    default:
      throw new ConfigError('source', `unknown source kind ${JSON.stringify((spec as { kind: unknown }).kind)}`);
  }
}

/** Parses the CLI form of a source (see the file comment); throws ConfigError naming `source`. */
export function parseSourceSpec(text: string): SourceSpec {
  const colon = text.indexOf(':');
  const kind = colon < 0 ? text : text.slice(0, colon);
  const rest = colon < 0 ? '' : text.slice(colon + 1);
  switch (kind) {
    case 'synthetic': {
      const spec: { kind: 'synthetic' } & SyntheticOptions = { kind: 'synthetic' };
      if (rest.trim() === '') return spec;
      for (const pair of rest.split(',')) {
        const eq = pair.indexOf('=');
        const key = (eq < 0 ? pair : pair.slice(0, eq)).trim();
        const raw = eq < 0 ? '' : pair.slice(eq + 1).trim();
        if (!(SYNTHETIC_OPTION_KEYS as string[]).includes(key)) {
          throw new ConfigError(`source.synthetic.${key}`, `unknown option; known: ${SYNTHETIC_OPTION_KEYS.join(', ')}`);
        }
        // Accept 1_000_000 and 1e6 as well as plain digits.
        const value = Number(raw.replace(/_/g, ''));
        if (raw === '' || !Number.isFinite(value)) throw new ConfigError(`source.synthetic.${key}`, `must be a number, got "${raw}"`);
        spec[key as keyof SyntheticOptions] = value;
      }
      return spec;
    }
    case 'ml100k':
    case 'ml1m':
      if (rest === '') throw new ConfigError('source', `${kind} needs a directory: ${kind}:/path/to/dir`);
      return { kind, dir: rest };
    case 'csv':
    case 'jsonl':
      if (rest === '') throw new ConfigError('source', `${kind} needs a file: ${kind}:/path/to/file`);
      return { kind, path: rest };
    default:
      throw new ConfigError('source', `unknown source "${text}"; expected one of ${SOURCE_KINDS.map((k) => `${k}:…`).join(', ')}`);
  }
}
