/**
 * A recorded load: the request arrivals and bodies the resource manager (serving/resource-manager.ts)
 * replays to search the pipeline's settings. JSON Lines, one object per line:
 *
 *   {"format":"thaw-load/1","deadlineMs":50,"note":"..."}          the header, first line
 *   {"t":0.42,"body":{"user":{"id":"u1"},"candidates":[...]}}       one arrival per line, t ascending
 *   {"t":0.97,"deadlineMs":20,"body":{...}}                          optional per-request deadline
 *
 * `t` is the arrival time in ms from the start of the recording; `body` is the POST /v1/score body
 * as the client sent it; `deadlineMs` is its `x-deadline-ms` header (absent: the header's
 * `deadlineMs`). bench/serving/record.ts writes one from the bench's workload generator.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../lib/errors.js';

export const LOAD_FORMAT = 'thaw-load/1';

export interface LoadArrival {
  /** Arrival time from the start of the recording (ms). */
  t: number;
  /** The request body, serialised as the client sent it (JSON). */
  body: string;
  /** The request's deadline (ms), or undefined: the recording's. */
  deadlineMs: number | undefined;
}

export interface LoadRecording {
  /** The deadline of an arrival without its own (ms). */
  deadlineMs: number;
  arrivals: LoadArrival[];
  /** Span from the first arrival to the last (ms). */
  spanMs: number;
}

/** The text of a recording (header + arrivals) from arrivals in time order. */
export function formatLoad(deadlineMs: number, arrivals: readonly { t: number; body: unknown; deadlineMs?: number }[], note?: string): string {
  const lines = [JSON.stringify({ format: LOAD_FORMAT, deadlineMs, ...(note === undefined ? {} : { note }) })];
  for (const a of arrivals) lines.push(JSON.stringify({ t: Math.round(a.t * 1000) / 1000, ...(a.deadlineMs === undefined ? {} : { deadlineMs: a.deadlineMs }), body: a.body }));
  return lines.join('\n') + '\n';
}

/** Parses a recording; throws ConfigError (key `load`) naming the line at fault. */
export function parseLoad(text: string, source = 'load'): LoadRecording {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const fail = (line: number, what: string): never => {
    throw new ConfigError('load', `${source} line ${line}: ${what}`);
  };
  const json = (line: number): Record<string, unknown> => {
    let v: unknown;
    try {
      v = JSON.parse(lines[line - 1] ?? '');
    } catch {
      return fail(line, 'not JSON');
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(line, 'expected a JSON object');
    return v as Record<string, unknown>;
  };
  if (lines.length === 0) return fail(1, `empty: expected a header {"format":"${LOAD_FORMAT}","deadlineMs":...}`);
  const header = json(1);
  if (header.format !== LOAD_FORMAT) fail(1, `format must be ${JSON.stringify(LOAD_FORMAT)}, got ${JSON.stringify(header.format)}`);
  const positive = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;
  if (!positive(header.deadlineMs)) fail(1, `deadlineMs must be a positive number of ms, got ${JSON.stringify(header.deadlineMs)}`);
  const arrivals: LoadArrival[] = [];
  let last = 0;
  for (let line = 2; line <= lines.length; line++) {
    const a = json(line);
    if (typeof a.t !== 'number' || !Number.isFinite(a.t) || a.t < last) fail(line, `t must be a number of ms, not below the previous arrival's ${last}, got ${JSON.stringify(a.t)}`);
    if (a.deadlineMs !== undefined && !positive(a.deadlineMs)) fail(line, `deadlineMs must be a positive number of ms, got ${JSON.stringify(a.deadlineMs)}`);
    if (typeof a.body !== 'object' || a.body === null) fail(line, 'body must be the request body object');
    last = a.t as number;
    arrivals.push({ t: last, body: JSON.stringify(a.body), deadlineMs: a.deadlineMs as number | undefined });
  }
  if (arrivals.length === 0) fail(lines.length, 'no arrivals');
  return { deadlineMs: header.deadlineMs as number, arrivals, spanMs: last - (arrivals[0]?.t ?? 0) };
}

/** Reads and parses a recording file. */
export function readLoad(file: string): LoadRecording {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('load', `cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return parseLoad(text, file);
}
