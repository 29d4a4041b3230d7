/**
 * Paced producer for the latency run, in its own process so it does not share the worker's event
 * loop: writes synthetic events whose `timeMs` is the wall clock at produce time, at `--rate`
 * events/s (token bucket, refilled continuously, bursts capped at 0.1 s of tokens) for `--seconds`.
 *
 *   node --import tsx bench/spine/pace-producer.ts --topic T --rate 20000 --seconds 15 [--key item|user]
 *
 * Kafka from THAW_KAFKA. Prints one JSON line on stdout at the end: { sent, ms, rate, sends, startMs } (startMs: wall clock of the first send).
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../../lib/errors.js';
import { syntheticStream } from '../../sources/synthetic.js';
import { kafkaFromEnv } from '../../streams/kafka.js';
import { EventProducer, type OutMessage } from '../../streams/producer.js';
import { benchSource, messageFor } from './fixtures.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { topic: { type: 'string' }, rate: { type: 'string', default: '20000' }, seconds: { type: 'string', default: '15' }, key: { type: 'string', default: 'item' } },
  });
  const side = values.key;
  if (side !== 'item' && side !== 'user') throw new ConfigError('key', `must be item or user, got ${values.key}`);
  const topic = values.topic;
  if (topic === undefined || topic === '') throw new ConfigError('topic', 'is required');
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  if (!(rate > 0)) throw new ConfigError('rate', `must be > 0 events/s, got ${values.rate}`);
  if (!(seconds > 0)) throw new ConfigError('seconds', `must be > 0, got ${values.seconds}`);
  const total = Math.ceil(rate * seconds);
  const events = syntheticStream(benchSource(total, 23))[Symbol.asyncIterator]();
  const producer = new EventProducer({ kafka: kafkaFromEnv() });
  await producer.connect();
  const maxBurst = Math.max(1, Math.ceil(rate * 0.1));
  let sent = 0;
  let sends = 0;
  let tokens = 0;
  let last = performance.now();
  const t0 = last;
  const startMs = Date.now();
  try {
    // Time-bounded: a producer that cannot keep up sends fewer events, it does not run longer.
    while (sent < total && performance.now() - t0 < seconds * 1000) {
      const now = performance.now();
      tokens = Math.min(maxBurst, tokens + ((now - last) / 1000) * rate);
      last = now;
      const n = Math.min(Math.floor(tokens), total - sent);
      if (n < 1) {
        await new Promise((r) => setTimeout(r, 2));
        continue;
      }
      tokens -= n;
      const msgs: OutMessage[] = [];
      const wall = Date.now();
      for (let i = 0; i < n; i++) {
        const next = await events.next();
        if (next.done === true) break;
        msgs.push(messageFor(side, { ...next.value, timeMs: wall }));
      }
      await producer.send(topic, msgs);
      sent += msgs.length;
      sends++;
    }
  } finally {
    await producer.close();
  }
  const ms = performance.now() - t0;
  process.stdout.write(`${JSON.stringify({ sent, ms, rate: sent / (ms / 1000), sends, startMs })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`pace-producer failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
