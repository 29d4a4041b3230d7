/**
 * The respond stage's conversions alone (serving/json-out.ts against the generic ones):
 *
 *   node --import tsx bench/serving/format.ts [--n 200000]
 *
 * Scores are distinct doubles (as served scores are): V8 keeps a cache of number strings, and a
 * benchmark that prints the same few doubles again measures that cache instead. Prints ns per
 * operation; never asserts.
 */
import { parseArgs } from 'node:util';
import { jsonScore, jsonString } from '../../serving/json-out.js';
import { markdownTable } from '../stats.js';
import { rng } from './workload.js';

/** The best of 5 timed runs after 3 untimed ones, ns per operation. */
function nsPerOp(n: number, run: () => number): number {
  let sink = 0;
  for (let w = 0; w < 3; w++) sink += run();
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    sink += run();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / n);
  }
  if (sink === Number.MIN_VALUE) process.stderr.write('');
  return best;
}

function main(): void {
  const { values } = parseArgs({ options: { n: { type: 'string', default: '200000' } } });
  const n = Number(values.n);
  const rand = rng(3);
  const scores = Float64Array.from({ length: n }, () => 1 / (1 + Math.exp(-(rand() * 6 - 3))));
  const ids = Array.from({ length: 1000 }, () => (rand() < 0.1 ? `n${Math.floor(rand() * 2 ** 40).toString(16)}` : `i${Math.floor(rand() * 100_000)}`));
  // One loop per conversion (a shared loop calling a function argument would measure a polymorphic call).
  const rows: [string, number][] = [
    [
      'score: String(x)',
      nsPerOp(n, () => {
        let len = 0;
        for (let i = 0; i < n; i++) len += String(scores[i]).length;
        return len;
      }),
    ],
    [
      'score: jsonScore(x) (9 decimals)',
      nsPerOp(n, () => {
        let len = 0;
        for (let i = 0; i < n; i++) len += jsonScore(scores[i] ?? 0).length;
        return len;
      }),
    ],
    [
      'id: JSON.stringify(id)',
      nsPerOp(n, () => {
        let len = 0;
        for (let i = 0; i < n; i++) len += JSON.stringify(ids[i % 1000]).length;
        return len;
      }),
    ],
    [
      'id: jsonString(id)',
      nsPerOp(n, () => {
        let len = 0;
        for (let i = 0; i < n; i++) len += jsonString(ids[i % 1000] ?? '').length;
        return len;
      }),
    ],
  ];
  process.stdout.write(
    markdownTable(
      ['conversion', 'ns per operation (best of 5)'],
      rows.map(([name, ns]) => [name, ns.toFixed(0)]),
    ) + '\n',
  );
}

main();
