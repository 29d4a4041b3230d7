/**
 * The model stage for releases of the meta-learned adapters (`emerg`, `coldnas`, `fixed-adaptive`):
 * a request is scored through the adapter's OWN code, the call its worker makes to predict an event
 * before it adapts (`predictThenAdapt`, adapters/types.ts), so a served score is the worker's logged
 * prediction by construction: same functions, same states, same release.
 *
 * A request of one user and n candidates is n events `(user, candidate i)`:
 * - the adapted side's entity (the candidate for `emerg`, the user for `coldnas`/`fixed-adaptive`)
 *   is scored with its stored state, read whole into the state cache (serving/state-cache.ts);
 * - an entity the store does not hold (or could not be read) gets the state its worker gives a
 *   first-seen entity, from the request's features: `initialStates` of the event (EmerG's generated
 *   ID embedding and graph; ColdNAS's empty history; the fixed/adaptive split's meta-learned init);
 * - the other side's entity enters as the cross-side read (adapters/entity-bias.ts): the view
 *   `[bias, variance]` of the partner's stored state (the fm-adagrad workers' by default, what
 *   `thaw run --cross-adapter` reads), or cold when it has none;
 * - the adapter's baseline (its `none`: both entities cold), for the safeguard's mixture, comes
 *   from the same call (`batch.baseline`).
 * `predictThenAdapt` steps the states after scoring: it runs on per-row COPIES, which are dropped,
 * so nothing is learned here and rows of one request never see each other (an entity in several
 * rows, as the user of a user-side adapter always is, is scored n times from the same state).
 *
 * Cost: one adapter call per request (its rows in one batch; the adapters run small batches in
 * plain JS and large ones in TensorFlow.js), plus the step on the copies. The FM release keeps its
 * allocation-free typed-array kernel (serving/fm-kernel.ts); this path allocates per request.
 */
import type { Adapter } from '../adapters/types.js';
import { ThawError } from '../lib/errors.js';
import { META_VIEW_SIZE } from '../models/meta-state.js';
import type { LabelledEvent, Side } from '../schemas/types.js';
import type { ScoreEntity, ScoreRequest } from './request.js';
import type { StateCache } from './state-cache.js';

export class AdapterModel {
  readonly adapter: Adapter;
  /** The side the adapter adapts (its own states); the other side is read as the cross-side view. */
  readonly side: Side;
  /** Whether the other side's views enter the scores (the worker's cross-side read is on). */
  readonly cross: boolean;
  /** Floats per cache slot: the adapter's whole state. */
  readonly width: number;

  /** @param cross whether the worker reads the other side (`thaw run --cross-adapter` not `off`) */
  constructor(adapter: Adapter, cross: boolean) {
    if (adapter.stateSize < META_VIEW_SIZE)
      throw new ThawError('RELEASE_INCOMPATIBLE', `serving: adapter ${adapter.name} has ${adapter.stateSize}-float states; only adapters with entity states are served`);
    this.adapter = adapter;
    this.side = adapter.side;
    this.cross = cross;
    this.width = adapter.stateSize;
  }

  /** Floats read from a stored state of `side`: the whole state on the adapter's side, the view on the other. */
  readWidth(side: Side): number {
    return side === this.side ? this.adapter.stateSize : META_VIEW_SIZE;
  }

  /**
   * Scores every candidate of `req`: candidate i's adapted score to out[2i], its baseline (the
   * release with both entities cold, which the worker's safeguard mixes in) to out[2i + 1].
   * `slots` are the request's cache slots as the fetch stage left them: the user's at 0, candidate
   * i's at i + 1; a negative slot (store unreadable) or a slot whose count is -1 (not in the store)
   * holds no state.
   */
  score(req: ScoreRequest, cache: StateCache, slots: Int32Array): Float64Array {
    const n = req.candidates.length;
    const events = new Array<LabelledEvent>(n);
    for (let i = 0; i < n; i++) {
      const c = req.candidates[i] as ScoreEntity;
      // What the worker's event would carry; the label and the time only steer learning, not scores.
      events[i] = { eventId: req.requestId ?? '', timeMs: 0, userId: req.user.id, itemId: c.id, label: 0, userFeatures: req.user.features, itemFeatures: c.features };
    }
    const own = this.adapter.stateSize;
    const userSide = this.side === 'user';
    const user = stored(cache, slots[0] ?? -1, userSide ? own : META_VIEW_SIZE);
    const states = new Array<Float32Array>(n);
    const others = this.cross ? new Array<Float32Array | undefined>(n) : undefined;
    const cold: number[] = [];
    for (let i = 0; i < n; i++) {
      const candidate = slots[i + 1] ?? -1;
      const state = userSide ? user : stored(cache, candidate, own);
      if (state === undefined) cold.push(i);
      else states[i] = userSide ? state.slice() : state;
      if (others !== undefined) others[i] = userSide ? stored(cache, candidate, META_VIEW_SIZE) : user;
    }
    if (cold.length > 0) {
      const first = cold.map((i) => events[i] as LabelledEvent);
      const initial = this.adapter.initialStates !== undefined ? this.adapter.initialStates(first) : first.map((e) => this.adapter.initialState(e));
      cold.forEach((i, j) => {
        const st = initial[j];
        if (st === undefined) throw new ThawError('MODEL_ERROR', `serving: ${this.adapter.name} made no initial state for candidate ${i}`);
        states[i] = st;
      });
    }
    const baseline = new Float32Array(n);
    const scores = this.adapter.predictThenAdapt({ events, states, ...(others === undefined ? {} : { others }), baseline });
    const out = new Float64Array(2 * n);
    for (let i = 0; i < n; i++) {
      out[2 * i] = scores[i] ?? NaN;
      out[2 * i + 1] = baseline[i] ?? NaN;
    }
    return out;
  }

  /** Releases what the adapter holds outside the JS heap (its TensorFlow.js tensors). */
  dispose(): void {
    this.adapter.dispose?.();
  }
}

/** A copy of the first `len` floats of the stored state in `slot`, or undefined when it holds none. */
function stored(cache: StateCache, slot: number, len: number): Float32Array | undefined {
  if (slot < 0 || (cache.counts[slot] ?? -1) < 0) return undefined;
  const at = slot * cache.width;
  return cache.views.slice(at, at + len);
}
