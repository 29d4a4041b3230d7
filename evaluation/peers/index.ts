/**
 * The peers of `thaw eval --protocol stream`: learners outside Thaw replayed on the same stream,
 * predict then learn, settings chosen on the history only (see README.md in this folder).
 */
export type { PeerName, PeerRun, PeerSettings, PeerTrial } from './types.js';
export { PEER_NAMES } from './types.js';
export { COUNTS_DEFAULT_GRID, runCountsPeer, type CountsPeerOptions, type CountsPeerRun, type CountsSetting } from './counts-peer.js';
export { runVwPeer, VW_DEFAULT_GRID, VW_DEFAULT_TRIALS, type VwPeerOptions, type VwPeerRun } from './vw-peer.js';
export { vwArgs, type VwOptimizer, type VwSetting } from './vw-runner.js';
export { ensureVwPython, vwVersion } from './python-env.js';
