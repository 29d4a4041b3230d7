/**
 * Messages between `thaw run --threads N`'s main thread (cli/run-threads.ts) and its worker threads
 * (cli/run-thread.ts), and how a thread is started. Plain objects: they cross postMessage.
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { RunConfig } from '../config/commands/run.js';

/** What a thread is started with (workerData). */
export interface ThreadData {
  cfg: RunConfig;
  /** 0..threads-1: in every log line (`thread`) and metric label, and picks the spool directory. */
  index: number;
}

/** Main thread → worker thread. */
export type ToThread = { kind: 'drain' } | { kind: 'scrape'; id: number };

/** A failure as it crosses threads: the message and the stable code, if any. */
export interface ThreadError {
  message: string;
  code: string | undefined;
}

/** Worker thread → main thread. */
export type FromThread =
  | { kind: 'started'; groupId: string; topic: string; release: string }
  | { kind: 'start-failed'; error: ThreadError }
  | { kind: 'draining' }
  | { kind: 'stopped'; state: 'STOPPED' | 'FAILED'; error: ThreadError | undefined; processed: number; batches: number }
  | { kind: 'scraped'; id: number; healthy: boolean; metrics: MetricObjectWithValues<MetricValue<string>>[] };

/** Starts the worker thread of `data`. */
export function startRunThread(data: ThreadData): Worker {
  const entry = new URL(`./run-thread${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, { workerData: data });
  // From the sources under tsx (cli/dev.ts, the tests): on Node 20 tsx's --import hook does not
  // reach a worker's entry module, so the thread registers tsx itself before loading it.
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(boot, { eval: true, workerData: data });
}

/** The message and code of any thrown value. */
export function threadError(err: unknown): ThreadError {
  const code = (err as { code?: unknown } | undefined)?.code;
  return { message: err instanceof Error ? err.message : String(err), code: typeof code === 'string' ? code : undefined };
}
