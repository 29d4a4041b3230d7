import type { LabelledEvent, Side } from '../schemas/types.js';

/**
 * An adapter owns the small per-entity parameters of one side (user or item) on top of a frozen
 * shared model. State is a flat Float32Array whose layout only the adapter knows; the model store
 * persists it as bytes. All calls are batched: one call covers many entities.
 *
 * Ordering contract: within one `AdapterBatch` every entity appears at most once. The consumer splits
 * a micro-batch into waves (the k-th event of each entity goes to wave k), so predict-then-adapt stays
 * in event order per entity while each wave is one batched computation.
 */
export interface AdapterBatch {
  /** Events, each of a different entity on `side`. */
  readonly events: readonly LabelledEvent[];
  /** The state of each event's entity, same index as `events`; `adapt` updates them in place. */
  readonly states: Float32Array[];
  /**
   * The OTHER side's entity of each event as this worker may see it (cross-side read), same index:
   * a view (an array whose first floats are `[bias, variance of bias, …]`, see `viewSize`) that the
   * other side's worker wrote before the event, or undefined for an entity it never wrote (or whose
   * only views are newer than the event: consumers/cross-side.ts). Absent: every other entity is
   * cold. Never modified.
   */
  readonly others?: readonly (Float32Array | undefined)[];
  /**
   * Out, optional: where `predictThenAdapt` writes each event's score with no adaptation at all
   * (the adapter's own `none`: cold states on both sides), same index. The worker's safeguard mixes
   * it with the adapted score (consumers/safeguard.ts). Adapters with `hasBaseline` fill it.
   */
  readonly baseline?: Float32Array;
}

export interface Adapter {
  /** Stable name; recorded in every prediction row and in state keys, e.g. `none`, `fm-adagrad`. */
  readonly name: string;
  readonly side: Side;
  /** Floats per entity state (0 for `none`). */
  readonly stateSize: number;
  /**
   * Floats at the start of each state that the other side's workers read: the entity's VIEW, which
   * always starts `[bias (logit), variance of bias]` (adapters of any kind can use those two), and
   * for the FM adapter goes on with the entity vector. 0: the adapter exposes nothing.
   */
  readonly viewSize: number;
  /** True when `predictThenAdapt` / `predictThenAdaptSequence` fill `batch.baseline`. */
  readonly hasBaseline: boolean;
  /** Release id of the shared parameters in use. */
  readonly release: string;
  /** State of an entity never seen before (may use the event's features). */
  initialState(event: LabelledEvent): Float32Array;
  /**
   * Batched form of `initialState` for adapters whose initial state is a model computation (EmerG's
   * hypernetwork and ID generator): one call for every new entity of a micro-batch, same index as
   * `events` (each the entity's first event). Optional; the worker falls back to `initialState`.
   */
  initialStates?(events: readonly LabelledEvent[]): Float32Array[];
  /** Scores (click probabilities) with states as they are. Does not modify states. */
  predict(batch: AdapterBatch): Float32Array;
  /**
   * Scores every event with its entity's state as it was before the event, then adapts each state
   * on that event's label. Returns the pre-adaptation scores (the honest, prequential prediction).
   */
  predictThenAdapt(batch: AdapterBatch): Float32Array;
  /**
   * Optional: predict-then-adapt of a whole micro-batch in ONE call, events in stream order, where
   * an entity may appear several times: every event of an entity carries the same state object
   * (`states[i] === states[j]`), which the call updates event after event. Must give what the
   * wave-by-wave `predictThenAdapt` calls give (to float rounding). The worker uses it when present:
   * adapters whose learning step does not depend on their score (ColdNAS folds an encoding of the
   * event alone) compute a micro-batch in a few large passes instead of one call per wave.
   */
  predictThenAdaptSequence?(batch: AdapterBatch): Float32Array;
  /**
   * Releases what the adapter holds outside the JS heap (the kept TensorFlow.js tensors of its
   * frozen release model). Called once by whoever retires the adapter (the worker when a release is
   * replaced and no micro-batch uses the old adapter any more). Optional: typed-array adapters hold
   * nothing. A call after dispose still works (tensors are re-created), it just leaks them again.
   */
  dispose?(): void;
}
