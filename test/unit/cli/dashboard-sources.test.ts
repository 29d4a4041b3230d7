import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEMO_NAMESPACES, sourcesOf } from '../../../cli/commands/dashboard.js';
import { dashboardSchema } from '../../../config/commands/dashboard.js';

const exists = (): boolean => true;

test("dashboard --demo: --namespace picks among the demo's namespaces (it used to be ignored)", () => {
  const picked = DEMO_NAMESPACES[0];
  assert.ok(picked !== undefined);
  const one = sourcesOf(dashboardSchema.parse({ demo: true, namespace: picked }), exists);
  assert.deepEqual(one.namespaces, [picked]);
  const all = sourcesOf(dashboardSchema.parse({ demo: true }), exists);
  assert.deepEqual(all.namespaces, DEMO_NAMESPACES);
  assert.throws(() => sourcesOf(dashboardSchema.parse({ demo: true, namespace: 'live' }), exists), /--namespace live: not a namespace of the demo/);
});

test('dashboard without --demo: --namespace as given, live by default', () => {
  assert.deepEqual(sourcesOf(dashboardSchema.parse({})).namespaces, ['live']);
  assert.deepEqual(sourcesOf(dashboardSchema.parse({ namespace: 'a,b' })).namespaces, ['a', 'b']);
});
