/**
 * Service URLs carry credentials (`redis://user:password@host:port`). Two rules keep them safe:
 * - validation refuses user info that is not percent-encoded (a raw space, `@`, `%` not followed by
 *   two hex digits, non-ASCII), because clients parse such URLs differently (or throw `URI
 *   malformed` deep inside a connect), and because redaction cannot know where a raw password ends;
 * - redaction masks everything from `scheme://` to the LAST `@` of the line, so a password holding
 *   `@`, `:`, `/` or spaces is masked whole, never cut at its first `@`. It over-masks rather than
 *   under-masks: text after a URL that holds `@` is masked too.
 */

/** Characters allowed raw in the user info of a URL (RFC 3986 unreserved, sub-delims and ':'). */
const USERINFO_CHAR = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*$/;

/** `scheme://` then anything on the same line up to the last `@`: the user info, greedily. */
const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/)[^\n]*@/gi;

/** Query parameters that carry credentials (`?password=...`, `&token=...`). */
const SECRET_PARAM = /([?&][^=&\s#]*(?:pass(?:word)?|pwd|secret|token|auth|credential|key)[^=&\s#]*=)[^&\s#]*/gi;

/**
 * Masks the user info (`user:password@` becomes `***@`) of every URL in `text`, and the values of
 * query parameters named like secrets. Safe for free text (error messages) and for a single URL.
 */
export function redactUrl(text: string): string {
  if (!text.includes('://')) return text;
  return text.replace(URL_USERINFO, '$1***@').replace(SECRET_PARAM, '$1***');
}

/**
 * Why the user info of `raw` cannot be used, or undefined when it is fine (or absent). Never quotes
 * the user info itself. `raw` should already parse as a URL.
 */
export function userinfoProblem(raw: string): string | undefined {
  const rest = /^[a-z][a-z0-9+.-]*:\/\/(.*)$/is.exec(raw)?.[1];
  if (rest === undefined) return undefined;
  const authority = rest.split(/[/?#]/, 1)[0] ?? '';
  const at = authority.lastIndexOf('@');
  if (at < 0) return undefined;
  const userinfo = authority.slice(0, at);
  const hint = 'percent-encode the user name and password (encodeURIComponent)';
  if (userinfo.includes('@')) return `the user name or password holds a raw "@": ${hint}, "@" is %40`;
  if (!USERINFO_CHAR.test(userinfo)) return `the user name or password holds a character that must be percent-encoded (a space, "%" not followed by two hex digits, non-ASCII, ...): ${hint}`;
  for (const part of userinfo.split(':')) {
    try {
      decodeURIComponent(part);
    } catch {
      return `the user name or password is not valid percent-encoded UTF-8: ${hint}`;
    }
  }
  return undefined;
}

/** The decoded user name and password of a URL (undefined when absent). Throws on bad encoding. */
export function credentialsOf(url: URL): { username: string | undefined; password: string | undefined } {
  return {
    username: url.username === '' ? undefined : decodeURIComponent(url.username),
    password: url.password === '' ? undefined : decodeURIComponent(url.password),
  };
}
