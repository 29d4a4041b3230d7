/**
 * `thaw eval --protocol stream` (evaluation/stream/*, cli/commands/eval-stream.ts): a validation run
 * reads only the first --max-events of a source, --adapter-options reach the adapters the replay
 * builds (validated as thaw run's adapterOptions), and in the replay every meta-learned adapter
 * reads its FM partner's fresh states while its none reads nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PredictionRow } from '../../../analytics/types.js';
import { run as evalStream } from '../../../cli/commands/eval-stream.js';
import { replayLockstep } from '../../../evaluation/stream/lockstep.js';
import { inMemoryRelease, type FamilyRelease } from '../../../evaluation/stream/releases.js';
import { readStream } from '../../../evaluation/stream/run.js';
import { ConfigError } from '../../../lib/errors.js';
import { initBackend } from '../../../models/backend.js';
import { Emerg } from '../../../models/emerg.js';
import { fieldLayoutOf, inferEventLayout } from '../../../models/event-layout.js';
import { FactorizationMachine } from '../../../models/fm.js';
import { bundleCtr, bundleFm } from '../../../models/onnx/bundle.js';
import { syntheticStream } from '../../../sources/synthetic.js';

await initBackend('cpu');

const key =
  (k: string) =>
  (e: unknown): boolean =>
    e instanceof ConfigError && e.key === k;

void test('--adapter-options and --max-events are validated, naming the key', async () => {
  const base = ['--protocol', 'stream', '--source', 'synthetic:events=2000', '--log-level', 'silent'];
  await assert.rejects(evalStream([...base, '--adapter-options', '{emerg']), key('adapter-options'));
  await assert.rejects(evalStream([...base, '--adapter-options', '{"emerg":{"crossSide":"vector"}}']), key('adapter-options.emerg.crossSide'));
  await assert.rejects(evalStream([...base, '--adapter-options', '{"emerg":{"nope":1}}']), key('adapter-options.emerg.nope'));
  await assert.rejects(evalStream([...base, '--max-events', '1']), key('max-events'));
  await assert.rejects(evalStream([...base, '--max-events', '2.5']), key('max-events'));
});

void test('readStream with maxEvents reads the first N events of the source', async () => {
  const spec = { kind: 'synthetic' as const, events: 500, seed: 3 };
  const all = await readStream(spec);
  const first = await readStream(spec, undefined, 120);
  assert.equal(all.length, 500);
  assert.deepEqual(first, all.slice(0, 120));
});

void test("replay: the meta adapter reads the FM partner's fresh bias (crossSide), its none reads nothing; options reach only their adapter", async () => {
  const events = [...syntheticStream({ seed: 5, events: 900, users: 60, items: 90 }).events()];
  const fm = FactorizationMachine.create({ buckets: 4096, k: 4, seed: 2, release: 'fm/h' });
  fm.priors.user.biasVariance = 0.5;
  fm.priors.item.biasVariance = 0.5;
  const layout = inferEventLayout('item', events, { vocab: 2048, maxSlots: 3 });
  const emerg = new Emerg({ layout: fieldLayoutOf(layout), vocab: layout.vocab, dim: 4, layers: 2, genHidden: 8, seed: 9 });
  const biasFilter = { user: { variance: 0.5, drift: 0 }, item: { variance: 0.3, drift: 0 } };
  const families: FamilyRelease[] = [
    { family: 'fm', release: inMemoryRelease('fm', 'h', bundleFm(fm)), trainSec: 0, info: {} },
    { family: 'emerg', release: inMemoryRelease('emerg', 'h', bundleCtr(emerg, { eventLayout: layout, biasFilter })), trainSec: 0, info: {} },
  ];
  const replay = async (adapterOptions: object, crossSide = true): Promise<{ rows: Map<string, number>; crossRead: number }> => {
    const rows = new Map<string, number>();
    const sink = {
      write: (r: readonly PredictionRow[]): Promise<void> => {
        for (const x of r) rows.set(`${x.namespace}|${x.side}|${x.adapter}|${x.eventId}`, x.score);
        return Promise.resolve();
      },
      flush: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };
    const res = await replayLockstep({ events, historyN: 300, families, sides: ['user', 'item'], syncEvery: 0, sink, adapterOptions, crossSide });
    return { rows, crossRead: res.crossRead };
  };
  const on = await replay({});
  const off = await replay({ emerg: { crossSide: 'off' } });
  assert.ok(on.crossRead > 0 && on.crossRead === off.crossRead, 'the processors read the partner either way');
  const differs = (pattern: string): number => [...on.rows].filter(([k, v]) => k.startsWith(pattern) && Math.abs(v - (off.rows.get(k) ?? NaN)) > 1e-6).length;
  const count = (pattern: string): number => [...on.rows.keys()].filter((k) => k.startsWith(pattern)).length;
  assert.equal(count('eval-emerg|item|emerg|'), events.length - 300);
  assert.ok(differs('eval-emerg|item|emerg|') > 100, `the user's fresh bias moves emerg's scores (${differs('eval-emerg|item|emerg|')} rows)`);
  assert.equal(differs('eval-emerg|item|none|'), 0, 'its none never reads the other side');
  assert.equal(differs('eval-fm|'), 0, 'the FM family is untouched by emerg options');
  assert.equal(on.rows.size, off.rows.size);
  // --cross-side off (thaw run --cross-adapter off): no processor reads the other side; the FM's
  // adapted scores change, its none does not.
  const cold = await replay({}, false);
  assert.equal(cold.crossRead, 0);
  const changed = (pattern: string): number => [...on.rows].filter(([k, v]) => k.startsWith(pattern) && Math.abs(v - (cold.rows.get(k) ?? NaN)) > 1e-6).length;
  assert.ok(changed('eval-fm|item|fm-adagrad|') > 100, `fm-adagrad without the read (${changed('eval-fm|item|fm-adagrad|')} rows differ)`);
  assert.equal(changed('eval-fm|item|none|'), 0);
  await assert.rejects(evalStream(['--protocol', 'stream', '--source', 'synthetic:events=2000', '--log-level', 'silent', '--cross-side', 'maybe']), key('cross-side'));
});
