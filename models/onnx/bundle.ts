/**
 * A model as release files and back: `weights.bin` (models/weights.ts container), `model.onnx`
 * (exported from the same parameters) and the architecture record that goes into manifest.json.
 *
 * The architecture declares what a running worker must check before switching (see
 * model-store/release-sync.ts): the model `type`, the `stateLayout` of the per-entity state the
 * release is meant for, and `entityStatePolicy`: `keep` (entity states stay valid across the
 * release) or `reinit` (the release changed what states mean: workers start entities afresh).
 */
import { ThawError } from '../../lib/errors.js';
import { packWeights, unpackWeights, type Tensor } from '../weights.js';
import type { CtrModel, FieldLayout } from '../ctr-model.js';
import { DeepFm } from '../deepfm.js';
import { Emerg } from '../emerg.js';
import { FactorizationMachine } from '../fm.js';
import { exportDeepFmOnnx } from './deepfm.js';
import { exportEmergOnnx } from './emerg.js';
import { exportFmOnnx, fmOnnxInputs } from './fm.js';
import { fmStateSize } from '../fm-entity.js';
import { SIDES } from '../../schemas/types.js';
import { exportColdNasOnnx, exportFixedAdaptiveOnnx } from './user-models.js';
import { ColdNas, type ColdNasStructure } from '../coldnas.js';
import { FixedAdaptive } from '../fixed-adaptive.js';
import type { ParamSet } from '../params.js';
import type { EmbeddingTable } from '../embedding-table.js';
import { OPSET } from './graph.js';
import { validateEventLayout, type EventLayout } from '../event-layout.js';
import { checkBiasFilter, coldNasStateSize, emergStateSize, fixedAdaptiveStateSize, type BiasFilterPrior } from '../meta-state.js';
import { at } from '../../lib/at.js';

/**
 * What a release is to the models: its manifest's identity and architecture, and its files.
 * model-store/releases.ts' LoadedRelease is one; models does not import model-store.
 */
export interface ReleaseContent {
  manifest: { model: string; version: string; architecture: unknown };
  files: Record<string, Buffer>;
}

export const WEIGHTS_FILE = 'weights.bin';
export const ONNX_FILE = 'model.onnx';
/** The FM's own serialisation, kept in FM releases for `cli/fm-release.ts` (`thaw run`, `thaw replay`). */
export const FM_LEGACY_FILE = 'fm.bin';

export const RELEASE_KINDS = ['fm', 'deepfm', 'metaemb', 'emerg', 'coldnas', 'fixed-adaptive'] as const;
export type ReleaseKind = (typeof RELEASE_KINDS)[number];
export type EntityStatePolicy = 'keep' | 'reinit';

/** The per-entity state a release is meant to run with. */
export interface StateLayout {
  /** Adapter name (adapters/registry.ts), e.g. `fm-adagrad`. */
  adapter: string;
  /** Floats per entity state. */
  stateSize: number;
}

/** Fields every release architecture has. */
export interface ArchitectureBase {
  type: ReleaseKind;
  /**
   * How streamed events map to the model's fields (models/event-layout.ts). Present on releases
   * trained for the stream; absent on releases of the offline protocol (their vocabulary is the
   * MovieLens one, which a worker cannot rebuild from events).
   */
  eventLayout?: EventLayout;
  stateLayout: StateLayout;
  entityStatePolicy: EntityStatePolicy;
  /**
   * Meta-learned releases: the bias filter's prior per side (models/meta-state.ts), chosen on the
   * history by the trainer; the adapter's own side's sets its entities' bias, the other side's
   * stands for a cold other entity. Absent on releases published before it (UNRECORDED_BIAS_FILTER).
   */
  biasFilter?: BiasFilterPrior;
  onnx: { file: string; opset: number; inputs: string[]; outputs: string[] };
  weights: string;
}

export interface FmArchitecture extends ArchitectureBase {
  type: 'fm';
  k: number;
  buckets: number;
  /** `both` (two-sided: each side's prior in `prior.<side>.*` tensors), or, in older releases, the one side of `entityInit`. */
  side: string;
  /** Rows of the user-feature × item-feature cross table (tensor `c`); absent or 0: no cross term. */
  crossBuckets?: number;
}

