/**
 * Recognises TLS certificate failures (a certificate the configured CA does not sign, a host name
 * the certificate does not name, an expired certificate) in the errors of any client, so that a
 * start-up check can say "certificate not trusted, check the CA file" instead of a bare connection
 * error after retries. Retrying cannot fix these: the configuration has to change.
 */

/** OpenSSL verification codes as Node reports them (`err.code`), and Node's own TLS codes. */
const CERT_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'INVALID_CA',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** How deep to follow `cause` / `originalError` links (clients wrap errors a few times). */
const MAX_DEPTH = 6;

/**
 * `CODE: message` of the first TLS certificate failure in `err` or the errors it wraps (`cause`,
 * kafkajs' `originalError`), or undefined when there is none. Never holds a secret: these messages
 * come from the TLS layer and name certificates, not credentials.
 */
export function tlsCertificateProblem(err: unknown): string | undefined {
  let cur: unknown = err;
  for (let depth = 0; depth < MAX_DEPTH && cur !== null && typeof cur === 'object'; depth++) {
    const e = cur as { code?: unknown; message?: unknown; cause?: unknown; originalError?: unknown };
    if (typeof e.code === 'string' && CERT_CODES.has(e.code)) {
      const message = typeof e.message === 'string' ? e.message.replace(/^Connection error: /, '') : '';
      return `${e.code}: ${message}`;
    }
    cur = e.originalError ?? e.cause;
  }
  return undefined;
}
