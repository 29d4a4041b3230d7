import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tlsCertificateProblem } from '../../../lib/tls.js';
import { checkServices } from '../../../cli/preflight.js';
import { ThawError } from '../../../lib/errors.js';

const certError = (code: string, message: string): Error => Object.assign(new Error(message), { code });

describe('tlsCertificateProblem', () => {
  it('finds a certificate failure wrapped by clients (cause, originalError)', () => {
    const tls = certError('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain');
    const kafkajs = Object.assign(new Error('Number of retries exceeded'), {
      cause: Object.assign(new Error('Connection error: self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }),
    });
    assert.equal(tlsCertificateProblem(tls), 'SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain');
    assert.equal(tlsCertificateProblem(kafkajs), 'SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain');
    assert.match(
      tlsCertificateProblem(new ThawError('KAFKA_ERROR', 'x', { cause: { originalError: certError('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames") } })) ?? '',
      /^ERR_TLS_CERT_ALTNAME_INVALID: /,
    );
  });

  it('is undefined for other failures', () => {
    assert.equal(tlsCertificateProblem(certError('ECONNREFUSED', 'connect ECONNREFUSED')), undefined);
    assert.equal(tlsCertificateProblem(new Error('WRONGPASS')), undefined);
    assert.equal(tlsCertificateProblem(undefined), undefined);
    assert.equal(tlsCertificateProblem('SELF_SIGNED_CERT_IN_CHAIN'), undefined);
  });
});

describe('checkServices codes', () => {
  const fail = (code: 'AUTH_FAILED' | 'TLS_FAILED' | 'REDIS_ERROR') => () => Promise.reject(new ThawError(code, `${code} here`));
  it('TLS_FAILED when a certificate is not trusted, AUTH_FAILED first, every failed service named', async () => {
    await assert.rejects(
      checkServices([
        { service: 'kafka', target: 'k:1', check: fail('TLS_FAILED') },
        { service: 'redis', target: 'r', check: fail('REDIS_ERROR') },
      ]),
      (err) => err instanceof ThawError && err.code === 'TLS_FAILED' && /kafka \(k:1\): TLS_FAILED here; redis \(r\): REDIS_ERROR here/.test(err.message),
    );
    await assert.rejects(
      checkServices([
        { service: 'kafka', target: 'k:1', check: fail('TLS_FAILED') },
        { service: 'clickhouse', target: 'c', check: fail('AUTH_FAILED') },
      ]),
      (err) => err instanceof ThawError && err.code === 'AUTH_FAILED',
    );
    await assert.rejects(checkServices([{ service: 'redis', target: 'r', check: fail('REDIS_ERROR') }]), (err) => err instanceof ThawError && err.code === 'UNAVAILABLE_AT_START');
  });
});