export interface CtrArchitecture extends ArchitectureBase {
  type: 'deepfm' | 'metaemb' | 'emerg';
  layout: { fieldNames: string[]; slotField: number[]; itemFields: number[] };
  vocab: number;
  dim: number;
  width: number;
  /** DeepFM MLP hidden sizes. */
  hidden?: number[];
  /** EmerG GNN layers and generator hidden units, and whether rows carry a first-order weight. */
  layers?: number;
  genHidden?: number;
  firstOrder?: boolean;
  /** Searched structure (ColdNAS) or other free-form details, recorded as given. */
  structure?: unknown;
}

/** ColdNAS (with its searched structure) and the fixed/adaptive split (with its declared partition). */
export interface UserArchitecture extends ArchitectureBase {
  type: 'coldnas' | 'fixed-adaptive';
  layout: { fieldNames: string[]; slotField: number[]; itemFields: number[] };
  vocab: number;
  dim: number;
  hidden: number[];
  /** ColdNAS interaction encoding size C. */
  contextDim?: number;
  /** ColdNAS: the searched op per position; fixed-adaptive: the parameter partition. */
  structure: unknown;
}

export type ReleaseArchitecture = FmArchitecture | CtrArchitecture | UserArchitecture;

export interface BundleOptions {
  /**
   * State layout the release is for. @default fm: `{ adapter: 'fm-adagrad', stateSize: 2k+2 }`;
   * emerg: 2 + 2W + 2F² + 2; coldnas: C + 3; fixed-adaptive: D + 3 (models/meta-state.ts); deepfm,
   * metaemb: W (no streaming adapter runs them)
   */
  stateLayout?: StateLayout;
  /** @default 'keep' */
  entityStatePolicy?: EntityStatePolicy;
  /** Recorded as `architecture.eventLayout` (validated). @default none */
  eventLayout?: EventLayout;
  /** Recorded as `architecture.biasFilter` (validated; meta-learned releases). @default none */
  biasFilter?: BiasFilterPrior;
}

function withEventLayout<A extends ArchitectureBase>(a: A, opts: BundleOptions): A {
  const withBias = opts.biasFilter === undefined ? a : { ...a, biasFilter: checkBiasFilter(opts.biasFilter) };
  if (opts.eventLayout === undefined) return withBias;
  validateEventLayout(opts.eventLayout);
  return { ...withBias, eventLayout: opts.eventLayout };
}

export interface Bundle {
  architecture: ReleaseArchitecture;
  files: Record<string, Buffer>;
}

function policyOf(opts: BundleOptions): EntityStatePolicy {
  const p = opts.entityStatePolicy ?? 'keep';
  if (p !== 'keep' && p !== 'reinit') throw new ThawError('USAGE', `entityStatePolicy must be keep or reinit, got ${String(p)}`);
  return p;
}

/** Release files of a factorization machine. */
export function bundleFm(fm: FactorizationMachine, opts: BundleOptions = {}): Bundle {
  const architecture: FmArchitecture = {
    type: 'fm',
    k: fm.k,
    buckets: fm.buckets,
    side: 'both',
    ...(fm.crossBuckets > 0 ? { crossBuckets: fm.crossBuckets } : {}),
    stateLayout: opts.stateLayout ?? { adapter: 'fm-adagrad', stateSize: fmStateSize(fm.k) },
    entityStatePolicy: policyOf(opts),
    onnx: { file: ONNX_FILE, opset: OPSET, inputs: fmOnnxInputs(fm), outputs: ['logit', 'prob'] },
    weights: WEIGHTS_FILE,
  };
  const tensors: Record<string, Tensor> = {
    w0: { data: Float32Array.of(fm.w0), shape: [1] },
    w: { data: fm.w, shape: [fm.buckets] },
    v: { data: fm.v, shape: [fm.buckets, fm.k] },
    ...(fm.crossBuckets > 0 ? { c: { data: fm.c, shape: [fm.crossBuckets] } } : {}),
  };
  for (const side of SIDES) {
    const p = fm.priors[side];
    tensors[`prior.${side}.vector`] = { data: p.vector, shape: [fm.k] };
    tensors[`prior.${side}.bias`] = { data: Float32Array.of(p.bias, p.biasVariance, p.biasDrift, p.sessionDecay, p.sessionVariance), shape: [5] };
  }
  const weights = packWeights(tensors);
  return { architecture, files: { [WEIGHTS_FILE]: weights, [ONNX_FILE]: Buffer.from(exportFmOnnx(fm)), [FM_LEGACY_FILE]: fm.toBuffer() } };
}

