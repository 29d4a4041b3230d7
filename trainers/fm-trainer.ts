/**
 * Offline training of the shared FM from the hot entities of a stream prefix.
 *
 * The shared FM is trained JOINTLY with a vector e and bias b per hot entity of the adapted side,
 * exactly the extra feature adapters learn online. So the shared part learns to work with an entity
 * vector next to it (what features explain goes into the shared table; what is entity-specific
 * goes into e, b). The per-entity vectors are thrown away afterwards; only the shared part, plus
 * the cold-entity init (the mean trained e and b), is the release.
 *
 * `entityDropout` trains a share of events with the entity feature replaced by the cold init, so the
 * shared part alone also predicts well: that is what a brand-new entity gets before it adapts.
 */
import type { LabelledEvent, Side } from '../schemas/types.js';
import { ConfigError } from '../lib/errors.js';
import { encodeEventInto, eventFeatureCount } from '../models/features.js';
import { FactorizationMachine, mulberry32, sigmoid } from '../models/fm.js';
import { auc } from '../lib/metrics.js';
import { checkHistory, DEFAULT_MIN_EVENTS } from './history.js';

/** Metrics of one training epoch (progressive: each event scored before its update). */
export interface EpochReport {
  /** 1-based epoch number. */
  epoch: number;
  /** Events trained on in the epoch. */
  events: number;
  /** Mean log loss (nats). */
  logloss: number;
  /** AUC of the progressive predictions. */
  auc: number;
  /** Wall time of the epoch, ms. */
  ms: number;
}

/** Options of `trainFm`. */
export interface FmTrainerOptions {
  /** Side whose entities get a per-entity vector (the side adapters will adapt). @default 'item' */
  side?: Side;
  /** Hashed feature table rows. @default 262144 */
  buckets?: number;
  /** Latent dimension. @default 8 */
  k?: number;
  /** Passes over the training events. @default 3 */
  epochs?: number;
  /** Adagrad learning rate of shared and entity parameters. @default 0.05 */
  learningRate?: number;
  /** L2 on shared rows touched by an event, per event. @default 0.00001 */
  l2?: number;
  /** L2 on entity vectors and biases, per event. @default 0.001 */
  entityL2?: number;
  /** Share of events trained with the entity feature dropped (cold init instead), 0..1. @default 0.3 */
  entityDropout?: number;
  /** An entity is hot (trained on) with at least this many events in the prefix (`--min-events`). @default DEFAULT_MIN_EVENTS.fm (20) */
  minCount?: number;
  /** Events read from the source (the prefix); the rest is left unread. @default Infinity */
  maxEvents?: number;
  /** Seed of init and shuffling. @default 1 */
  seed?: number;
  /** Std of the init of v. @default 0.01 */
  initStd?: number;
  /** Release id of the trained model. @default `fm-<side>-<seed>` */
  release?: string;
  /** Called after each epoch. */
  onEpoch?: (report: EpochReport) => void;
}

export interface FmTrainResult {
  model: FactorizationMachine;
  epochs: EpochReport[];
  /** Events read from the source. */
  prefixEvents: number;
  /** Events of hot entities (trained on). */
  trainEvents: number;
  /** Hot entities of the adapted side. */
  hotEntities: number;
}

export { auc };

function num(key: string, v: number | undefined, dflt: number, ok: (x: number) => boolean, rule: string): number {
  const x = v ?? dflt;
  if (typeof x !== 'number' || Number.isNaN(x) || !ok(x)) throw new ConfigError(`fmTrainer.${key}`, `${rule}, got ${String(v)}`);
  return x;
}

/** Growable Int32Array (the encoded prefix). */
class IntBuf {
  a = new Int32Array(1 << 16);
  n = 0;
  reserve(extra: number): void {
    if (this.n + extra <= this.a.length) return;
    let cap = this.a.length * 2;
    while (cap < this.n + extra) cap *= 2;
    const b = new Int32Array(cap);
    b.set(this.a.subarray(0, this.n));
    this.a = b;
  }
  push(x: number): void {
    this.reserve(1);
    this.a[this.n++] = x;
  }
}

