import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderReference, withReference } from '../../../cli/reference.js';
import { COMMANDS } from '../../../cli/commands/index.js';
import { leafKeys } from '../../../config/describe.js';

const DOC = fileURLToPath(new URL('../../../docs/cli.md', import.meta.url));

describe('docs/cli.md', () => {
  it('holds the reference generated from the option schemas (run `node --import tsx cli/reference.ts` to update)', () => {
    const doc = readFileSync(DOC, 'utf8');
    assert.equal(doc, withReference(doc));
  });

  it('documents every option of every command with a description', () => {
    const ref = renderReference();
    for (const { spec } of COMMANDS) {
      for (const key of leafKeys(spec.schema)) {
        const section = ref.slice(ref.indexOf(`### \`thaw ${spec.name}`));
        const line = section.split('\n').find((l) => l.includes(`| \`${key}\` |`));
        assert.ok(line !== undefined, `${spec.name}: ${key} missing`);
        assert.ok((line.split('|').at(-2) ?? '').trim().length > 3, `${spec.name}: ${key} has no description`);
      }
    }
  });
});
