/** AUC (rank formula, ties get their average rank) and F1 with the threshold at the mean score (as the EmerG code). */
import { at } from '../lib/at.js';
export { auc } from '../lib/metrics.js';

export function f1AtMean(scores: Float32Array | number[], labels: Float32Array | number[]): number {
  let mean = 0;
  for (const s of scores) mean += s;
  mean /= Math.max(1, scores.length);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < scores.length; i++) {
    const p = at(scores, i, 'scores') > mean;
    const y = labels[i] === 1;
    if (p && y) tp++;
    else if (p) fp++;
    else if (y) fn++;
  }
  return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
}

export function meanStd(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length));
  return { mean, std };
}
