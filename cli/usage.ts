/**
 * Usage text generated from the command specs (zod schema descriptions and defaults + flag table),
 * so `--help` cannot drift from what is validated.
 */
import { describeField, optionalParent } from '../config/describe.js';
import type { CommandSpec } from '../config/types.js';

export function commandUsage(spec: CommandSpec): string {
  const pos = (spec.positionals ?? []).map((p) => ` ${p.name}`).join('');
  const lines = [`Usage: thaw ${spec.name}${pos} [options]`, '', spec.summary, '', 'Options:'];
  const rows: [string, string][] = [];
  for (const p of spec.positionals ?? []) {
    rows.push([`  ${p.name}`, describeField(spec.schema, p.key).description]);
  }
  for (const f of spec.flags) {
    const doc = describeField(spec.schema, f.key);
    const left = `  --${f.flag}${f.kind === 'boolean' ? '' : ` ${f.meta ?? 'VALUE'}`}`;
    const parent = optionalParent(spec.schema, f.key);
    const required = parent === undefined ? ' (required)' : ` (required with ${parent})`;
    const dflt = doc.defaultText !== undefined && f.kind !== 'boolean' ? ` [default: ${doc.defaultText}]` : doc.required ? required : '';
    rows.push([left, `${doc.description}${dflt}`]);
  }
  rows.push(['  --config FILE', 'JSON config file (or env THAW_CONFIG); flags > env > file > defaults']);
  rows.push(['  -h, --help', 'show this help']);
  const width = Math.min(34, Math.max(...rows.map(([l]) => l.length)) + 2);
  for (const [l, r] of rows) lines.push(l.length >= width ? `${l}\n${' '.repeat(width)}${r}` : `${l.padEnd(width)}${r}`);
  if (spec.notes !== undefined) lines.push('', spec.notes);
  return lines.join('\n') + '\n';
}

export function mainUsage(specs: readonly Pick<CommandSpec, 'name' | 'summary'>[]): string {
  const width = Math.max(...specs.map((s) => s.name.length)) + 4;
  return [
    'Usage: thaw <command> [options]',
    '',
    'Thaw warms up cold-start users and items in real time.',
    '',
    'Commands:',
    ...specs.map((s) => `  ${s.name.padEnd(width)}${s.summary}`),
    `  ${'help'.padEnd(width)}this text; thaw <command> --help for a command's options`,
    '',
    'Exit codes: 0 ok, 1 failure, 2 invalid configuration or usage, 130 interrupted.',
    'Configuration: see docs/cli.md (flags > env THAW_* > --config file > defaults).',
    '',
  ].join('\n');
}
