/**
 * PredictionSink for a ClickHouse server (18.16 and later) over HTTP with @clickhouse/client.
 *
 * Writes go straight to the server as TabSeparated bodies built as one string (row-codec.ts
 * toTabSeparated: cheaper in Node than JSONEachRow's JSON.stringify per row, measured by
 * bench/spine/sink-format.ts); the disk spool keeps JSONEachRow lines. When the server is unreachable the rows
 * are appended to a local disk spool instead and `write` resolves (they are durable locally); a
 * background drainer replays the spool with exponential backoff once the server answers again.
 * While the spool holds anything, new rows are spooled too, behind the older ones, so rows reach the
 * server in the order they were written. A refusal (bad schema, unknown table) is not an outage: it
 * rejects `write`, and a spooled segment the server refuses is moved aside (`.bad`) and logged.
 *
 * Group commit: one INSERT is in flight at a time; the writes that arrive meanwhile (concurrent
 * partitions of a worker) wait in a queue and go out together as the NEXT insert (up to maxBatchRows
 * rows; a single larger write goes alone, in maxBatchRows chunks). Each caller resolves when the insert
 * holding its rows succeeded, or when its rows are in the spool; the per-insert fixed cost (an HTTP
 * request, a part on the server) is then paid once per group instead of once per write. Groups go out
 * strictly in arrival order, so the spool still sees rows in write order.
 *
 * Duplicates are possible (an insert that timed out after the server stored it, a crash between a
 * replayed insert and the segment's deletion); the table is a ReplacingMergeTree and the curve
 * queries de-duplicate by event id, so they are harmless.
 */
import { Readable } from 'node:stream';
import { createClient, ClickHouseLogLevel, type ClickHouseClient } from '@clickhouse/client';
import { ConfigError, ThawError, toError } from '../lib/errors.js';
import { redactUrl, silentLogger, type Logger } from '../lib/log.js';
import { DEFAULT_DATABASE, DEFAULT_TABLE, PREDICTION_COLUMNS, predictionsDdl } from './ddl.js';
import { DiskSpool } from './spool.js';
import { isTransientClickHouseError, wrapClickHouseError } from './clickhouse-errors.js';
import { toJsonEachRow, toStoredRows, toTabSeparated, type StoredRow } from './row-codec.js';
import { sqlIdent } from './sql.js';
import { DISTRIBUTED_INSERT_SETTINGS, ensureClusterSchema, localTableName, normaliseClusterOption, type ClusterOption } from './cluster.js';
import { HttpSqlTarget } from './http-target.js';
import type { PredictionRow, PredictionSink } from './types.js';

export interface ClickHouseSinkOptions {
  /** HTTP(S) endpoint, e.g. http://127.0.0.1:8123. Credentials in the URL are moved to username/password. */
  url: string;
  /** @default 'default' (the client's default user) */
  username?: string;
  /** Never logged nor put in error messages. @default '' */
  password?: string;
  /** PEM of the CA(s) that sign the server's certificate, for an https URL. @default the system CAs */
  caCert?: Buffer;
  /** @default 'thaw' */
  database?: string;
  /** @default 'predictions' */
  table?: string;
  /** Directory of the outage spool (one sink per directory). */
  spoolDir: string;
  /** Disk the spool may use, in bytes. @default 1_073_741_824 (1 GiB) */
  spoolMaxBytes?: number;
  /** How long a write waits for spool space when the spool is full, in ms, before rejecting. @default 30_000 */
  spoolFullWaitMs?: number;
  /** Rows per INSERT request; also the bound of a group commit. @default 50_000 */
  maxBatchRows?: number;
  /** Timeout of one HTTP request, in ms. @default 30_000 */
  requestTimeoutMs?: number;
  /** Default limit for `flush()`, in ms. @default 60_000 */
  flushTimeoutMs?: number;
  /** First retry delay of the drainer, in ms (doubles up to retryMaxMs). @default 250 */
  retryInitialMs?: number;
  /** Longest retry delay of the drainer, in ms. @default 10_000 */
  retryMaxMs?: number;
  /**
   * Write to (and read from) a Distributed table over this cluster, sharded by entity, and create a
   * local table on every host (analytics/cluster.ts). @default none: `table` is a local table
   */
  cluster?: ClusterOption;
  /** @default silent */
  logger?: Logger;
}