function kindOf(model: CtrModel): 'deepfm' | 'metaemb' | 'emerg' {
  if (model instanceof Emerg) return 'emerg';
  return model.generateIdEmb === undefined ? 'deepfm' : 'metaemb';
}

/** Release files of a DeepFM, Meta-Embedding (DeepFM + generator) or EmerG model. */
export function bundleCtr(model: DeepFm | Emerg, opts: BundleOptions & { structure?: unknown } = {}): Bundle {
  const type = kindOf(model);
  const base = {
    type,
    layout: { fieldNames: [...model.layout.fieldNames], slotField: [...model.layout.slotField], itemFields: [...model.layout.itemFields] },
    vocab: model.table.rows,
    dim: model.dim,
    width: model.width,
    stateLayout: opts.stateLayout ?? { adapter: type, stateSize: type === 'emerg' ? emergStateSize(model.width, model.graphSize) : model.width },
    entityStatePolicy: policyOf(opts),
    weights: WEIGHTS_FILE,
  };
  const inputs = ['feat_idx', 'feat_w', 'entity_id', ...(type === 'emerg' ? ['entity_graph'] : [])];
  const outputs = ['logit', 'prob', ...(type === 'emerg' ? ['generated_graph', 'generated_id'] : type === 'metaemb' ? ['generated_id'] : [])];
  const onnx = { file: ONNX_FILE, opset: OPSET, inputs, outputs };
  const architecture: CtrArchitecture =
    model instanceof Emerg
      ? { ...base, onnx, layers: model.layers, genHidden: at(model.dense.get('gen.graph.w1').shape, 2, "model.dense.get('gen.graph.w1').shape"), firstOrder: model.width === model.dim + 1 }
      : { ...base, onnx, hidden: [...model.hidden] };
  if (opts.structure !== undefined) architecture.structure = opts.structure;
  const onnxBytes = model instanceof Emerg ? exportEmergOnnx(model) : exportDeepFmOnnx(model);
  return { architecture: withEventLayout(architecture, opts), files: { [WEIGHTS_FILE]: packWeights(tensorsOf(model)), [ONNX_FILE]: Buffer.from(onnxBytes) } };
}

function tensorsOf(model: { table: EmbeddingTable; dense: ParamSet }): Record<string, Tensor> {
  const tensors: Record<string, Tensor> = { table: { data: model.table.data, shape: [model.table.rows, model.table.dim] } };
  for (const name of model.dense.names()) {
    const p = model.dense.get(name);
    tensors[`dense.${name}`] = { data: p.data, shape: [...p.shape] };
  }
  return tensors;
}

/**
 * Release files of ColdNAS (structure chosen; its user state is the mean of the history encodings,
 * which depend on the shared parameters: default policy `reinit`) or the fixed/adaptive split
 * (adaptive params stay meaningful across a retrain of the trunk only if the caller says so: default `keep`).
 * The fixed/adaptive weights hold the DeepFM backbone (`table`, `dense.*`) and the meta params
 * `meta.fa.init` / `meta.fa.lr` that start and step new users.
 */
