import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PREDICTION_COLUMNS } from '../../../analytics/ddl.js';
import { toStoredRows, toTabSeparated } from '../../../analytics/row-codec.js';
import type { PredictionRow } from '../../../analytics/types.js';

const row: PredictionRow = {
  eventId: 'e1',
  eventTimeMs: 1_704_067_200_123,
  side: 'item',
  entityId: 'i7',
  priorCount: 3,
  score: 0.25,
  label: 1,
  adapter: 'fm-adagrad',
  release: 'fm/1',
  namespace: 'live',
};

describe('toTabSeparated', () => {
  it('writes every column in PREDICTION_COLUMNS order, one line per row', () => {
    const [stored] = toStoredRows([row], 1_704_067_300_000);
    assert.ok(stored !== undefined);
    const body = toTabSeparated([stored, stored]);
    const lines = body.split('\n');
    assert.equal(lines.length, 3);
    assert.equal(lines[2], '');
    const fields = (lines[0] ?? '').split('\t');
    assert.equal(fields.length, PREDICTION_COLUMNS.length);
    assert.deepEqual(
      fields,
      PREDICTION_COLUMNS.map((c) => String(stored[c])),
    );
  });

  it('escapes backslash, tab and line breaks in strings', () => {
    const [stored] = toStoredRows([{ ...row, eventId: 'a\tb\nc\\d\re', entityId: 'x\\' }], 0);
    assert.ok(stored !== undefined);
    const fields = toTabSeparated([stored]).slice(0, -1).split('\t');
    assert.equal(fields[0], 'a\\tb\\nc\\\\d\\re');
    assert.equal(fields[5], 'x\\\\');
  });
});
