/**
 * Writes a recorded load (serving/load-recording.ts) from the bench's workload generator: arrivals
 * at `rate` per second with exponential gaps (as the open-loop generator sends them), bodies from
 * bench/serving/workload.ts with the workload's seed. `thaw serve tune --load FILE` replays it.
 *
 *   node --import tsx bench/serving/record.ts --out load.jsonl [--seed 1] [--rate 2000] [--seconds 5]
 *        [--deadline-ms 50] [--users 200000] [--items 100000] [--candidates 100] [--unseen 0.1] [--zipf 0.9]
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { formatLoad } from '../../serving/load-recording.js';
import { positiveOption } from '../stats.js';
import { requestBodies, rng, type Workload } from './workload.js';

/** The text of a recording of `seconds` of the workload at `rate`/s (distinct bodies cycled: at most 4,096). */
export function recordWorkload(w: Workload, rate: number, seconds: number, deadlineMs: number): string {
  const rand = rng(w.seed + 17);
  const times: number[] = [];
  for (let t = 0; t < seconds * 1000; t += (-Math.log(1 - rand()) * 1000) / rate) times.push(t);
  const bodies = requestBodies(w, Math.min(times.length, 4096)).map((b) => JSON.parse(b.toString('utf8')) as unknown);
  return formatLoad(
    deadlineMs,
    times.map((t, i) => ({ t, body: bodies[i % bodies.length] })),
    `bench workload seed ${w.seed}, ${rate}/s for ${seconds} s`,
  );
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      seed: { type: 'string', default: '1' },
      rate: { type: 'string', default: '2000' },
      seconds: { type: 'string', default: '5' },
      'deadline-ms': { type: 'string', default: '50' },
      users: { type: 'string', default: '200000' },
      items: { type: 'string', default: '100000' },
      candidates: { type: 'string', default: '100' },
      unseen: { type: 'string', default: '0.1' },
      zipf: { type: 'string', default: '0.9' },
    },
  });
  if (values.out === undefined) throw new Error('--out FILE is required');
  const w: Workload = {
    users: positiveOption('users', values.users),
    items: positiveOption('items', values.items),
    candidates: positiveOption('candidates', values.candidates),
    unseen: Number(values.unseen),
    zipf: positiveOption('zipf', values.zipf, false),
    seed: positiveOption('seed', values.seed),
  };
  await writeFile(
    values.out,
    recordWorkload(w, positiveOption('rate', values.rate, false), positiveOption('seconds', values.seconds, false), positiveOption('deadline-ms', values['deadline-ms'], false)),
  );
}
