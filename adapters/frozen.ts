/**
 * The `none` baseline over a meta-learned release: wraps the release's own adapter, keeps its state
 * layout and its initial states (EmerG's generated ID embedding and graph, ColdNAS's empty history,
 * the fixed/adaptive split's meta-learned init; every bias at 0), and never adapts them. It never
 * reads the other side either (`batch.others` is not passed on): its score is the release's with
 * both entities cold, which is also the baseline the adapter itself reports for the safeguard.
 * Warm-up curves compare each adapter with this one on the SAME release, so the lift they show is
 * the online adaptation and the cross-side read.
 */
import type { LabelledEvent, Side } from '../schemas/types.js';
import type { Adapter, AdapterBatch } from './types.js';

export class FrozenAdapter implements Adapter {
  readonly name = 'none';
  readonly side: Side;
  readonly stateSize: number;
  readonly viewSize = 0;
  readonly hasBaseline = false;
  readonly release: string;
  /** The adapter whose initial states and scores are used, unchanged. */
  readonly inner: Adapter;
  /**
   * Present when the inner adapter has it (its `predict` rows are then independent of each other):
   * nothing adapts, so a whole micro-batch is one `predict`, repeated entities included.
   */
  readonly predictThenAdaptSequence?: (batch: AdapterBatch) => Float32Array;

  constructor(inner: Adapter) {
    this.inner = inner;
    this.side = inner.side;
    this.stateSize = inner.stateSize;
    this.release = inner.release;
    if (inner.predictThenAdaptSequence !== undefined) this.predictThenAdaptSequence = (batch) => this.predict(batch);
  }

  initialState(event: LabelledEvent): Float32Array {
    return this.inner.initialState(event);
  }

  initialStates(events: readonly LabelledEvent[]): Float32Array[] {
    return this.inner.initialStates !== undefined ? this.inner.initialStates(events) : events.map((e) => this.inner.initialState(e));
  }

  /** The inner adapter's scores with the states as they are and no cross-side read. */
  predict(batch: AdapterBatch): Float32Array {
    return this.inner.predict({ events: batch.events, states: batch.states });
  }

  /** No adaptation: the states stay as they were created. */
  predictThenAdapt(batch: AdapterBatch): Float32Array {
    return this.predict(batch);
  }

  dispose(): void {
    this.inner.dispose?.();
  }
}
