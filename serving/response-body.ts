/**
 * The respond stage of the scoring pipeline (serving/pipeline.ts): scores a request's pairs with the
 * FM kernel or a meta adapter's scores (serving/adapter-model.ts), mixes in the safeguard of the
 * worker whose predictions are matched (`config.safeguard`: the item's or the user's count and
 * partition), and builds the JSON body as one string (serving/json-out.ts) with each entity's
 * provenance (`fresh`, `cold`, `shared-only`, its age and events), counted per source for /metrics.
 */
import { performance } from 'node:perf_hooks';
import { Safeguard } from '../consumers/safeguard.js';
import { partitionOfKey } from '../streams/producer.js';
import { jsonScore, jsonString } from './json-out.js';
import type { ServingConfig } from './options.js';
import type { ServedRelease } from './release.js';
import type { ScoreRequest } from './request.js';
import { SLOT_SHARED, type StateCache } from './state-cache.js';

/** Where an entity's state came from: its stored state, the release's cold state, the shared parameters alone. */
export type EntitySource = 'fresh' | 'cold' | 'shared-only';

/** A request's scores without a body (ResponseBody.scores). */
export interface ScoredCandidates {
  release: string;
  releaseAgeMs: number;
  userSource: EntitySource;
  /** Each candidate's score, in the request's order. */
  scores: Float64Array;
  sources: EntitySource[];
}

export class ResponseBody {
  private readonly safeguard: Safeguard | undefined;
  private readonly out = new Float64Array(2);
  /** The safeguard state of each partition (undefined: none written yet), set by the fetch stage. */
  safeguardStates: (Float32Array | undefined)[] = [];
  /** Entities answered per source since the metrics last took them: fresh, cold, shared-only. */
  readonly sourceCounts = new Float64Array(3);

  constructor(private readonly config: ServingConfig) {
    this.safeguard = config.safeguard === 'off' ? undefined : new Safeguard();
  }

  /**
   * Scores `req` under `release` with the states `cache` holds at `slots` (the user's at index 0,
   * each candidate's at 1..n: a cache slot, SLOT_COLD or SLOT_SHARED) and builds its JSON body.
   */
  build(req: ScoreRequest, release: ServedRelease, cache: StateCache, slots: Int32Array): string {
    const now = performance.now();
    const scores = this.scoreAll(req, release, cache, slots);
    if (this.releaseOfField !== release) {
      this.releaseOfField = release;
      this.releaseField = ',"release":' + JSON.stringify(release.id) + ',"releaseAgeMs":';
    }
    let body = '{"requestId":' + (req.requestId === undefined ? 'null' : JSON.stringify(req.requestId)) + this.releaseField + Math.max(0, Date.now() - release.createdAtMs);
    body += ',"user":{' + this.provenance(cache, slots[0] ?? SLOT_SHARED, now) + '},"scores":[';
    const cands = req.candidates;
    for (let i = 0; i < cands.length; i++) {
      const c = cands[i] as { id: string };
      body += (i === 0 ? '{"id":' : ',{"id":') + jsonString(c.id) + ',"score":' + jsonScore(scores[i] ?? NaN) + ',' + this.provenance(cache, slots[i + 1] ?? SLOT_SHARED, now) + '}';
    }
    return body + ']}';
  }

  /**
   * Scores `req` as `build` does, without the body: each candidate's score (in the request's order)
   * and provenance, for a caller that ranks them (POST /v1/recommend). Counted per source alike.
   */
  scores(req: ScoreRequest, release: ServedRelease, cache: StateCache, slots: Int32Array): ScoredCandidates {
    const scores = this.scoreAll(req, release, cache, slots).slice();
    const sources: EntitySource[] = [];
    for (let i = 0; i < req.candidates.length; i++) sources.push(this.sourceOf(cache, slots[i + 1] ?? SLOT_SHARED));
    return { release: release.id, releaseAgeMs: Math.max(0, Date.now() - release.createdAtMs), userSource: this.sourceOf(cache, slots[0] ?? SLOT_SHARED), scores, sources };
  }

  /** Scratch of `scoreAll`, grown to the largest request. */
  private scratch = new Float64Array(16);

