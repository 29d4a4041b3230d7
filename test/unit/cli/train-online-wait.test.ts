// Issue 16: `thaw train --online` printed MaxListenersExceededWarning after 10 s: its once-a-second
// wait for a failed trainer added an abort listener to the command's signal every second and never
// removed it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { waitFailed } from '../../../cli/commands/train-online.js';

void test('waiting for a failed online trainer leaves no abort listener behind per poll', async () => {
  const controller = new AbortController();
  let polls = 0;
  const trainer = {
    get state() {
      polls++;
      return polls > 30 ? ('failed' as const) : ('running' as const);
    },
  };
  await waitFailed(trainer, controller.signal, 1);
  assert.ok(polls > 30);
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
});

void test('waitFailed returns when the signal aborts', async () => {
  const controller = new AbortController();
  const waiting = waitFailed({ state: 'running' }, controller.signal, 60_000);
  controller.abort();
  await waiting;
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
});
