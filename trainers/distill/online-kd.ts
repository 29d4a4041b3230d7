/**
 * Online distillation, the baseline EDL-Dist is measured against (bench/distill): the teacher's
 * forward pass runs inside the student's training loop, in the student's process. Hooks for the
 * online trainer (trainers/online-trainer.ts) that score each chunk with the teacher just before the
 * student trains on it, and hand the student each event's teacher logit: the same teacher
 * (trainers/distill/teacher.ts) and the same student (the fm learner with the distillation loss) as
 * `thaw distill teach` + `thaw distill learn`, without Kafka between them.
 */
import type { LabelledEvent } from '../../schemas/types.js';
import type { TeacherScorer } from './teacher.js';

/** What the online trainer takes for in-loop distillation. */
export interface OnlineKdHooks {
  /** Scores the chunk with the teacher (the trainer awaits it before training the chunk). */
  beforeObserve: (events: readonly LabelledEvent[]) => Promise<void>;
  /** The event's teacher logit, scored by the chunk's `beforeObserve`. */
  logitOf: (ev: LabelledEvent) => number | undefined;
}

export function onlineKdHooks(teacher: TeacherScorer): OnlineKdHooks {
  let scored = new Map<string, number>();
  return {
    beforeObserve: (events) => {
      const logits = teacher.logits(events);
      scored = new Map(events.map((e, i) => [e.eventId, logits[i] ?? 0]));
      return Promise.resolve();
    },
    logitOf: (ev) => scored.get(ev.eventId),
  };
}