/**
 * Trains the shared FM on the events of entities hot in the prefix (see the file comment). Throws
 * ThawError('HISTORY_TOO_THIN') before training when the prefix is too thin (trainers/history.ts).
 */
export async function trainFm(source: Iterable<LabelledEvent> | AsyncIterable<LabelledEvent>, opts: FmTrainerOptions = {}): Promise<FmTrainResult> {
  const side = opts.side ?? 'item';
  if (side !== 'user' && side !== 'item') throw new ConfigError('fmTrainer.side', `must be 'user' or 'item', got ${String(side)}`);
  const buckets = num('buckets', opts.buckets, 2 ** 18, (x) => Number.isInteger(x) && x >= 1, 'must be an integer >= 1');
  const k = num('k', opts.k, 8, (x) => Number.isInteger(x) && x >= 1 && x <= 256, 'must be an integer in [1, 256]');
  const epochs = num('epochs', opts.epochs, 3, (x) => Number.isInteger(x) && x >= 1, 'must be an integer >= 1');
  const lr = num('learningRate', opts.learningRate, 0.05, (x) => x > 0 && Number.isFinite(x), 'must be > 0');
  const l2 = num('l2', opts.l2, 1e-5, (x) => x >= 0 && Number.isFinite(x), 'must be >= 0');
  const el2 = num('entityL2', opts.entityL2, 1e-3, (x) => x >= 0 && Number.isFinite(x), 'must be >= 0');
  const dropout = num('entityDropout', opts.entityDropout, 0.3, (x) => x >= 0 && x <= 1, 'must be in [0, 1]');
  const minCount = num('minCount', opts.minCount, DEFAULT_MIN_EVENTS.fm, (x) => Number.isInteger(x) && x >= 1, 'must be an integer >= 1');
  const maxEvents = num('maxEvents', opts.maxEvents, Infinity, (x) => x >= 0, 'must be >= 0');
  const seed = num('seed', opts.seed, 1, Number.isInteger, 'must be an integer');

  // 1. Read and encode the prefix: per event its feature rows, label and entity.
  const rows = new IntBuf();
  const starts = new IntBuf();
  const entityOf = new IntBuf();
  const labels = new IntBuf();
  const entityIndex = new Map<string, number>();
  const counts: number[] = [];
  let scratch = new Int32Array(64);
  let prefixEvents = 0;
  // Stop right after the prefix's last event, so nothing past it is pulled from a live source.
  for await (const ev of maxEvents > 0 ? source : []) {
    prefixEvents++;
    const id = side === 'user' ? ev.userId : ev.itemId;
    let e = entityIndex.get(id);
    if (e === undefined) {
      e = counts.length;
      entityIndex.set(id, e);
      counts.push(0);
    }
    counts[e]!++;
    const c = eventFeatureCount(ev);
    if (c > scratch.length) scratch = new Int32Array(c * 2);
    const n = encodeEventInto(ev, buckets, scratch);
    starts.push(rows.n);
    rows.reserve(n);
    rows.a.set(scratch.subarray(0, n), rows.n);
    rows.n += n;
    entityOf.push(e);
    labels.push(ev.label);
    if (prefixEvents >= maxEvents) break;
  }
  starts.push(rows.n);

  // 2. Hot entities and their events.
  const hotSlot = new Int32Array(counts.length).fill(-1);
  let hot = 0;
  for (let e = 0; e < counts.length; e++) if (counts[e]! >= minCount) hotSlot[e] = hot++;
  const train: number[] = [];
  for (let j = 0; j < prefixEvents; j++) if (hotSlot[entityOf.a[j]!]! >= 0) train.push(j);
  checkHistory({ side, minEvents: minCount, historyEvents: prefixEvents, entities: hot, rows: train.length });

  // 3. Joint Adagrad on shared and per-entity parameters.
  const model = FactorizationMachine.create({ buckets, k, seed, side, initStd: opts.initStd ?? 0.01, release: opts.release ?? `fm-${side}-${seed}` });
  const G0 = 1e-2; // Initial Adagrad accumulator: keeps the first steps finite and moderate.
  const gw = new Float32Array(buckets).fill(G0);
  const gv = new Float32Array(buckets * k).fill(G0);
  let gw0 = G0;
  const E = new Float32Array(hot * k);
  const B = new Float32Array(hot);
  const gE = new Float32Array(hot * k).fill(G0);
  const gB = new Float32Array(hot).fill(G0);
  const rand = mulberry32((seed ^ 0x2545f491) >>> 0);
  for (let i = 0; i < E.length; i++) E[i] = (opts.initStd ?? 0.01) * (rand() * 2 - 1);
  const s = new Float32Array(k);
  const eScratch = new Float32Array(k);
  const order = Int32Array.from(train);
  const preds = new Float32Array(order.length);
  const predLabels = new Uint8Array(order.length);
  const reports: EpochReport[] = [];
  const { w, v } = model;

  for (let epoch = 1; epoch <= epochs; epoch++) {
    const t0 = performance.now();
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    let loss = 0;
    for (let q = 0; q < order.length; q++) {
      const j = order[q]!;
      const from = starts.a[j]!;
      const n = starts.a[j + 1]! - from;
      const idx = rows.a.subarray(from, from + n);
      const slot = hotSlot[entityOf.a[j]!]!;
      const y = labels.a[j]!;
      const drop = dropout > 0 && rand() < dropout;
      // Dropped events see the zero entity (the cold init is the mean, close to zero by L2).
      if (drop) eScratch.fill(0);
      else eScratch.set(E.subarray(slot * k, slot * k + k));
      const b = drop ? 0 : B[slot]!;
      const z = model.logit(idx, eScratch, b, n, s);
      const p = sigmoid(z);
      preds[q] = p;
      predLabels[q] = y;
      loss -= y === 1 ? Math.log(Math.max(p, 1e-12)) : Math.log(Math.max(1 - p, 1e-12));
      const g = p - y;
      gw0 += g * g;
      model.w0 -= (lr * g) / Math.sqrt(gw0);
      for (let r = 0; r < n; r++) {
        const row = idx[r]!;
        const gwr = g + l2 * w[row]!;
        gw[row]! += gwr * gwr;
        w[row]! -= (lr * gwr) / Math.sqrt(gw[row]!);
        const base = row * k;
        for (let f = 0; f < k; f++) {
          const vf = v[base + f]!;
          const gvf = g * (s[f]! - vf + eScratch[f]!) + l2 * vf;
          gv[base + f]! += gvf * gvf;
          v[base + f] = vf - (lr * gvf) / Math.sqrt(gv[base + f]!);
        }
      }
      if (!drop) {
        for (let f = 0; f < k; f++) {
          const at = slot * k + f;
          const ge = g * s[f]! + el2 * E[at]!;
          gE[at]! += ge * ge;
          E[at]! -= (lr * ge) / Math.sqrt(gE[at]!);
        }
        const gb = g + el2 * B[slot]!;
        gB[slot]! += gb * gb;
        B[slot]! -= (lr * gb) / Math.sqrt(gB[slot]!);
      }
    }
    const report: EpochReport = {
      epoch,
      events: order.length,
      logloss: order.length > 0 ? loss / order.length : NaN,
      auc: auc(preds, predLabels),
      ms: performance.now() - t0,
    };
    reports.push(report);
    opts.onEpoch?.(report);
  }

  // 4. Cold-entity init: the mean trained entity.
  if (hot > 0) {
    for (let e = 0; e < hot; e++) {
      for (let f = 0; f < k; f++) model.entityInit[f]! += E[e * k + f]! / hot;
      model.entityBiasInit += B[e]! / hot;
    }
  }
  return { model, epochs: reports, prefixEvents, trainEvents: order.length, hotEntities: hot };
}
