/**
 * Quality half of the distill bench: prequential AUC on the MovieLens-100K stream window (events in
 * time order; the first `history` events trained the teacher and the student's base release, the
 * next `window` are scored) of the teacher (stateless DeepFM, trainers/distill/teacher.ts), the
 * student with distillation (the fm learner on α·BCE + (1−α)·T²·KL) and without (hard labels). The
 * student's score is its prediction before it learns the event: the shared FM with the replicas of
 * the event's user and item, as a worker running the student's releases would score it (replicas
 * warmed on the history first). Buckets: the item's prior events in the stream (history included).
 */
import { bucketOf, CURVE_BUCKETS, EARLY_BUCKET, type CurveBucket } from '../../analytics/types.js';
import { auc } from '../../lib/metrics.js';
import type { ReleaseStore } from '../../model-store/releases.js';
import { fmFromRelease } from '../../models/onnx/bundle.js';
import type { LabelledEvent } from '../../schemas/types.js';
import type { DistillLossOptions } from '../../trainers/distill/loss.js';
import { teacherFromRelease } from '../../trainers/distill/teacher.js';
import { FmOnlineLearner } from '../../trainers/online/fm-learner.js';

export type AucByBucket = Partial<Record<CurveBucket | 'all', { auc: number; n: number }>>;

export interface QualityResult {
  teacher: AucByBucket;
  studentKd: AucByBucket;
  studentNoKd: AucByBucket;
}

function byBucket(window: readonly LabelledEvent[], priors: readonly number[], scores: Float64Array): AucByBucket {
  const groups = new Map<CurveBucket | 'all', { s: number[]; y: number[] }>();
  const put = (b: CurveBucket | 'all', s: number, y: number): void => {
    let g = groups.get(b);
    if (g === undefined) groups.set(b, (g = { s: [], y: [] }));
    g.s.push(s);
    g.y.push(y);
  };
  window.forEach((e, i) => {
    const prior = priors[i] ?? 0;
    const s = scores[i] ?? 0;
    put('all', s, e.label);
    put(bucketOf(prior), s, e.label);
    if (prior >= 1 && prior <= 5) put(EARLY_BUCKET, s, e.label);
  });
  const out: AucByBucket = {};
  for (const b of ['all', ...CURVE_BUCKETS] as const) {
    const g = groups.get(b);
    if (g !== undefined) out[b] = { auc: auc(g.s, g.y), n: g.s.length };
  }
  return out;
}

/** Scores the window with the teacher and both students; `history` warms the students' replicas. */
export async function distillQuality(
  store: ReleaseStore,
  teacherModel: string,
  studentModel: string,
  history: readonly LabelledEvent[],
  window: readonly LabelledEvent[],
  loss: DistillLossOptions,
): Promise<QualityResult> {
  const teacherVersion = await store.current(teacherModel);
  const studentVersion = await store.current(studentModel);
  if (teacherVersion === undefined || studentVersion === undefined) throw new Error('teacher and student releases are needed');
  const teacher = teacherFromRelease(await store.load(teacherModel, teacherVersion));
  const logits = teacher.logits(window);
  const logitOf = new Map(window.map((e, i) => [e.eventId, logits[i] ?? 0]));
  const counts = new Map<string, number>();
  for (const e of history) counts.set(e.itemId, (counts.get(e.itemId) ?? 0) + 1);
  const priors = window.map((e) => {
    const c = counts.get(e.itemId) ?? 0;
    counts.set(e.itemId, c + 1);
    return c;
  });
  const studentRel = await store.load(studentModel, studentVersion);
  const student = (kd: boolean): Float64Array => {
    const scores = new Float64Array(window.length);
    const index = new Map(window.map((e, i) => [e.eventId, i]));
    const learner = new FmOnlineLearner(fmFromRelease(studentRel), {
      ...(kd ? { teacher: { logitOf: (ev: LabelledEvent) => logitOf.get(ev.eventId), loss } } : {}),
      onPrediction: (ev, p) => {
        const i = index.get(ev.eventId);
        if (i !== undefined) scores[i] = p;
      },
    });
    learner.warm(history);
    learner.observe(window);
    return scores;
  };
  return {
    teacher: byBucket(window, priors, Float64Array.from(logits)),
    studentKd: byBucket(window, priors, student(true)),
    studentNoKd: byBucket(window, priors, student(false)),
  };
}