export function bundleUser(model: ColdNas | FixedAdaptive, opts: BundleOptions = {}): Bundle {
  const base = (type: 'coldnas' | 'fixed-adaptive', layout: FieldLayout, input: string) => ({
    type,
    layout: { fieldNames: [...layout.fieldNames], slotField: [...layout.slotField], itemFields: [...layout.itemFields] },
    entityStatePolicy: opts.entityStatePolicy === undefined ? (type === 'coldnas' ? 'reinit' : 'keep') : policyOf(opts),
    onnx: { file: ONNX_FILE, opset: OPSET, inputs: ['feat_idx', 'feat_w', input], outputs: ['logit', 'prob'] },
    weights: WEIGHTS_FILE,
  });
  if (model instanceof ColdNas) {
    const architecture: UserArchitecture = {
      ...base('coldnas', model.layout, 'user_state'),
      vocab: model.table.rows,
      dim: model.dim,
      hidden: [...model.hidden],
      contextDim: model.contextDim,
      structure: model.structureJson(),
      // ColdNAS state: [b, s, count, mean (C)].
      stateLayout: opts.stateLayout ?? { adapter: 'coldnas', stateSize: coldNasStateSize(model.contextDim) },
    };
    return { architecture: withEventLayout(architecture, opts), files: { [WEIGHTS_FILE]: packWeights(tensorsOf(model)), [ONNX_FILE]: Buffer.from(exportColdNasOnnx(model)) } };
  }
  const bb = model.backbone;
  const architecture: UserArchitecture = {
    ...base('fixed-adaptive', bb.layout, 'user_adaptive'),
    vocab: bb.table.rows,
    dim: bb.dim,
    hidden: [...bb.hidden],
    structure: model.partitionJson(),
    // Fixed/adaptive state: [b, s, the user's adaptive params (D+1)].
    stateLayout: opts.stateLayout ?? { adapter: 'fixed-adaptive', stateSize: fixedAdaptiveStateSize(model.adaptiveSize) },
  };
  const tensors = tensorsOf(bb);
  for (const name of model.meta.names()) {
    const p = model.meta.get(name);
    tensors[`meta.${name}`] = { data: p.data, shape: [...p.shape] };
  }
  return { architecture: withEventLayout(architecture, opts), files: { [WEIGHTS_FILE]: packWeights(tensors), [ONNX_FILE]: Buffer.from(exportFixedAdaptiveOnnx(model)) } };
}

/** The ColdNAS / fixed-adaptive model of a release. */
export function userModelFromRelease(rel: ReleaseContent): ColdNas | FixedAdaptive {
  const a = architectureOf(rel);
  if (a.type !== 'coldnas' && a.type !== 'fixed-adaptive') throw incompatible(rel, `is a ${a.type} release, not a user model`);
  const layout: FieldLayout = { fieldNames: a.layout.fieldNames, slotField: Int32Array.from(a.layout.slotField), itemFields: a.layout.itemFields };
  const h = a.hidden;
  if (a.type === 'coldnas') {
    const st = a.structure as { positions?: { op?: unknown }[] } | null;
    const ops = st?.positions?.map((x) => x.op);
    if (ops?.length !== 4 || h.length !== 3) throw incompatible(rel, 'ColdNAS architecture lacks its 4-position structure or 3 hidden layers');
    const model = new ColdNas({
      layout,
      vocab: a.vocab,
      dim: a.dim,
      hidden: [at(h, 0, 'h'), at(h, 1, 'h'), at(h, 2, 'h')],
      contextDim: a.contextDim ?? 64,
      structure: { ops } as ColdNasStructure,
      randomTable: false,
    });
    loadTensors(rel, model);
    return model;
  }
  if (!Array.isArray(h) || h.length === 0) throw incompatible(rel, 'fixed-adaptive architecture needs the backbone hidden sizes');
  const model = new FixedAdaptive({ layout, vocab: a.vocab, dim: a.dim, hidden: h, randomTable: false });
  loadTensors(rel, model.backbone);
  const t = weightsOf(rel);
  for (const name of model.meta.names()) {
    const p = model.meta.get(name);
    p.data.set(tensor(rel, t, `meta.${name}`, p.data.length));
  }
  return model;
}

function loadTensors(rel: ReleaseContent, model: { table: EmbeddingTable; dense: ParamSet }): void {
  const t = weightsOf(rel);
  model.table.data.set(tensor(rel, t, 'table', model.table.data.length));
  for (const name of model.dense.names()) {
    const p = model.dense.get(name);
    p.data.set(tensor(rel, t, `dense.${name}`, p.data.length));
  }
}

function incompatible(rel: ReleaseContent, why: string): ThawError {
  return new ThawError('RELEASE_INCOMPATIBLE', `release ${rel.manifest.model}/${rel.manifest.version}: ${why}`);
}

