/**
 * The release pointers the workers read (model-store/releases.ts: `<root>/<model>/CURRENT`): per
 * model, the promoted release and how long ago it was published, so the page can show the release a
 * worker should be running and how stale it is, beside what each worker reports it runs.
 */
import { readdir } from 'node:fs/promises';
import { errorMessage } from '../lib/errors.js';
import { ReleaseStore } from '../model-store/releases.js';

/** One model's promoted release. */
export interface ReleasePointer {
  model: string;
  /** `<model>/<version>`, as workers report it (thaw_release_info); null: nothing promoted. */
  release: string | null;
  createdAtMs: number | null;
  /** Seconds since it was published. */
  ageSec: number | null;
  /** Releases of this model on disk (count). */
  releases: number;
}

export interface ReleasesResponse {
  /** The directory read; null when none is configured. */
  dir: string | null;
  models: ReleasePointer[];
  error: string | null;
}

export class ReleasesView {
  private readonly store: ReleaseStore | undefined;
  private cached: { atMs: number; models: ReleasePointer[] } | undefined;

  /**
   * @param dir release directory (ReleaseStore root); undefined shows none
   * @param refreshMs how long a read is reused, in ms
   */
  constructor(
    private readonly dir: string | undefined,
    private readonly refreshMs = 10_000,
    private readonly clock: () => number = Date.now,
  ) {
    this.store = dir === undefined ? undefined : new ReleaseStore({ root: dir });
  }

  /** Every model's pointer; a missing directory is no models, an unreadable one an error. */
  async get(): Promise<ReleasesResponse> {
    const now = this.clock();
    if (this.store === undefined) return { dir: null, models: [], error: null };
    try {
      if (this.cached === undefined || now - this.cached.atMs >= this.refreshMs) this.cached = { atMs: now, models: await this.read(this.store) };
    } catch (err) {
      return { dir: this.dir ?? null, models: [], error: errorMessage(err) };
    }
    const models = this.cached.models.map((m) => ({ ...m, ageSec: m.createdAtMs === null ? null : Math.round((now - m.createdAtMs) / 100) / 10 }));
    return { dir: this.dir ?? null, models, error: null };
  }

  private async read(store: ReleaseStore): Promise<ReleasePointer[]> {
    let names: string[];
    try {
      names = (await readdir(store.root, { withFileTypes: true }))
        .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
        .map((e) => e.name)
        .sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: ReleasePointer[] = [];
    for (const model of names) {
      const current = await store.current(model);
      const all = await store.list(model);
      const manifest = all.find((m) => m.version === current);
      out.push({
        model,
        release: current === undefined ? null : `${model}/${current}`,
        createdAtMs: manifest?.createdAtMs ?? null,
        ageSec: null,
        releases: all.length,
      });
    }
    return out;
  }
}
