/**
 * Issue 11 items 2 and 3: hostile credentials in service URLs. Redaction parses first, then masks:
 * a password holding spaces, `@`, `%`, `:` or non-ASCII is masked whole (it was cut at the first `@`,
 * or not masked at all with a space); validation refuses user info that is not percent-encoded
 * (naming the key, never quoting the value), and a bad escape is a ConfigError, not `URI malformed`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clickhouseCredentials } from '../../../cli/connect.js';
import { runSpec } from '../../../config/commands/run.js';
import { loadConfig } from '../../../config/load.js';
import { redactConfig, redactMessage } from '../../../config/redact.js';
import { ConfigError } from '../../../lib/errors.js';
import { createLogger, redactUrl } from '../../../lib/log.js';
import { userinfoProblem } from '../../../lib/url.js';
import { redisOptionsOf } from '../../../model-store/redis.js';

/** User info as a user might type it, the fragments that must never be printed, and whether it is valid. */
const HOSTILE: readonly { name: string; userinfo: string; secrets: string[]; valid: boolean }[] = [
  { name: 'space', userinfo: 'user:Top Secret42', secrets: ['Top Secret42', 'Secret42'], valid: false },
  { name: '@ in the password', userinfo: 'user:pa@ss@w0rd', secrets: ['pa@ss', 'ss@w0rd', 'w0rd'], valid: false },
  { name: 'bad % escape', userinfo: ':Sec%zzret1', secrets: ['Sec%zzret1', 'zzret1'], valid: false },
  { name: 'invalid UTF-8 escape', userinfo: ':ab%C3%28cd', secrets: ['ab%C3%28cd', '%28cd'], valid: false },
  { name: ': in the password', userinfo: 'user:pa:ss:wd9', secrets: ['pa:ss:wd9', 'ss:wd9'], valid: true },
  { name: 'unicode', userinfo: 'usér:pässwörd✓', secrets: ['pässwörd✓', 'sswörd'], valid: false },
  { name: 'unicode, encoded', userinfo: 'user:p%C3%A4ssw%C3%B6rd', secrets: ['p%C3%A4ssw', 'pässwörd'], valid: true },
  { name: 'user without password', userinfo: 'lonelyuser7', secrets: ['lonelyuser7'], valid: true },
  { name: 'password without user', userinfo: ':justpass77', secrets: ['justpass77'], valid: true },
  { name: 'encoded @ : and space', userinfo: 'u:p%40ss%3Aw%20x9', secrets: ['p%40ss', 'w%20x9'], valid: true },
  { name: 'slash-free # and ?', userinfo: 'u:a;b=c!d$e9', secrets: ['a;b=c!d$e9'], valid: true },
];

const SCHEMES = [
  { scheme: 'redis', host: 'cache.internal:6379', flag: '--redis', key: 'redis.url' },
  { scheme: 'rediss', host: 'cache.internal:6380', flag: '--redis', key: 'redis.url' },
  { scheme: 'http', host: 'ch.internal:8123', flag: '--clickhouse', key: 'clickhouse.url' },
  { scheme: 'https', host: 'ch.internal:8443', flag: '--clickhouse', key: 'clickhouse.url' },
] as const;

function assertNoSecret(text: string, secrets: readonly string[], what: string): void {
  for (const s of secrets) assert.ok(!text.includes(s), `${what} leaks "${s}": ${text}`);
}

describe('hostile URL credentials', () => {
  for (const { scheme, host, flag, key } of SCHEMES) {
    for (const h of HOSTILE) {
      const url = `${scheme}://${h.userinfo}@${host}`;
      it(`${scheme}: ${h.name}`, () => {
        const masked = `${scheme}://***@${host}`;
        assert.equal(redactUrl(url), masked);
        assert.equal(redactUrl(`connect to ${url} failed: ECONNREFUSED`), `connect to ${masked} failed: ECONNREFUSED`);
        assert.equal(redactMessage(`x ${url}/db`, []), `x ${masked}/db`);
        assert.deepEqual(redactConfig({ svc: { url } }), { svc: { url: masked } });

        const lines: string[] = [];
        const log = createLogger('debug', {}, (l) => lines.push(l));
        log.error(`run failed at ${url}`, { target: url, nested: { deeper: [{ url }] }, error: new Error(`refused ${url}`) });
        assertNoSecret(lines.join('\n'), h.secrets, 'log line');

        // Validation: refused (naming the key, never quoting the value), or accepted when encoded.
        const argv = ['item', flag, url];
        if (h.valid) {
          assert.equal(userinfoProblem(url), undefined);
          const cfg = loadConfig(runSpec, argv, { env: {} }).config;
          assertNoSecret(JSON.stringify(redactConfig(cfg)), h.secrets, 'printed config');
        } else {
          assert.notEqual(userinfoProblem(url), undefined);
          assert.throws(
            () => loadConfig(runSpec, argv, { env: {} }),
            (e: unknown) => e instanceof ConfigError && e.key === key && h.secrets.every((s) => !e.message.includes(s)),
          );
        }
      });
    }
  }

  it('secret query parameters are masked too', () => {
    assert.equal(redactUrl('http://ch:8123/?user=a&password=hunter2&x=1'), 'http://ch:8123/?user=a&password=***&x=1');
    assert.equal(redactUrl('see https://h/?access_token=abc123'), 'see https://h/?access_token=***');
  });

  it('leaves URLs without credentials and plain text alone', () => {
    for (const s of ['redis://127.0.0.1:16379', 'http://127.0.0.1:18123', 'no url here, mail a@b.c', '']) assert.equal(redactUrl(s), s);
  });
});

describe('credentials reach the clients decoded, from a URL without them', () => {
  it('redis: decoded user and password as options, a bad escape is a ConfigError', () => {
    const { url, options } = redisOptionsOf({ url: 'redis://u%20x:p%40ss%3Aw%20x9@cache:6379/2' });
    assert.equal(options.username, 'u x');
    assert.equal(options.password, 'p@ss:w x9');
    assert.equal(url, 'redis://cache:6379/2');
    assert.equal(redisOptionsOf({ url: 'redis://:pw@cache:6379', password: 'override' }).options.password, 'override');
    for (const bad of ['redis://:Sec%zzret1@cache:6379', 'redis://user:Top Secret42@cache:6379', 'redis://u:a@b@cache:6379']) {
      assert.throws(
        () => redisOptionsOf({ url: bad }),
        (e: unknown) => e instanceof ConfigError && e.key === 'redis.url' && !e.message.includes('Secret42') && !e.message.includes('zzret'),
        bad,
      );
    }
  });

  it('clickhouse: credentials of the URL are used (decoded), not silently dropped', () => {
    const base = { user: 'default', password: '', database: 'thaw', table: 'predictions' };
    assert.deepEqual(clickhouseCredentials({ ...base, url: 'http://ana%40lyst:p%20w@ch:8123' }), { url: 'http://ch:8123/', username: 'ana@lyst', password: 'p w' });
    assert.deepEqual(clickhouseCredentials({ ...base, url: 'http://ch:8123', password: 'x' }), { url: 'http://ch:8123', username: 'default', password: 'x' });
  });
});
