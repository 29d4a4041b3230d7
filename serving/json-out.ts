/**
 * The respond stage's JSON pieces, cheaper than the generic conversions on its hot path (100 of each
 * per request). `String(x)` of a double prints its shortest round-trip digits, about 3× the time of
 * printing an integer and placing the decimal point; an id that needs no escaping is quoted as it
 * is. `node --import tsx bench/serving/format.ts` measures both against the generic ones
 * (bench/README.md, "serving").
 */

const ZEROS = ['', '0', '00', '000', '0000', '00000', '000000', '0000000', '00000000'];

/** Scores at or above this print with 9 decimals; smaller ones keep their shortest round-trip form. */
const FIXED_FROM = 1e-4;

/**
 * A probability as a JSON number: 9 decimals (`0.123456789`) for scores in [1e-4, 1], which is
 * finer than the float32 parameters it is computed from (about 7 significant digits); a smaller
 * score, or anything outside [0, 1], is printed in full (`String(x)`; NaN and ±Infinity as null).
 */
export function jsonScore(x: number): string {
  if (x >= FIXED_FROM && x < 1) {
    // 1e-4 × 1e9 = 1e5 ≤ n < 1e9 < 2^31: a small integer, whose decimal digits V8 prints fast.
    const n = Math.round(x * 1e9);
    if (n < 1e9) {
      const digits = String(n);
      return '0.' + (ZEROS[9 - digits.length] ?? '') + digits;
    }
    return '1';
  }
  return Number.isFinite(x) ? String(x) : 'null';
}

/** A string as a JSON string: quoted as it is when nothing in it needs escaping, else JSON.stringify. */
export function jsonString(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s);
  }
  return '"' + s + '"';
}
