/**
 * `thaw train --online`: the online trainer (trainers/online-trainer.ts) as a long-running
 * process. It consumes the labelled stream of one side with its own consumer group, keeps the
 * shared parameters and the meta-learned init (and rates) fresh, and publishes, promotes and
 * announces a release every sync interval. SIGTERM/SIGINT drain: the last interval's release is
 * published and committed, then the command exits 0.
 *
 * Exit codes: 0 ok (drained), 1 failure, 2 usage.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { defined } from '../../lib/at.js';
import { ConfigError, ThawError, errorMessage } from '../../lib/errors.js';
import { createLogger, type LogLevel } from '../../lib/log.js';
import { initBackend, type BackendPreference } from '../../models/backend.js';
import type { AnnounceOptions } from '../../model-store/release-announce.js';
import { ReleaseStore } from '../../model-store/releases.js';
import { createRedis, pingRedis } from '../../model-store/redis.js';
import { checkServices, kafkaCheck, redisCheck } from '../preflight.js';
import { EventProducer } from '../../streams/producer.js';
import { ONLINE_KINDS, type OnlineKind } from '../../trainers/online/learner.js';
import { OnlineTrainer } from '../../trainers/online-trainer.js';
import { DEFAULT_KAFKA, kafkaRedisSchema } from '../../config/connections.js';
import { loadFromEnv } from '../../config/load.js';
import { kafkaConnection, redisConnection } from '../connect.js';
import { EXIT, type CommandContext } from '../context.js';
import { aborted } from '../lifecycle.js';

export const usage = `thaw train --online --side user|item --kind fm|fixed-adaptive|emerg --release-dir DIR --model NAME [options]

Consumes the labelled topic of --side with its own consumer group, trains the shared parameters on
every event and meta-learns the adaptive part's initialisation (fm: entityInit/entityBiasInit;
fixed-adaptive: fa.init/fa.lr; emerg: the graph hypernetwork and ID generator) from entities
warming up now; publishes, promotes and announces a
release of --model every sync interval (parent: the previous one; entity states kept). The model's
current release is the base of a new lineage. A restart resumes after the newest own release.
SIGTERM drains: the last interval is published and committed, exit 0.

  --side S               user | item (required)
  --kind K               fm | fixed-adaptive | emerg (required; fixed-adaptive needs --side user,
                         emerg --side item)
  --release-dir DIR      release directory the workers follow (required)
  --model NAME           model name in it (required)
  --sync-interval-ms N   time between releases (default 60000)
  --sync-every N         also publish every N trained events; 0 = by time only (default 0; a replay
                         at 10000 follows the cadence of thaw eval --protocol stream's default)
  --group-id G           consumer group (default thaw-online-<model>-<side>)
  --topic T              labelled topic (default thaw.labelled.by-<side>)
  --kafka HOST:PORT,..   brokers (default $THAW_KAFKA or ${DEFAULT_KAFKA})
  --from-latest          a new lineage starts at the end of the topic (default: the beginning)
  --announce-kafka       announce releases on thaw.releases (same brokers)
  --redis URL            set the Redis release pointer (prefix --redis-prefix, default thaw)
  TLS, SASL and the Redis ACL user come from the environment: THAW_KAFKA_TLS, THAW_KAFKA_TLS_CA_FILE,
  THAW_KAFKA_SASL_MECHANISM/_USERNAME/_PASSWORD, THAW_REDIS_USERNAME, THAW_REDIS_PASSWORD,
  THAW_REDIS_TLS, THAW_REDIS_TLS_CA_FILE (docs/security.md)
  --backend B            tf.js backend for fixed-adaptive and emerg: auto|native|wasm|cpu (default auto)
  --log-level L          debug|info|warn|error|silent (default info)`;

const OPTIONS = {
  online: { type: 'boolean' },
  side: { type: 'string' },
  kind: { type: 'string' },
  'release-dir': { type: 'string' },
  model: { type: 'string' },
  'sync-interval-ms': { type: 'string' },
  'sync-every': { type: 'string' },
  'group-id': { type: 'string' },
  topic: { type: 'string' },
  kafka: { type: 'string' },
  'from-latest': { type: 'boolean' },
  'announce-kafka': { type: 'boolean' },
  redis: { type: 'string' },
  'redis-prefix': { type: 'string' },
  backend: { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function need(v: string | undefined, key: string): string {
  if (v === undefined || v === '') throw new ConfigError(key, 'is required');
  return v;
}

/** A context of our own when run outside `thaw` main (signals abort it). */
function ownContext(level: LogLevel): { ctx: CommandContext; dispose: () => void } {
  const ac = new AbortController();
  const onSignal = (): void => ac.abort();
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const logger = createLogger(level, { cmd: 'train --online' });
  return {
    ctx: { stdout: process.stdout, stderr: process.stderr, logger, signal: ac.signal, env: process.env },
    dispose: () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    },
  };
}

