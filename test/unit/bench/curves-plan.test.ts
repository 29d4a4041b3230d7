import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { CurveRow } from '../../../analytics/types.js';
import { evaluationSince, fullPlan, groupsOf, kindsOf, namespaceOf, parseAdapters, selectWorkers, workerPlan } from '../../../bench/curves/plan.js';
import { mergeResults } from '../../../bench/curves/merge.js';
import { aucTable, longTable, sideBySideSvg } from '../../../bench/curves/report.js';

describe('curves bench plan', () => {
  it('runs every adapter and a none baseline per release, per side', () => {
    const all = parseAdapters('none,fm-adagrad,emerg,coldnas,fixed-adaptive');
    assert.deepEqual(
      workerPlan('item', all).map((w) => w.label),
      ['item-none-fm', 'item-fm-adagrad', 'item-none-emerg', 'item-emerg'],
    );
    assert.deepEqual(
      workerPlan('user', all).map((w) => `${w.adapter}@${w.kind}`),
      ['none@fm', 'fm-adagrad@fm', 'none@coldnas', 'coldnas@coldnas', 'none@fixed-adaptive', 'fixed-adaptive@fixed-adaptive'],
    );
    assert.deepEqual(kindsOf(fullPlan(all)), ['fm', 'emerg', 'coldnas', 'fixed-adaptive']);
  });

  it('runs the two fm-adagrad workers together, in one namespace, reading each other; every other worker alone, without the read', () => {
    const plan = fullPlan(parseAdapters('none,fm-adagrad,emerg,coldnas'));
    assert.deepEqual(
      groupsOf(plan).map((g) => g.map((w) => w.label)),
      [['item-none-fm'], ['item-fm-adagrad', 'user-fm-adagrad'], ['item-none-emerg'], ['item-emerg'], ['user-none-fm'], ['user-none-coldnas'], ['user-coldnas']],
    );
    assert.deepEqual(
      plan.filter((w) => w.cross).map((w) => w.label),
      ['item-fm-adagrad', 'user-fm-adagrad'],
    );
    const ns = new Set(plan.map((w) => namespaceOf('0123456789', w)));
    assert.equal(ns.size, plan.length - 1, 'the pair shares one namespace, every other worker has its own');
    assert.deepEqual(
      groupsOf(fullPlan(parseAdapters('fm-adagrad')).filter((w) => w.side === 'item')).map((g) => g.map((w) => w.label)),
      [['item-fm-adagrad']],
    );
  });

  it('adds no baseline without none, and only the meta adapters asked for', () => {
    const plan = fullPlan(parseAdapters('emerg'));
    assert.deepEqual(
      plan.map((w) => w.label),
      ['item-emerg'],
    );
    assert.equal(plan[0]!.meta, true);
  });

  it('rejects unknown adapters', () => {
    assert.throws(() => parseAdapters('none,vw'), /unknown adapter "vw"/);
    assert.throws(() => parseAdapters(' , '), /at least one/);
  });

  it('starts the evaluation window strictly after the latest history end', () => {
    assert.equal(evaluationSince([1000, 2500, 2000]), 2501);
    assert.throws(() => evaluationSince([]), /historyEndMs/);
    assert.throws(() => evaluationSince([1, NaN]), /historyEndMs/);
  });

  it('gives namespaces the store accepts', () => {
    for (const w of fullPlan(parseAdapters('none,fm-adagrad,emerg,coldnas,fixed-adaptive'))) {
      assert.match(namespaceOf('0123456789', w), /^[a-z0-9][a-z0-9_-]{0,62}$/);
    }
  });
});

describe('curves bench report', () => {
  const row = (side: 'item' | 'user', adapter: string, release: string, bucket: CurveRow['bucket'], auc: number): CurveRow => ({
    adapter,
    side,
    release,
    namespace: 'ns',
    bucket,
    n: 10,
    ctr: 0.2,
    auc,
    logLoss: 0.5,
  });
  const rows = [row('user', 'none', 'fm/v1', '0', 0.6), row('item', 'emerg', 'emerg/v2', '1-2', NaN), row('item', 'none', 'emerg/v2', '1-2', 0.7)];

  it('tables name the release model and leave NaN AUC blank', () => {
    const t = aucTable(rows);
    assert.match(t, /\| item \| none \| emerg \|/);
    assert.match(t, /\| item \| emerg \| emerg \| {2}\| - \|/);
    assert.equal(longTable(rows).trim().split('\n').length, 2 + rows.length);
  });

  it('plots one panel per side', () => {
    const svg = sideBySideSvg(rows, 't');
    assert.equal((svg.match(/<svg /g) ?? []).length, 3);
    assert.match(svg, /t: item side/);
    assert.match(svg, /t: user side/);
  });
});

describe('curves bench merge', () => {
  const part = (runId: string, side: 'item' | 'user', since = 10): Parameters<typeof mergeResults>[0][number] => ({
    runId,
    table: `t_${runId}`,
    events: 100,
    historyEvents: 50,
    releases: [{ kind: 'fm', dir: '/r', model: 'fm', version: 'v', id: 'fm/v', historyEndMs: 9, reused: true, trainSec: 0 }],
    since,
    stages: {},
    workers: [],
    curves: [{ adapter: 'none', side, release: 'fm/v', namespace: runId, bucket: '0', n: 5, ctr: 0.2, auc: 0.6, logLoss: 0.5 }],
    sql: '',
    wallS: runId === 'a' ? 10 : 20,
    transport: 'direct',
  });

  it('joins per-side runs of the same window, releases once', () => {
    const m = mergeResults([part('a', 'item'), part('b', 'user')]);
    assert.equal(m.runId, 'a+b');
    assert.deepEqual(
      m.curves.map((r) => r.side),
      ['item', 'user'],
    );
    assert.equal(m.releases.length, 1);
    assert.equal(m.wallS, 20);
  });

  it('refuses runs of different windows', () => {
    assert.throws(() => mergeResults([part('a', 'item'), part('b', 'user', 11)]), /another stream or window/);
  });
});

describe('selectWorkers', () => {
  const plan = fullPlan(['none', 'fm-adagrad', 'emerg', 'coldnas', 'fixed-adaptive']);
  it('keeps the labelled workers in plan order', () => {
    const got = selectWorkers(plan, ['item-emerg', 'item-none-emerg']).map((w) => w.label);
    assert.deepEqual(got, ['item-none-emerg', 'item-emerg']);
  });
  it('keeps every worker without labels', () => {
    assert.equal(selectWorkers(plan, undefined).length, plan.length);
  });
  it('names the key and the known labels for an unknown one', () => {
    assert.throws(
      () => selectWorkers(plan, ['item-coldnas']),
      (e: Error) => /workers/.test(e.message) && /item-none-fm/.test(e.message),
    );
  });
});
