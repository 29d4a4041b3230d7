/**
 * The options reference of docs/cli.md, generated from the same specs as `--help` (schema
 * descriptions, defaults, flags, env vars). `node --import tsx cli/reference.ts` rewrites the block
 * between the markers in docs/cli.md; a unit test fails when the file is out of date.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describeField, fieldAt, leafKeys, optionalParent } from '../config/describe.js';
import type { CommandSpec } from '../config/types.js';
import { ENV_VARS } from '../config/env.js';
import { COMMANDS } from './commands/index.js';

export const BEGIN = '<!-- BEGIN GENERATED REFERENCE (node --import tsx cli/reference.ts) -->';
export const END = '<!-- END GENERATED REFERENCE -->';

const cell = (s: string): string => s.replace(/\|/g, '\\|');

/** `required`, or `required with \`kafka.sasl\`` for a field of an optional object. */
function requiredText(spec: CommandSpec, key: string): string {
  const parent = optionalParent(spec.schema, key);
  return parent === undefined ? 'required' : `required with \`${parent}\``;
}

export function renderReference(): string {
  const out: string[] = [];
  for (const { spec } of COMMANDS) {
    const pos = (spec.positionals ?? []).map((p) => ` ${p.name}`).join('');
    out.push(`### \`thaw ${spec.name}${pos}\``, '', spec.summary + '.', '');
    out.push('| flag | config key | env | default | meaning |', '|---|---|---|---|---|');
    for (const p of spec.positionals ?? []) {
      const d = describeField(spec.schema, p.key);
      out.push(`| \`${cell(p.name)}\` (positional) | \`${p.key}\` | | ${d.required ? 'required' : ''} | ${cell(d.description)} |`);
    }
    for (const f of spec.flags) {
      const d = describeField(spec.schema, f.key);
      const env = ENV_VARS.filter((e) => e.key === f.key)
        .map((e) => `\`${e.env}\``)
        .join(' ');
      const flag = `\`--${f.flag}${f.kind === 'boolean' ? '' : ` ${cell(f.meta ?? 'VALUE')}`}\``;
      const dflt = d.defaultText !== undefined ? `\`${cell(d.defaultText)}\`` : d.required ? requiredText(spec, f.key) : '';
      out.push(`| ${flag} | \`${f.key}\` | ${env} | ${dflt} | ${cell(d.description)} |`);
    }
    // Options without a flag: config file or env only.
    const flagged = new Set([...spec.flags.map((f) => f.key), ...(spec.positionals ?? []).map((p) => p.key)]);
    for (const key of leafKeys(spec.schema).filter((k) => !flagged.has(k))) {
      const d = describeField(spec.schema, key);
      const env = ENV_VARS.filter((e) => e.key === key)
        .map((e) => `\`${e.env}\``)
        .join(' ');
      const dflt = d.defaultText !== undefined ? `\`${cell(d.defaultText)}\`` : d.required ? requiredText(spec, key) : '';
      out.push(`| (file/env) | \`${key}\` | ${env} | ${dflt} | ${cell(d.description)} |`);
    }
    if (spec.notes !== undefined) out.push('', spec.notes.split('\n').join('  \n'));
    out.push('');
  }
  out.push('### Environment variables', '', '| variable | config key | used by |', '|---|---|---|');
  for (const e of ENV_VARS) {
    const users = COMMANDS.filter((c) => fieldAt(c.spec.schema, e.key) !== undefined).map((c) => c.spec.name);
    out.push(`| \`${e.env}\` | \`${e.key}\` | ${users.join(', ')} |`);
  }
  out.push('| `THAW_CONFIG` | (path of the JSON config file) | all |', '');
  return out.join('\n');
}

/** The doc with its generated block replaced. */
export function withReference(doc: string): string {
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a < 0 || b < a) throw new Error('docs/cli.md lacks the generated-reference markers');
  return `${doc.slice(0, a + BEGIN.length)}\n\n${renderReference()}\n${doc.slice(b)}`;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const path = fileURLToPath(new URL('../docs/cli.md', import.meta.url));
  writeFileSync(path, withReference(readFileSync(path, 'utf8')));
  process.stdout.write(`updated ${path}\n`);
}