interface Normalised {
  url: string;
  username: string | undefined;
  password: string | undefined;
  caCert: Buffer | undefined;
  database: string;
  table: string;
  maxBatchRows: number;
  requestTimeoutMs: number;
  flushTimeoutMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  cluster: ClusterOption | undefined;
}

function posInt(value: number | undefined, fallback: number, key: string): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v <= 0) throw new ConfigError(key, `must be a positive integer, got ${String(value)}`);
  return v;
}

function normalise(o: ClickHouseSinkOptions): Normalised {
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw new ConfigError('url', 'must be an http(s) URL'); // the URL itself may hold a password: not echoed
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError('url', 'must be an http(s) URL');
  const username = o.username ?? (url.username === '' ? undefined : decodeURIComponent(url.username));
  const password = o.password ?? (url.password === '' ? undefined : decodeURIComponent(url.password));
  url.username = '';
  url.password = '';
  const ident = (v: string | undefined, d: string, key: string): string => {
    try {
      return sqlIdent(v ?? d, key);
    } catch (err) {
      throw new ConfigError(key, 'must match /^[A-Za-z_][A-Za-z0-9_]{0,63}$/', { cause: err });
    }
  };
  const n: Normalised = {
    url: url.toString().replace(/\/$/, ''),
    username,
    password,
    caCert: o.caCert,
    database: ident(o.database, DEFAULT_DATABASE, 'database'),
    table: ident(o.table, DEFAULT_TABLE, 'table'),
    maxBatchRows: posInt(o.maxBatchRows, 50_000, 'maxBatchRows'),
    requestTimeoutMs: posInt(o.requestTimeoutMs, 30_000, 'requestTimeoutMs'),
    flushTimeoutMs: posInt(o.flushTimeoutMs, 60_000, 'flushTimeoutMs'),
    retryInitialMs: posInt(o.retryInitialMs, 250, 'retryInitialMs'),
    retryMaxMs: posInt(o.retryMaxMs, 10_000, 'retryMaxMs'),
    cluster: o.cluster === undefined ? undefined : normaliseClusterOption(o.cluster),
  };
  if (typeof o.spoolDir !== 'string' || o.spoolDir.length === 0) throw new ConfigError('spoolDir', 'must be a directory path');
  return n;
}

