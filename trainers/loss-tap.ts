/**
 * A Logger wrapper that records the per-epoch losses the trainers log ("epoch done" with a `loss`
 * field) while passing every record on. The trainers report their losses only through the log, so
 * this is how a caller learns the loss curve without a change to each trainer.
 */
import type { Logger } from '../lib/log.js';

export interface EpochLoss {
  /** Stage as the trainer names it (`base`, `meta`, `search`, `retrain`). */
  stage: string;
  /** 1-based epoch within the stage. */
  epoch: number;
  /** Mean training loss of the epoch (BCE, or the trainer's meta loss). */
  loss: number;
}

/**
 * Wraps `inner`; epochs of meta-trainer.ts (no `stage` field) count as `base` up to `baseEpochs`
 * and `meta` after, as that trainer numbers them.
 */
export function lossTap(inner: Logger, baseEpochs: number): { logger: Logger; losses: EpochLoss[] } {
  const losses: EpochLoss[] = [];
  const wrap = (l: Logger, bound: Record<string, unknown>): Logger => ({
    debug: (m, f) => l.debug(m, f),
    info: (m, f) => {
      if (m === 'epoch done' && typeof f?.loss === 'number' && typeof f.epoch === 'number') {
        const all = { ...bound, ...f };
        let stage = typeof all.stage === 'string' ? all.stage : undefined;
        let epoch = f.epoch;
        if (stage === undefined) {
          stage = epoch <= baseEpochs ? 'base' : 'meta';
          if (stage === 'meta') epoch -= baseEpochs;
        }
        losses.push({ stage, epoch, loss: f.loss });
      }
      l.info(m, f);
    },
    warn: (m, f) => l.warn(m, f),
    error: (m, f) => l.error(m, f),
    child: (fields) => wrap(l.child(fields), { ...bound, ...fields }),
  });
  return { logger: wrap(inner, {}), losses };
}
