/**
 * What the online meta-learners over warm-up windows share (trainers/online/emerg-learner.ts,
 * trainers/online/fixed-adaptive-learner.ts): events are buffered and trained a batch at a time,
 * closed warm-up windows become meta-tasks, and the counters and recent loss feed `stats()`.
 * Their Adam moments are not checkpointed (a restart begins them from zero).
 */
import { ConfigError } from '../../lib/errors.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { RecentLoss, type LearnerStats } from './learner.js';
import type { EntityWindows, WindowTask } from './windows.js';

/** An option's value or its default, validated by `ok`; throws ConfigError naming `onlineTrainer.<key>` and the `rule`. */
export function learnerOption(key: string, value: number | undefined, dflt: number, ok: (x: number) => boolean, rule: string): number {
  const x = value ?? dflt;
  if (typeof x !== 'number' || Number.isNaN(x) || !ok(x)) throw new ConfigError(`onlineTrainer.${key}`, `${rule}, got ${String(value)}`);
  return x;
}

export abstract class MetaWindowLearner {
  abstract readonly windows: EntityWindows<LabelledEvent>;
  /** Events trained per step. Count. */
  protected abstract readonly batchSize: number;
  protected buffer: LabelledEvent[] = [];
  protected tasks: WindowTask<LabelledEvent>[] = [];
  protected nEvents = 0;
  protected nTasks = 0;
  protected metaSteps = 0;
  protected readonly loss = new RecentLoss();

  observe(events: readonly LabelledEvent[]): void {
    for (const ev of events) {
      this.buffer.push(ev);
      if (this.buffer.length >= this.batchSize) this.trainBuffered();
    }
  }

  flush(): void {
    if (this.buffer.length > 0) this.trainBuffered();
    if (this.tasks.length > 0) this.metaStep();
  }

  stats(): LearnerStats {
    return {
      events: this.nEvents,
      metaTasks: this.nTasks,
      metaSteps: this.metaSteps,
      openWindows: this.windows.openCount,
      trackedEntities: this.trackedEntities(),
      recentLogloss: this.loss.value(),
    };
  }

  optimizerState(): Map<string, Float32Array> {
    return new Map();
  }

  restoreOptimizerState(_state: Map<string, Float32Array>): void {
    // Adam moments restart from zero after a restart (bias correction keeps the first steps sane).
  }

  /** Entities whose adaptive parameters the learner holds now. */
  protected abstract trackedEntities(): number;
  /** Trains the buffered events (and empties the buffer). */
  protected abstract trainBuffered(): void;
  /** One meta step on the pending tasks. */
  protected abstract metaStep(): void;
}