/** Runs `thaw train --online …` (argv after `train`, `--online` optional); resolves to the exit code. */
export async function trainOnlineCommand(argv: string[], ctx?: CommandContext): Promise<number> {
  let values: ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];
  const err = ctx?.stderr ?? process.stderr;
  try {
    values = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (e) {
    err.write(`thaw train --online: ${errorMessage(e)}\n${usage}\n`);
    return EXIT.usage;
  }
  if (values.help === true) {
    (ctx?.stdout ?? process.stdout).write(`${usage}\n`);
    return EXIT.ok;
  }
  const own = ctx === undefined ? ownContext((values['log-level'] ?? 'info') as LogLevel) : undefined;
  const c = ctx ?? defined(own, 'own context').ctx;
  const log = c.logger;
  let producer: EventProducer | undefined;
  let redis: ReturnType<typeof createRedis> | undefined;
  let trainer: OnlineTrainer | undefined;
  try {
    const side = need(values.side, 'side');
    if (side !== 'user' && side !== 'item') throw new ConfigError('side', `must be user or item, got ${side}`);
    const kind = need(values.kind, 'kind');
    if (!(ONLINE_KINDS as readonly string[]).includes(kind)) throw new ConfigError('kind', `must be one of ${ONLINE_KINDS.join(', ')}, got ${kind}`);
    const interval = values['sync-interval-ms'] === undefined ? 60_000 : Number(values['sync-interval-ms']);
    if (!Number.isInteger(interval) || interval < 100) throw new ConfigError('sync-interval-ms', `must be an integer >= 100, got ${String(values['sync-interval-ms'])}`);
    const everyEvents = values['sync-every'] === undefined ? 0 : Number(values['sync-every']);
    if (!Number.isInteger(everyEvents) || everyEvents < 0) throw new ConfigError('sync-every', `must be an integer >= 0 (0 = by time only), got ${String(values['sync-every'])}`);
    // TLS, SASL and the Redis user come from THAW_KAFKA_* / THAW_REDIS_* (validated like `thaw run`'s).
    const conn = loadFromEnv(kafkaRedisSchema, c.env, {
      ...(values.kafka === undefined ? {} : { kafka: { brokers: values.kafka.split(',') } }),
      ...(values.redis === undefined ? {} : { redis: { url: values.redis } }),
    });
    const kafka = { ...kafkaConnection(conn.kafka), clientId: 'thaw-online-trainer' };
    if (kind === 'fixed-adaptive' || kind === 'emerg') await initBackend((values.backend ?? 'auto') as BackendPreference, log);
    const announce: AnnounceOptions = {};
    if (values.redis !== undefined) {
      redis = createRedis(redisConnection(conn.redis), log);
      announce.redis = redis;
      if (values['redis-prefix'] !== undefined) announce.redisPrefix = values['redis-prefix'];
    }
    // A refused password would otherwise surface only at the first release, an interval later.
    const pointer = redis;
    await checkServices([kafkaCheck(kafka), ...(pointer === undefined || values.redis === undefined ? [] : [redisCheck(values.redis, () => pingRedis(pointer))])]);
    if (values['announce-kafka'] === true) {
      producer = new EventProducer({ kafka, logger: log });
      await producer.connect();
      announce.producer = producer;
    }
    trainer = new OnlineTrainer({
      kafka,
      store: new ReleaseStore({ root: resolve(need(values['release-dir'], 'release-dir')) }),
      model: need(values.model, 'model'),
      side,
      kind: kind as OnlineKind,
      syncIntervalMs: interval,
      syncEveryEvents: everyEvents,
      fromBeginning: values['from-latest'] !== true,
      ...(values['group-id'] === undefined ? {} : { groupId: values['group-id'] }),
      ...(values.topic === undefined ? {} : { topic: values.topic }),
      ...(producer === undefined && redis === undefined ? {} : { announce }),
      onRelease: (m, info) => c.stdout.write(`${JSON.stringify({ release: m.version, parent: m.parent, events: info.events, metaTasks: info.metaTasks, offsets: info.offsets })}\n`),
      logger: log,
    });
    await trainer.start();
    log.info('online trainer running', { side, kind, syncIntervalMs: interval });
    // Run until a signal, or until the trainer's consumer fails for good.
    await Promise.race([aborted(c.signal), waitFailed(trainer, c.signal)]);
    if (trainer.state === 'failed') {
      log.error('online trainer failed; stopping without a release');
      await trainer.stop();
      return EXIT.failure;
    }
    log.info('draining: publishing the last interval');
    await trainer.drain();
    return EXIT.ok;
  } catch (e) {
    await trainer?.stop().catch(() => undefined);
    const usageErr = e instanceof ConfigError;
    err.write(`thaw train --online: ${errorMessage(e)}${e instanceof ThawError ? ` [${e.code}]` : ''}\n`);
    return usageErr ? EXIT.usage : EXIT.failure;
  } finally {
    await producer?.close().catch(() => undefined);
    if (redis !== undefined) await redis.quit().catch(() => undefined);
    own?.dispose();
  }
}

/** Resolves when the trainer reaches 'failed' (checked once a second) or `signal` aborts. */
async function waitFailed(trainer: OnlineTrainer, signal: AbortSignal): Promise<void> {
  while (!signal.aborted && trainer.state !== 'failed') {
    await new Promise<void>((r) => {
      const t = setTimeout(r, 1000);
      signal.addEventListener('abort', () => {
        clearTimeout(t);
        r();
      }, { once: true });
    });
  }
}

/** The raw-command entry point (`thaw train --online`). */
export function run(argv: string[]): Promise<number> {
  return trainOnlineCommand(argv);
}
