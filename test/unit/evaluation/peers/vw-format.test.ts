import assert from 'node:assert/strict';
import { test } from 'node:test';
import { vwLine, vwToken } from '../../../../evaluation/peers/vw-format.js';
import type { LabelledEvent } from '../../../../schemas/types.js';

function ev(userId: string, itemId: string, label: 0 | 1): LabelledEvent {
  return {
    eventId: `${userId}-${itemId}`,
    timeMs: 0,
    userId,
    itemId,
    label,
    userFeatures: { occupation: ['tech writer'], age: ['25'] },
    itemFeatures: { year: ['1995'], genres: ["Children's", 'Film|Noir:x'] },
  };
}

test('vwLine: namespaces u and i, sorted fields, ids, escaped tokens, ±1 labels', () => {
  assert.equal(vwLine(ev('7', '42', 1)), "1 |u uid=7 age=25 occupation=tech_writer |i iid=42 genres=Children's genres=Film_Noir_x year=1995");
  assert.ok(vwLine(ev('7', '42', 0)).startsWith('-1 |u '));
  assert.equal(vwToken('a b\tc:d|e'), 'a_b_c_d_e');
});

test('vwLine: ids option keeps only the chosen side id', () => {
  assert.ok(!vwLine(ev('7', '42', 1), 'user').includes('iid='));
  assert.ok(vwLine(ev('7', '42', 1), 'user').includes('uid=7'));
  assert.ok(!vwLine(ev('7', '42', 1), 'item').includes('uid='));
});
