/**
 * The stop condition of a worker run with `untilEnd` (`thaw run --until-end`, for backfills and
 * evaluations): the end offset of every partition is snapshotted when the worker starts, and once
 * the group's committed offsets have reached that snapshot on every partition the worker drains as
 * on SIGTERM (the batch in flight finishes and is committed, the sink is flushed) and stops.
 *
 * Committed offsets, not events handled by this process, decide: the batch consumer commits a chunk
 * only after it is durable, so "committed up to the end" means every event before the end is
 * processed and durable, whichever member of the group handled it. Records produced after the
 * snapshot are left for the next run.
 */
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';

/** What the stop condition needs of the topic and the group: streams' TopicEndWatch, a fake in unit tests. */
export interface EndOfTopicProbe {
  /** Records the end offset of every partition; called once, when the worker starts. */
  snapshot(): Promise<unknown>;
  /** Records of the snapshot the group has not committed yet (0: the end is reached). */
  remaining(): Promise<number>;
}

export interface UntilEndOptions {
  probe: EndOfTopicProbe;
  /** Time between two checks of the committed offsets, ms. */
  pollMs: number;
  logger: Logger;
  /** Called once, when the end is reached (not when it already was at `atEndOnStart`). */
  onEnd: () => void;
}

/** Default time between two checks of the group's committed offsets against the snapshot, ms. */
export const DEFAULT_UNTIL_END_POLL_MS = 1000;

export class UntilEnd {
  private stopped = false;
  private wake: (() => void) | undefined;

  constructor(private readonly opts: UntilEndOptions) {}

  /**
   * Snapshots the end offsets; true when nothing of them is left to commit (an empty topic, or a
   * group already at its end): the worker then stops without joining the group.
   */
  async atEndOnStart(): Promise<boolean> {
    await this.opts.probe.snapshot();
    return (await this.opts.probe.remaining()) === 0;
  }

  /**
   * Checks every pollMs until the end is reached (then calls onEnd) or stop() is called; the promise
   * settles when the checks have ended (it never rejects).
   */
  watch(): Promise<void> {
    return this.loop();
  }

  /** Ends the checks (the worker is stopping for another reason, or has stopped). */
  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  private async loop(): Promise<void> {
    const { probe, pollMs, logger } = this.opts;
    while (!this.stopped) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pollMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
      if (this.stopped) return;
      let left: number;
      try {
        left = await probe.remaining();
      } catch (err) {
        // A broker hiccup delays the stop, it does not end the run: check again next time.
        logger.warn('end-of-topic check failed; checking again', { error: errorMessage(err) });
        continue;
      }
      if (this.stopped) return;
      if (left === 0) {
        this.stopped = true;
        logger.info('topic end reached: every partition committed up to its end offset at start; draining');
        this.opts.onEnd();
        return;
      }
      logger.debug('until-end: records left', { remaining: left });
    }
  }
}
