/**
 * The lazily loaded native HNSW library (hnswlib-node, an optional dependency). Loading it is the
 * only place that knows its module name: when it is missing (optional dependencies are skipped when
 * their native build fails), every index operation fails with INDEX_UNAVAILABLE naming the fix.
 */
import { ThawError } from '../../lib/errors.js';

/** The part of hnswlib-node's HierarchicalNSW this folder uses (it takes plain arrays, not Float32Array). */
export interface HnswGraph {
  initIndex(opts: { maxElements: number; m?: number; efConstruction?: number; randomSeed?: number; allowReplaceDeleted?: boolean }): void;
  readIndexSync(filename: string, allowReplaceDeleted?: boolean): void;
  writeIndexSync(filename: string): void;
  resizeIndex(newMaxElements: number): void;
  addPoint(point: number[], label: number, replaceDeleted?: boolean): void;
  markDelete(label: number): void;
  searchKnn(queryPoint: number[], numNeighbors: number): { distances: number[]; neighbors: number[] };
  getMaxElements(): number;
  getCurrentCount(): number;
  getPoint(label: number): number[];
  setEf(ef: number): void;
  getEf(): number;
}

/** Constructor of a graph over inner-product space (`distance = 1 − u·v`). */
export type HnswFactory = (dim: number) => HnswGraph;

interface HnswModule {
  HierarchicalNSW: new (space: 'ip', dim: number) => HnswGraph;
}

let loaded: Promise<HnswFactory> | undefined;

/** The package the graph comes from. */
export const HNSW_PACKAGE = 'hnswlib-node';

/**
 * The HNSW graph factory; INDEX_UNAVAILABLE when hnswlib-node cannot be loaded. `name` is for tests
 * (a package that is not installed).
 */
export function loadHnsw(name: string = HNSW_PACKAGE): Promise<HnswFactory> {
  if (name !== HNSW_PACKAGE) return importHnsw(name);
  loaded ??= importHnsw(name).catch((err: unknown) => {
    loaded = undefined;
    throw err;
  });
  return loaded;
}

async function importHnsw(name: string): Promise<HnswFactory> {
  let mod: HnswModule;
  try {
    // A variable specifier keeps TypeScript from requiring the optional package's types at build time.
    const imported = (await import(name)) as { default?: HnswModule } & Partial<HnswModule>;
    mod = (imported.HierarchicalNSW === undefined ? imported.default : imported) as HnswModule;
    if (typeof mod.HierarchicalNSW !== 'function') throw new Error(`${name} exports no HierarchicalNSW`);
  } catch (err) {
    throw new ThawError(
      'INDEX_UNAVAILABLE',
      `the ANN index needs the optional dependency hnswlib-node, which is not installed or did not build (${name}): install a C++ toolchain (apt-get install g++ make python3) and run \`npm install hnswlib-node@3\``,
      { cause: err },
    );
  }
  return (dim: number) => new mod.HierarchicalNSW('ip', dim);
}
