/**
 * What a peer of `thaw eval --protocol stream` returns. A peer replays the same labelled stream as
 * Thaw's adapters, predict then learn; its settings are chosen on the history (events [0, historyN))
 * only, then one prequential pass over the whole stream with the chosen settings gives the scores.
 */

/** Peer names, as the command's `--peer` list spells them. */
export const PEER_NAMES = ['vw', 'counts'] as const;
export type PeerName = (typeof PEER_NAMES)[number];

/** One setting of a peer, e.g. { optimizer: 'pistol', ftrlAlpha: 1, ftrlBeta: 0.5 } or { priorStrength: 5, learningRate: 0.05 }. */
export type PeerSettings = Record<string, string | number>;

/** One setting tried on the history and its criterion: progressive AUC over [0, historyN), log loss to break ties. */
export interface PeerTrial {
  settings: PeerSettings;
  /** Mann-Whitney AUC of the history's prequential scores; NaN when the history has one class only. */
  auc: number;
  /** Mean log loss (nats) of the history's prequential scores, probabilities clipped to [1e-7, 1 - 1e-7]. */
  logLoss: number;
}

/** A peer's prequential scores over the whole stream (index = stream position), and what it chose on the history. */
export interface PeerRun {
  name: PeerName;
  /** Score of event j, computed before the peer learned event j. Length = events.length. */
  scores: Float64Array;
  /** The settings chosen on the history. */
  chosen: PeerSettings;
  /** Every setting tried on the history and its criterion value, in the order tried. */
  trials: PeerTrial[];
  /** Wall time of the whole run (selection and final pass), ms. */
  ms: number;
}