interface QueuedWrite {
  rows: StoredRow[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class ClickHouseSink implements PredictionSink {
  readonly database: string;
  readonly table: string;
  /** Set when `table` is a Distributed table over this cluster. */
  readonly cluster: string | undefined;
  /** With a cluster: each host's local table (DDL, namespace deletion). */
  readonly shards: readonly HttpSqlTarget[] | undefined;
  private readonly opts: Normalised;
  private readonly client: ClickHouseClient;
  private readonly spoolOpening: Promise<DiskSpool>;
  private readonly log: Logger;
  /** Writes waiting for the next insert, in arrival order. */
  private queue: QueuedWrite[] = [];
  /** The group-commit loop while it runs (one insert in flight at a time keeps the spool's order). */
  private committing: Promise<void> | null = null;
  /** Inserts (or spool appends) made by the group-commit loop; each may carry several writes. */
  groupCommits = 0;
  private drainer: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private closing = false;

  constructor(options: ClickHouseSinkOptions) {
    this.opts = normalise(options);
    this.database = this.opts.database;
    this.table = this.opts.table;
    this.cluster = this.opts.cluster?.name;
    const creds = {
      ...(this.opts.username === undefined ? {} : { username: this.opts.username }),
      ...(this.opts.password === undefined ? {} : { password: this.opts.password }),
    };
    this.shards = this.opts.cluster?.shardUrls.map(
      (url) => new HttpSqlTarget({ url, ...creds, ...(this.opts.caCert === undefined ? {} : { caCert: this.opts.caCert }), database: this.database, table: localTableName(this.table) }),
    );
    this.log = (options.logger ?? silentLogger).child({ component: 'clickhouse-sink', table: `${this.database}.${this.table}` });
    this.client = createClient({
      url: this.opts.url,
      ...(this.opts.username === undefined ? {} : { username: this.opts.username }),
      ...(this.opts.password === undefined ? {} : { password: this.opts.password }),
      ...(this.opts.caCert === undefined ? {} : { tls: { ca_cert: this.opts.caCert } }),
      request_timeout: this.opts.requestTimeoutMs,
      log: { level: ClickHouseLogLevel.OFF }, // we log ourselves, redacted
    });
    const spooling = DiskSpool.open({
      dir: options.spoolDir,
      ...(options.spoolMaxBytes === undefined ? {} : { maxBytes: options.spoolMaxBytes }),
      ...(options.spoolFullWaitMs === undefined ? {} : { fullWaitMs: options.spoolFullWaitMs }),
    });
    spooling.catch(() => undefined); // surfaced by the first call that needs the spool
    this.spoolOpening = spooling;
  }

  /** Creates the database and table if missing, and starts replaying a spool left by an earlier run. */
  async ensureSchema(): Promise<void> {
    if (this.cluster === undefined || this.shards === undefined) {
      for (const sql of predictionsDdl(this.database, this.table)) await this.command(sql);
    } else {
      const shards = this.shards.map((target, i) => ({ label: `clickhouse.shardUrls[${i}] ${redactUrl(this.opts.cluster?.shardUrls[i] ?? '')}`, target }));
      await ensureClusterSchema({ cluster: this.cluster, database: this.database, table: this.table, main: this, shards });
    }
    if (!(await this.spoolOpening).isEmpty) this.kickDrainer();
  }

  /** Bytes waiting in the spool (0 when everything reached the server). */
  async spooledBytes(): Promise<number> {
    return (await this.spoolOpening).sizeBytes;
  }

  write(rows: readonly PredictionRow[]): Promise<void> {
    if (this.closing) return Promise.reject(new ThawError('LIFECYCLE', 'ClickHouseSink is closed'));
    let stored: StoredRow[];
    try {
      stored = toStoredRows(rows);
    } catch (err) {
      return Promise.reject(toError(err));
    }
    if (stored.length === 0) return this.idle();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ rows: stored, resolve, reject });
      this.committing ??= this.commitLoop();
    });
  }

  /** Resolves once every write accepted so far has settled. */
  private async idle(): Promise<void> {
    while (this.committing !== null) await this.committing;
  }

  /** Takes the oldest queued writes that fit together in one insert (at least one write). */
  private nextGroup(): QueuedWrite[] {
    const max = this.opts.maxBatchRows;
    let n = 0;
    let rows = 0;
    for (const w of this.queue) {
      if (n > 0 && rows + w.rows.length > max) break;
      rows += w.rows.length;
      n++;
    }
    return this.queue.splice(0, n);
  }

  /** Drains the queue group by group, in order. Never rejects (each write settles on its own). */
  private async commitLoop(): Promise<void> {
    // `committing` is cleared in the same tick as the last emptiness check (not in a later .finally
    // callback), so a write queued right after can never find a loop that is about to end.
    try {
      while (this.queue.length > 0) await this.commitGroup(this.nextGroup());
    } finally {
      this.committing = null;
    }
  }

  /** Writes one group; settles each of its writes. Never rejects. */
  private async commitGroup(group: QueuedWrite[]): Promise<void> {
    const only = group.length === 1 ? group[0] : undefined;
    const rows = only !== undefined ? only.rows : group.flatMap((w) => w.rows);
    try {
      await this.writeNow(rows);
      this.groupCommits++;
      for (const w of group) w.resolve();
    } catch (err) {
      if (only !== undefined) {
        only.reject(err);
        return;
      }
      // A refused group (the merged rows fit in one insert, so none of them was stored): retry each
      // write alone, so a write is rejected only for its own rows, as without group commit.
      for (const w of group) {
        try {
          await this.writeNow(w.rows);
          this.groupCommits++;
          w.resolve();
        } catch (e) {
          w.reject(e);
        }
      }
    }
  }

  private async writeNow(rows: StoredRow[]): Promise<void> {
    const spool = await this.spoolOpening;
    if (!spool.isEmpty) {
      await spool.append(toJsonEachRow(rows));
      this.kickDrainer();
      return;
    }
    for (let i = 0; i < rows.length; i += this.opts.maxBatchRows) {
      const chunk = rows.slice(i, i + this.opts.maxBatchRows);
      try {
        await this.insert(chunk);
      } catch (err) {
        if (!isTransientClickHouseError(err)) throw wrapClickHouseError(`insert into ${this.database}.${this.table} refused`, err);
        this.log.warn('clickhouse unreachable, spooling rows', { rows: rows.length - i, err });
        await spool.append(toJsonEachRow(rows.slice(i)));
        this.kickDrainer();
        return;
      }
    }
  }

  private async insert(rows: readonly StoredRow[]): Promise<void> {
    // A byte stream (not object mode) is how the client takes a raw-format body; a new one per
    // attempt, since a stream is read once.
    const body = Readable.from([toTabSeparated(rows)], { objectMode: false });
    await this.client.insert({
      table: `${this.database}.${this.table}`,
      values: body,
      format: 'TabSeparated',
      columns: [...PREDICTION_COLUMNS],
      ...(this.cluster === undefined ? {} : { clickhouse_settings: DISTRIBUTED_INSERT_SETTINGS }),
    });
  }

  private kickDrainer(): void {
    if (this.drainer !== null || this.closing) return;
    this.drainer = this.drainLoop().finally(() => {
      this.drainer = null;
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.wake === done) this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done; // close() cuts a backoff sleep short
    });
  }

  /** Replays spool segments oldest first until the spool is empty or the sink closes. Never rejects. */
  private async drainLoop(): Promise<void> {
    let delay = this.opts.retryInitialMs;
    let failures = 0;
    /** Rows of the current segment already inserted, so a retry does not resend them. */
    let done = { seq: -1, rows: 0 };
    while (!this.closing) {
      let spool: DiskSpool;
      try {
        spool = await this.spoolOpening;
        const seg = await spool.oldest();
        if (seg === null) return;
        if (done.seq !== seg.seq) done = { seq: seg.seq, rows: 0 };
        let rows: StoredRow[];
        try {
          rows = seg.text
            .split('\n')
            .filter((l) => l.length > 0)
            .map((l) => JSON.parse(l) as StoredRow);
        } catch (err) {
          const to = await spool.quarantine(seg);
          this.log.error('unreadable spool segment moved aside', { path: to, err });
          continue;
        }
        try {
          while (done.rows < rows.length) {
            const chunk = rows.slice(done.rows, done.rows + this.opts.maxBatchRows);
            await this.insert(chunk);
            done.rows += chunk.length;
          }
        } catch (err) {
          if (isTransientClickHouseError(err)) throw err;
          const to = await spool.quarantine(seg);
          this.log.error('clickhouse refused spooled rows; segment moved aside', { path: to, rows: rows.length - done.rows, err });
          continue;
        }
        await spool.remove(seg);
        if (failures > 0) this.log.info('clickhouse reachable again, spool segment replayed', { rows: rows.length, failures });
        delay = this.opts.retryInitialMs;
        failures = 0;
      } catch (err) {
        failures++;
        if (failures === 1 || failures % 20 === 0) this.log.warn('spool replay failed, retrying', { failures, delayMs: delay, err });
        await this.sleep(delay);
        delay = Math.min(delay * 2, this.opts.retryMaxMs);
      }
    }
  }

  /**
   * Resolves once every accepted row is in ClickHouse (the spool is empty). Rejects with
   * CLICKHOUSE_ERROR if that takes longer than `timeoutMs` (the rows stay spooled).
   */
  async flush(opts: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? this.opts.flushTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    await this.idle();
    const spool = await this.spoolOpening;
    while (!spool.isEmpty) {
      if (this.closing) throw new ThawError('LIFECYCLE', 'ClickHouseSink closed during flush');
      this.kickDrainer();
      const left = deadline - Date.now();
      const drainer = this.drainer;
      if (left <= 0 || drainer === null) {
        throw new ThawError('CLICKHOUSE_ERROR', `flush timed out after ${timeoutMs} ms with ${spool.sizeBytes} bytes still spooled`);
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([drainer, new Promise<void>((resolve) => (timer = setTimeout(resolve, left)))]);
      clearTimeout(timer);
    }
  }

  /** Stops the drainer (spooled rows stay on disk for the next run) and closes the client. */
  async close(): Promise<void> {
    if (this.closing) return;
    await this.idle();
    this.closing = true;
    this.wake?.();
    await this.drainer;
    await (await this.spoolOpening.catch(() => null))?.close();
    await Promise.all([this.client.close(), ...(this.shards ?? []).map((s) => s.close())]);
  }

  /** Runs a SELECT and returns its rows (64-bit integers arrive as strings from 18.16). */
  async query(sql: string): Promise<Record<string, unknown>[]> {
    try {
      const rs = await this.client.query({ query: sql, format: 'JSONEachRow' });
      return await rs.json<Record<string, unknown>>();
    } catch (err) {
      throw wrapClickHouseError('query failed', err);
    }
  }

  /** Runs a statement without result rows (DDL, ALTER). */
  async command(sql: string): Promise<void> {
    try {
      await this.client.command({ query: sql });
    } catch (err) {
      throw wrapClickHouseError('command failed', err);
    }
  }
}
