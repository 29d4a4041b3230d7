/**
 * Issue 16: README examples that did not work as written (`thaw train fm` without `--source`, option
 * hints like `[--json]` inside a command). Every `npx thaw ...` command in the shell blocks of
 * README.md and docs/*.md is parsed here by the CLI's own parser, as `thaw` would parse it: a
 * command that names an unknown option, lacks a required one, or has a bad value fails this test.
 * Commands that parse their own argv (raw commands) are checked against their usage text. The
 * blocks are parsed, not run: running them against the services is still to be built.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { commandProblems } from '../../docs/check-commands.js';
import { shellBlocks, shellWords, thawCommands } from '../../docs/shell-blocks.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FOLDERS = readdirSync(ROOT, { withFileTypes: true }).filter((d) => d.isDirectory() && !/^(node_modules|dist|\..*)$/.test(d.name));
const DOCS = [
  'README.md',
  ...readdirSync(`${ROOT}docs`)
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
  ...FOLDERS.filter((d) => existsSync(`${ROOT}${d.name}/README.md`)).map((d) => `${d.name}/README.md`),
];

void test('shell-block extraction: continuations, comments, background jobs and chained commands', () => {
  const md = ['text', '```bash', 'npx thaw run item \\', '  --metrics-port 9464 &   # comment', 'a && npx thaw curves --json; echo "x # y"', '```', '```json', '{}', '```'].join('\n');
  const blocks = shellBlocks(md);
  assert.equal(blocks.length, 1);
  assert.deepStrictEqual(thawCommands(blocks[0]?.text ?? ''), [
    ['run', 'item', '--metrics-port', '9464'],
    ['curves', '--json'],
  ]);
  assert.deepStrictEqual(shellWords(`a 'b c' "d e" f\\ g`), ['a', 'b c', 'd e', 'f g']);
});

void test('the check fails a command that cannot run as written', async () => {
  const md = [
    '```sh',
    'npx thaw train fm --model fm-user',
    'npx thaw curves --no-such-flag',
    'npx thaw train emerg --no-such-flag',
    'npx thaw frobnicate',
    'npx thaw run item --seeds [3]',
    '```',
  ].join('\n');
  const problems = await commandProblems('x.md', md);
  assert.equal(problems.length, 5, problems.join('\n'));
  assert.match(problems[0] ?? '', /x\.md:1 thaw train fm --model fm-user: .*source/);
  assert.match(problems[1] ?? '', /no-such-flag/);
  assert.match(problems[2] ?? '', /--no-such-flag is not in the usage of thaw train emerg/);
  assert.match(problems[3] ?? '', /no such command/);
  assert.match(problems[4] ?? '', /placeholder/);
});

for (const file of DOCS) {
  void test(`${file}: every thaw command in its shell blocks parses`, async () => {
    assert.deepStrictEqual(await commandProblems(file, readFileSync(`${ROOT}${file}`, 'utf8')), []);
  });
}
