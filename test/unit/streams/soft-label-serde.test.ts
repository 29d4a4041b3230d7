import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PoisonEventError } from '../../../lib/errors.js';
import { catalogRegistry, SCHEMA_NAMES } from '../../../schemas/catalog.js';
import { decodeSoftLabel, encodeSoftLabel, schemaIdOf } from '../../../streams/serde.js';

void test('soft labels round-trip through Avro with their catalog id', () => {
  const s = { eventId: 'e-1', teacherLogit: -1.25, teacherRelease: 'teacher/v1' };
  const buf = encodeSoftLabel(s);
  assert.equal(schemaIdOf(buf), catalogRegistry().latest(SCHEMA_NAMES.softLabel).id);
  assert.deepStrictEqual(decodeSoftLabel(buf), s);
});

void test('a soft label without an event id or with a non-finite logit is refused', () => {
  assert.throws(() => encodeSoftLabel({ eventId: '', teacherLogit: 0, teacherRelease: 'teacher/v1' }), PoisonEventError);
  assert.throws(() => encodeSoftLabel({ eventId: 'e', teacherLogit: Number.NaN, teacherRelease: 'teacher/v1' }), PoisonEventError);
  assert.throws(() => encodeSoftLabel({ eventId: 'e', teacherLogit: 1, teacherRelease: '' }), PoisonEventError);
});
