/**
 * Retrieval's series on the server's `/metrics` registry (serving/metrics.ts): the time of a
 * retrieval (user tower, search, merge), the index's parts, and what the service indexed.
 */
import { Gauge, Histogram, type Registry } from 'prom-client';
import type { RetrievalService } from './retrieve.js';

const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1];

/** Registers the series; returns the observer of one retrieval's time (ms) for the route. */
export function registerRetrievalMetrics(registry: Registry, service: RetrievalService): (ms: number) => void {
  const registers = [registry];
  const seconds = new Histogram({ name: 'thaw_serve_retrieve_seconds', help: 'Time of a retrieval: user tower, ANN search (graph + growing segment), merge', buckets: BUCKETS, registers });
  new Gauge({
    name: 'thaw_retrieval_index_items',
    help: 'Items of the retrieval index by part: growing (searched exactly, not sealed yet), sealed (in the HNSW graph), tombstones (deleted graph nodes)',
    labelNames: ['part'],
    registers,
    collect() {
      const s = service.index.stats();
      this.set({ part: 'growing' }, s.growing);
      this.set({ part: 'sealed' }, s.sealed);
      this.set({ part: 'tombstones' }, s.tombstones);
    },
  });
  new Gauge({
    name: 'thaw_retrieval_index_writes',
    help: 'Items the service was asked to index since start, by outcome: indexed (the index changed) or unchanged (already there with that vector)',
    labelNames: ['outcome'],
    registers,
    collect() {
      this.set({ outcome: 'indexed' }, service.counts.indexed);
      this.set({ outcome: 'unchanged' }, service.counts.unchanged);
    },
  });
  return (ms) => seconds.observe(ms / 1000);
}
