/**
 * The teacher of EDL-Dist (thaw distill): a DeepFM release trained on the history by
 * `thaw train deepfm --source ...` (or a Meta-Embedding release, `thaw train metaemb --source ...`,
 * the same DeepFM with a generator of new items' ID embeddings), loaded to score labelled events.
 *
 * A teacher scores every event as the release knows it, with no per-entity state: field 0 (the
 * item ID, an entity parameter in the model family, models/ctr-model.ts) is the generated embedding
 * when the release has a generator and zero otherwise; the user ID and every feature field come
 * from the release's hashed table (architecture.eventLayout). So the score of an event depends on
 * the release and the event alone: a partition re-scored after a crash gets the same soft labels.
 *
 * Releases are followed by the adaptation workers' watcher (model-store/release-sync.ts): the
 * pointer of the release directory, polled and announced, swapped between batches.
 */
import * as tf from '@tensorflow/tfjs';
import { ThawError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { ReleaseWatcherOptions } from '../../model-store/release-sync.js';
import { ReleaseWatcher } from '../../model-store/release-sync.js';
import type { LoadedRelease, ReleaseStore } from '../../model-store/releases.js';
import type { CtrModel, ForwardInputs } from '../../models/ctr-model.js';
import { EventEncoder } from '../../models/event-layout.js';
import { architectureOf, ctrFromRelease } from '../../models/onnx/bundle.js';
import type { LabelledEvent } from '../../schemas/types.js';

/** Release types a teacher can be. */
export const TEACHER_TYPES = ['deepfm', 'metaemb', 'emerg'] as const;

/** The state layout teacher watchers declare: a teacher keeps no per-entity state. */
const TEACHER_LAYOUT = { adapter: 'teacher', stateSize: 0 } as const;

/** Scores labelled events with one teacher release. */
export class TeacherScorer {
  /** `<model>/<version>` of the release. */
  readonly release: string;
  private readonly model: CtrModel;
  private readonly encoder: EventEncoder;

  constructor(release: string, model: CtrModel, encoder: EventEncoder) {
    this.release = release;
    this.model = model;
    this.encoder = encoder;
  }

  /** Teacher logits of `events`, in order; rows of at most `chunk` events per forward pass. */
  logits(events: readonly LabelledEvent[], chunk = 2048): Float32Array {
    const out = new Float32Array(events.length);
    const m = this.model;
    for (let from = 0; from < events.length; from += chunk) {
      const part = events.slice(from, from + chunk);
      const b = this.encoder.encode(part);
      const z = tf.tidy(() => {
        const p = m.dense.tensors();
        const pooled = m.pooledOf(b);
        const id = m.generateIdEmb !== undefined ? m.generateIdEmb(p, pooled) : tf.zeros([b.n, m.width]);
        const x: ForwardInputs = { pooled, id: id as tf.Tensor2D };
        if (m.graphSize > 0) {
          // EmerG: each event's generated graph (no per-item state either).
          x.graph = m.generateGraph !== undefined ? m.generateGraph(p, pooled) : tf.zeros<tf.Rank.R3>([b.n, m.numFields, m.numFields]);
        }
        return m.head(p, x);
      });
      out.set(z.dataSync(), from);
      z.dispose();
    }
    return out;
  }

  /** Frees the model's tensors (none are held outside tidy scopes; kept for symmetry with adapters). */
  dispose(): void {
    // The model's parameters live in typed arrays (ParamSet): nothing to release.
  }
}

/** The teacher of a verified release; RELEASE_INCOMPATIBLE when it is not a stream CTR release. */
export function teacherFromRelease(rel: LoadedRelease): TeacherScorer {
  const a = architectureOf(rel);
  const id = `${rel.manifest.model}/${rel.manifest.version}`;
  if (!(TEACHER_TYPES as readonly string[]).includes(a.type)) {
    throw new ThawError('RELEASE_INCOMPATIBLE', `release ${id} is a ${a.type} release; a teacher is one of ${TEACHER_TYPES.join(', ')} (thaw train deepfm --source ...)`);
  }
  if (a.eventLayout === undefined) {
    throw new ThawError('RELEASE_INCOMPATIBLE', `release ${id} has no architecture.eventLayout (trained for the offline protocol): train the teacher with thaw train deepfm --source ...`);
  }
  return new TeacherScorer(id, ctrFromRelease(rel), new EventEncoder(a.eventLayout));
}

export interface TeacherWatcherOptions {
  store: ReleaseStore;
  /** Model name of the teacher in the release directory. */
  model: string;
  /** Interval between polls of the release directory, milliseconds. @default 60_000 */
  pollIntervalMs?: number;
  /** Kafka release announcements (topic default thaw.releases). @default none (poll only) */
  kafka?: ReleaseWatcherOptions<TeacherScorer>['kafka'];
  logger?: Logger;
}

/**
 * A ReleaseWatcher of teachers over the releases of `opts.model` (not started): the same pointer,
 * polling, announcements and between-batch swap as the adaptation workers' (consumers/release-adapter.ts).
 */
export function createTeacherWatcher(opts: TeacherWatcherOptions): ReleaseWatcher<TeacherScorer> {
  return new ReleaseWatcher<TeacherScorer>({
    store: opts.store,
    model: opts.model,
    expect: { stateLayout: { ...TEACHER_LAYOUT } },
    build: (rel) => teacherFromRelease(rel),
    // Checked on what the teacher runs, not on the release's declared state layout (an adapter's).
    layoutOf: () => ({ ...TEACHER_LAYOUT }),
    discard: (t) => t.dispose(),
    ...(opts.pollIntervalMs === undefined ? {} : { pollIntervalMs: opts.pollIntervalMs }),
    ...(opts.kafka === undefined ? {} : { kafka: opts.kafka }),
    ...(opts.logger === undefined ? {} : { logger: opts.logger }),
  });
}