/** The architecture record of a loaded release, checked for the fields every release must declare. */
export function architectureOf(rel: ReleaseContent): ReleaseArchitecture {
  const a = rel.manifest.architecture as Partial<ReleaseArchitecture> | null;
  if (a === null || typeof a !== 'object' || !(RELEASE_KINDS as readonly string[]).includes(String(a.type))) {
    throw incompatible(rel, `unknown model type ${JSON.stringify((a as { type?: unknown } | null)?.type ?? null)}`);
  }
  const sl = a.stateLayout;
  if (sl === undefined || typeof sl.adapter !== 'string' || !Number.isInteger(sl.stateSize) || sl.stateSize < 0) throw incompatible(rel, 'architecture has no valid stateLayout');
  if (a.entityStatePolicy !== 'keep' && a.entityStatePolicy !== 'reinit') throw incompatible(rel, 'architecture has no valid entityStatePolicy');
  if (a.biasFilter !== undefined) {
    try {
      checkBiasFilter(a.biasFilter);
    } catch (err) {
      throw incompatible(rel, (err as Error).message);
    }
  }
  return a as ReleaseArchitecture;
}

function tensor(rel: ReleaseContent, t: Record<string, Tensor>, name: string, length: number): Float32Array {
  const x = t[name];
  if (x === undefined || !(x.data instanceof Float32Array) || x.data.length !== length) throw incompatible(rel, `weights lack float tensor ${name} of ${length} values`);
  return x.data;
}

function weightsOf(rel: ReleaseContent): Record<string, Tensor> {
  const buf = rel.files[WEIGHTS_FILE];
  if (buf === undefined) throw incompatible(rel, `has no ${WEIGHTS_FILE}`);
  return unpackWeights(buf);
}

/** The FM of an `fm` release; its release id becomes `<model>/<version>`. */
export function fmFromRelease(rel: ReleaseContent): FactorizationMachine {
  const a = architectureOf(rel);
  if (a.type !== 'fm') throw incompatible(rel, `is a ${a.type} release, not fm`);
  const t = weightsOf(rel);
  const crossBuckets = a.crossBuckets ?? 0;
  if (!Number.isInteger(crossBuckets) || crossBuckets < 0) throw incompatible(rel, `bad crossBuckets ${String(a.crossBuckets)}`);
  const fm = new FactorizationMachine(a.buckets, a.k, `${rel.manifest.model}/${rel.manifest.version}`, crossBuckets);
  fm.w0 = tensor(rel, t, 'w0', 1)[0] ?? 0;
  if (crossBuckets > 0) fm.c.set(tensor(rel, t, 'c', crossBuckets));
  fm.w.set(tensor(rel, t, 'w', a.buckets));
  fm.v.set(tensor(rel, t, 'v', a.buckets * a.k));
  if (a.side === 'user' || a.side === 'item') {
    // A one-sided release (before two-sided FMs): its side's init; the bias filter's legacy settings.
    const prior = fm.priors[a.side];
    prior.vector.set(tensor(rel, t, 'entityInit', a.k));
    prior.bias = tensor(rel, t, 'entityBiasInit', 1)[0] ?? 0;
    return fm;
  }
  for (const side of SIDES) {
    const prior = fm.priors[side];
    prior.vector.set(tensor(rel, t, `prior.${side}.vector`, a.k));
    const [bias = 0, variance = 0, drift = 0, sessionDecay = 0, sessionVariance = 0] = tensor(rel, t, `prior.${side}.bias`, 5);
    prior.bias = bias;
    prior.biasVariance = variance;
    prior.biasDrift = drift;
    prior.sessionDecay = sessionDecay;
    prior.sessionVariance = sessionVariance;
  }
  return fm;
}

/** The DeepFM / Meta-Embedding / EmerG model of a release. */
export function ctrFromRelease(rel: ReleaseContent): DeepFm | Emerg {
  const a = architectureOf(rel);
  if (a.type !== 'deepfm' && a.type !== 'metaemb' && a.type !== 'emerg') throw incompatible(rel, `is a ${a.type} release, not deepfm/metaemb/emerg`);
  const layout: FieldLayout = { fieldNames: a.layout.fieldNames, slotField: Int32Array.from(a.layout.slotField), itemFields: a.layout.itemFields };
  const model =
    a.type === 'emerg'
      ? new Emerg({ layout, vocab: a.vocab, dim: a.dim, layers: a.layers ?? 3, genHidden: a.genHidden ?? 16, firstOrder: a.firstOrder ?? false, randomTable: false })
      : new DeepFm({ layout, vocab: a.vocab, dim: a.dim, hidden: a.hidden ?? [64, 32], withGenerator: a.type === 'metaemb', randomTable: false });
  loadTensors(rel, model);
  return model;
}
