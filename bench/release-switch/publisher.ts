/**
 * The trainer's side of the release-switch bench, in its own process (as `thaw train --online` is),
 * so that publishing (bundling, writing, hashing ~28 MB for an FM) never runs on the worker's event
 * loop. Publishes `--count` releases of `--model` and as many of `<model>-sham` up front (not
 * promoted; parent = the previous), prints `{"ready":true}`, then for each line `promote` (or `sham`)
 * on stdin promotes the next release of `--model` (or of `<model>-sham`, which the worker does not
 * follow: the same publishing work, no switch) and announces it on the Kafka topic `--topic`,
 * printing `{"model","version","promotedMs"}` (promotedMs: unix ms once CURRENT was replaced).
 * Exits when stdin closes.
 *
 *   node --import tsx bench/release-switch/publisher.ts --dir D --model fm --kind fm|emerg --count 7 --topic T
 *
 * Kafka from THAW_KAFKA.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ConfigError } from '../../lib/errors.js';
import { announceRelease } from '../../model-store/release-announce.js';
import { ReleaseStore } from '../../model-store/releases.js';
import { kafkaFromEnv } from '../../streams/kafka.js';
import { EventProducer } from '../../streams/producer.js';
import { SWITCH_KINDS, switchBundle, type SwitchKind } from './releases.js';

function int(key: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n) || n < min) throw new ConfigError(key, `must be an integer >= ${min}, got ${String(v)}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string' },
      model: { type: 'string' },
      kind: { type: 'string' },
      count: { type: 'string' },
      topic: { type: 'string' },
    },
  });
  const kind = values.kind;
  if (kind === undefined || !(SWITCH_KINDS as readonly string[]).includes(kind)) throw new ConfigError('kind', `must be one of ${SWITCH_KINDS.join(', ')}, got ${String(kind)}`);
  if (values.dir === undefined || values.model === undefined || values.topic === undefined) throw new ConfigError('dir', '--dir, --model and --topic are required');
  const count = int('count', values.count, 1);
  const model = values.model;
  const store = new ReleaseStore({ root: values.dir });
  const sham = `${model}-sham`;
  const versions: Record<'promote' | 'sham', { model: string; versions: string[] }> = { promote: { model, versions: [] }, sham: { model: sham, versions: [] } };
  for (const lineage of Object.values(versions)) {
    let parent = (await store.current(lineage.model)) ?? null;
    for (let i = 1; i <= count; i++) {
      const b = await switchBundle(kind as SwitchKind, i);
      const m = await store.publish({ model: lineage.model, parent, architecture: b.architecture, files: b.files });
      lineage.versions.push(m.version);
      parent = m.version;
    }
  }
  const producer = new EventProducer({ kafka: kafkaFromEnv() });
  await producer.connect();
  try {
    process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
    for await (const line of createInterface({ input: process.stdin })) {
      const cue = line.trim();
      if (cue !== 'promote' && cue !== 'sham') continue;
      const lineage = versions[cue];
      const version = lineage.versions.shift();
      if (version === undefined) throw new ConfigError('count', `asked for more than ${count} promotions of ${lineage.model}`);
      await store.promote(lineage.model, version);
      const promotedMs = Date.now();
      await announceRelease(store, lineage.model, version, { producer, topic: values.topic });
      process.stdout.write(`${JSON.stringify({ model: lineage.model, version, promotedMs, announcedMs: Date.now() })}\n`);
    }
  } finally {
    await producer.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`release-switch publisher failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
