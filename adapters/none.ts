/**
 * The `none` adapter: the shared model alone, both sides' entities scored as cold ones (each side's
 * prior view of the release). It is the baseline every warm-up curve is compared with: same
 * model, same features, no per-entity learning on either side and no cross-side read.
 */
import type { LabelledEvent, Side } from '../schemas/types.js';
import type { Adapter, AdapterBatch } from './types.js';
import { encodeEventInto, eventFeatureCount, userFeatureCount } from '../models/features.js';
import { sigmoid, type FactorizationMachine } from '../models/fm.js';

const EMPTY = new Float32Array(0);

export class NoneAdapter implements Adapter {
  readonly name = 'none';
  readonly stateSize = 0;
  readonly viewSize = 0;
  readonly hasBaseline = false;
  readonly side: Side;
  readonly release: string;
  private readonly model: FactorizationMachine;
  private readonly coldUser: Float32Array;
  private readonly coldItem: Float32Array;
  private idx = new Int32Array(64);

  constructor(side: Side, model: FactorizationMachine) {
    this.side = side;
    this.model = model;
    this.release = model.release;
    this.coldUser = model.coldView('user');
    this.coldItem = model.coldView('item');
  }

  initialState(_event: LabelledEvent): Float32Array {
    return EMPTY;
  }

  predict(batch: AdapterBatch): Float32Array {
    const out = new Float32Array(batch.events.length);
    const m = this.model;
    batch.events.forEach((ev, j) => {
      const count = eventFeatureCount(ev);
      if (count > this.idx.length) this.idx = new Int32Array(count * 2);
      const n = encodeEventInto(ev, m.buckets, this.idx);
      out[j] = sigmoid(m.logit(this.idx, n, userFeatureCount(ev), this.coldUser, this.coldItem));
    });
    return out;
  }

  /** Nothing to adapt: the same scores as `predict`. */
  predictThenAdapt(batch: AdapterBatch): Float32Array {
    return this.predict(batch);
  }
}