  /** The score of each candidate (a view of a scratch array, valid until the next call). */
  private scoreAll(req: ScoreRequest, release: ServedRelease, cache: StateCache, slots: Int32Array): Float64Array {
    const width = cache.width;
    const userSlot = slots[0] ?? SLOT_SHARED;
    // An FM release runs the typed-array kernel; a meta adapter's scores all candidates in one call (serving/adapter-model.ts).
    const kernel = release.adapter === undefined ? release.kernel : undefined;
    const adapted = release.adapter?.score(req, cache, slots);
    const warmUser = userSlot >= 0 && (cache.counts[userSlot] ?? -1) >= 0;
    const userViews = warmUser || kernel === undefined ? cache.views : kernel.coldUser;
    const userAt = warmUser ? userSlot * width : 0;
    kernel?.beginUser(req.user.features);
    const sgSide = this.config.safeguard;
    const sg = this.safeguard;
    let userCount = 0;
    let userPartition = 0;
    if (userSlot >= 0) {
      userCount = Math.max(0, cache.counts[userSlot] ?? 0);
      userPartition = cache.partitions[userSlot] ?? 0;
    } else if (sgSide === 'user' && this.config.safeguardPartitions > 1) {
      userPartition = partitionOfKey(req.user.id, this.config.safeguardPartitions);
    }
    const out = this.out;
    const cands = req.candidates;
    if (this.scratch.length < cands.length) this.scratch = new Float64Array(Math.max(cands.length, 2 * this.scratch.length));
    const scores = this.scratch.subarray(0, cands.length);
    for (let i = 0; i < cands.length; i++) {
      const c = cands[i] as { id: string; features: Record<string, string[]> };
      const slot = slots[i + 1] ?? SLOT_SHARED;
      const warm = slot >= 0 && (cache.counts[slot] ?? -1) >= 0;
      if (kernel !== undefined) {
        kernel.score(c.features, userViews, userAt, warm ? cache.views : kernel.coldItem, warm ? slot * width : 0, out);
      } else {
        out[0] = adapted?.[2 * i] ?? NaN;
        out[1] = adapted?.[2 * i + 1] ?? NaN;
      }
      let score = out[0] ?? 0;
      if (sg !== undefined) {
        let count = userCount;
        let partition = userPartition;
        if (sgSide === 'item') {
          count = warm ? (cache.counts[slot] ?? 0) : 0;
          partition = slot >= 0 ? (cache.partitions[slot] ?? 0) : this.config.safeguardPartitions > 1 ? partitionOfKey(c.id, this.config.safeguardPartitions) : 0;
        }
        const state = this.safeguardStates[partition] ?? this.initialSafeguard();
        score = sg.mix(state, count, score, out[1] ?? score);
      }
      scores[i] = score;
    }
    return scores;
  }

  /** `,"release":"<id>","releaseAgeMs":` of the release the last body was built under. */
  private releaseOfField: ServedRelease | undefined;
  private releaseField = '';

  private initialState: Float32Array | undefined;
  private initialSafeguard(): Float32Array {
    this.initialState ??= (this.safeguard ?? new Safeguard()).initialState();
    return this.initialState;
  }

  /** `"source":…,"ageMs":…,"events":…` (the fields, no braces) of an entity's slot; counts it. */
  private provenance(cache: StateCache, slot: number, now: number): string {
    const source = this.sourceOf(cache, slot);
    if (source === 'shared-only') return '"source":"shared-only","ageMs":null,"events":null';
    const age = Math.max(0, Math.round(now - (cache.readAt[slot] ?? now)));
    return source === 'cold' ? '"source":"cold","ageMs":' + age + ',"events":0' : '"source":"fresh","ageMs":' + age + ',"events":' + (cache.counts[slot] ?? 0);
  }

  /** Where an entity's state came from (its slot); counts it. */
  private sourceOf(cache: StateCache, slot: number): EntitySource {
    const t = slot < 0 ? 2 : (cache.counts[slot] ?? -1) < 0 ? 1 : 0;
    this.sourceCounts[t] = (this.sourceCounts[t] ?? 0) + 1;
    return t === 2 ? 'shared-only' : t === 1 ? 'cold' : 'fresh';
  }
}
