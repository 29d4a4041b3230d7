import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { main } from '../../../cli/main.js';
import { COMMANDS, findCommand } from '../../../cli/commands/index.js';
import { commandUsage } from '../../../cli/usage.js';
import { findRawCommand, RAW_COMMANDS } from '../../../cli/commands/raw.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function capture(): { io: { stdout: { write(s: string): boolean }; stderr: { write(s: string): boolean }; env: Record<string, string> }; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (s) => ((out += s), true) }, stderr: { write: (s) => ((err += s), true) }, env: {} },
    out: () => out,
    err: () => err,
  };
}

describe('thaw main', () => {
  it('help lists every command and exits 0; no command exits 2', async () => {
    const c = capture();
    assert.equal(await main(['help'], c.io), 0);
    for (const cmd of COMMANDS) assert.ok(c.out().includes(cmd.spec.name), cmd.spec.name);
    const d = capture();
    assert.equal(await main([], d.io), 2);
  });

  it('<cmd> --help prints usage generated from the schema, with defaults', async () => {
    const c = capture();
    assert.equal(await main(['demo', '--help'], c.io), 0);
    assert.match(c.out(), /--events N\s+Synthetic events in the stream \(count\)\. \[default: 100000\]/);
    assert.equal(c.err(), '');
    const r = capture();
    assert.equal(await main(['help', 'train', 'fm'], r.io), 0);
    assert.match(r.out(), /Usage: thaw train fm/);
    assert.match(r.out(), /--source SPEC .*\(required\)/);
  });

  it('every flag of every command has a documented schema key', () => {
    for (const { spec } of COMMANDS) {
      const usage = commandUsage(spec);
      for (const f of spec.flags) {
        const line = usage.split('\n').find((l) => l.startsWith(`  --${f.flag}`));
        assert.ok(line !== undefined, `${spec.name} --${f.flag}`);
        const text = line.replace(/^\s*--\S+( \S+)?\s+/, '');
        assert.ok(text.length > 5, `${spec.name} --${f.flag} has no description`);
      }
    }
  });

  it('--version prints the package version (issue 16)', async () => {
    const c = capture();
    assert.equal(await main(['--version'], c.io), 0);
    assert.match(c.out(), /^thaw \d+\.\d+\.\d+\n$/);
  });

  it('an unknown option suggests the nearest flag; a bad broker address is echoed (issue 16)', async () => {
    const c = capture();
    assert.equal(await main(['run', 'item', '--metrics-prot', '1'], c.io), 2);
    assert.match(c.err(), /unknown option --metrics-prot \(did you mean --metrics-port\?\)/);
    const far = capture();
    assert.equal(await main(['run', 'item', '--xyzzy'], far.io), 2);
    assert.match(far.err(), /unknown option --xyzzy \(see: thaw run --help\)/);
    const bad = capture();
    assert.equal(await main(['run', 'item', '--kafka', 'broker-without-port'], bad.io), 2);
    assert.match(bad.err(), /expected host:port, got "broker-without-port"/);
  });

  it('dispatches self-parsing commands with their argv', () => {
    assert.deepEqual(findRawCommand(['train', 'emerg', '--data', 'x'])?.argv, ['emerg', '--data', 'x']);
    assert.deepEqual(findRawCommand(['eval', '--side', 'user'])?.argv, ['--side', 'user']);
    assert.equal(findRawCommand(['train', 'fm']), undefined);
  });

  it('help lists self-parsing commands too', async () => {
    const c = capture();
    assert.equal(await main(['help'], c.io), 0);
    for (const r of RAW_COMMANDS) assert.ok(c.out().includes(r.name), r.name);
  });

  it('finds subcommands by longest match', () => {
    assert.equal(findCommand(['train', 'fm', '--epochs', '1'])?.entry.spec.name, 'train fm');
    assert.deepEqual(findCommand(['train', 'fm', '--epochs', '1'])?.rest, ['--epochs', '1']);
    assert.equal(findCommand(['train']), undefined);
  });

  it('invalid config exits 2 with the key named on stderr, nothing on stdout', async () => {
    const c = capture();
    assert.equal(await main(['run', 'item', '--kafka', 'nonsense'], c.io), 2);
    assert.match(c.err(), /invalid config "kafka\.brokers": expected host:port/);
    assert.equal(c.out(), '');
    const u = capture();
    assert.equal(await main(['nope'], u.io), 2);
    assert.match(u.err(), /unknown command "nope"/);
  });

  it('a password in a bad URL never reaches stderr', async () => {
    const c = capture();
    assert.equal(await main(['curves', '--clickhouse', 'ftp://admin:hunter2@ch:1'], c.io), 2);
    assert.match(c.err(), /clickhouse\.url/);
    assert.doesNotMatch(c.err(), /hunter2/);
  });
});

describe('thaw as a process', () => {
  it('a bad --kafka value exits with code 2 naming the key', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'cli/dev.ts', 'produce', '--kafka', 'localhost', '--source', 'synthetic'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, THAW_KAFKA: '' },
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /invalid config "kafka\.brokers": expected host:port/);
    assert.equal(r.stdout, '');
  });
});
