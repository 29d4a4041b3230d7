/**
 * The `none` adapter: the shared model alone, every entity scored as a cold one (the release's
 * cold-entity vector and bias). It is the baseline every warm-up curve is compared with: same
 * model, same features, no per-entity learning.
 */
import type { LabelledEvent, Side } from '../schemas/types.js';
import type { Adapter, AdapterBatch } from './types.js';
import { encodeEventInto, eventFeatureCount } from '../models/features.js';
import { sigmoid, type FactorizationMachine } from '../models/fm.js';

const EMPTY = new Float32Array(0);

export class NoneAdapter implements Adapter {
  readonly name = 'none';
  readonly stateSize = 0;
  readonly side: Side;
  readonly release: string;
  private readonly model: FactorizationMachine;
  private idx = new Int32Array(64);

  constructor(side: Side, model: FactorizationMachine) {
    this.side = side;
    this.model = model;
    this.release = model.release;
  }

  initialState(_event: LabelledEvent): Float32Array {
    return EMPTY;
  }

  predict(batch: AdapterBatch): Float32Array {
    const out = new Float32Array(batch.events.length);
    const m = this.model;
    for (let j = 0; j < batch.events.length; j++) {
      const ev = batch.events[j]!;
      const count = eventFeatureCount(ev);
      if (count > this.idx.length) this.idx = new Int32Array(count * 2);
      const n = encodeEventInto(ev, m.buckets, this.idx);
      out[j] = sigmoid(m.logit(this.idx, m.entityInit, m.entityBiasInit, n));
    }
    return out;
  }

  /** Nothing to adapt: the same scores as `predict`. */
  predictThenAdapt(batch: AdapterBatch): Float32Array {
    return this.predict(batch);
  }
}
