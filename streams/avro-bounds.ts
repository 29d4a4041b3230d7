/**
 * Bounds for avsc's array and map decoding. avsc reads a block's item count and then loops that many
 * times even when the buffer ended long before: a corrupt record whose count varint says 2^31 (found
 * by test/unit/streams/serde-fuzz.test.ts) kept a worker's thread busy for hours, reading past the
 * end of the buffer, instead of becoming a dead letter. Every array item of a type that takes at
 * least one byte, and every map entry (its key string takes one), must fit in the bytes left: a
 * count above that is refused at once (the codec turns the error into PoisonEventError).
 *
 * Installed once, by patching the four block loops of avsc's ArrayType and MapType (the same code
 * with a check added; avsc 5.7). Encoding is untouched.
 */
import avro from 'avsc';

interface Tap {
  buf: Buffer;
  pos: number;
  readLong(): number;
  skipLong(): void;
  readString(): string;
  skipString(): void;
}
interface ItemType {
  typeName: string;
  fields?: readonly { type: ItemType }[];
  _read(tap: Tap): unknown;
  _skip(tap: Tap): void;
}
interface BlockType {
  itemsType?: ItemType;
  valuesType?: ItemType;
}
type Proto = Record<'_read' | '_skip', (this: BlockType, tap: Tap) => unknown>;

/** Whether every value of `t` takes at least one byte (false for null and records of nulls only). */
function takesBytes(t: ItemType): boolean {
  if (t.typeName === 'null') return false;
  if (t.typeName === 'record' || t.typeName === 'error') return (t.fields ?? []).some((f) => takesBytes(f.type));
  return true;
}

function checkCount(tap: Tap, n: number, itemsTakeBytes: boolean): void {
  const left = tap.buf.length - tap.pos;
  if (itemsTakeBytes && n > left) throw new Error(`block of ${n} items is longer than the ${Math.max(0, left)} bytes left`);
}

/** Reads a block header: the item count (its byte size, for a negative count, is skipped). */
function blockCount(tap: Tap): number {
  let n = tap.readLong();
  if (n < 0) {
    n = -n;
    tap.skipLong();
  }
  return n;
}

let installed = false;

/** Installs the bounds (idempotent). */
export function installAvroBounds(): void {
  if (installed) return;
  installed = true;
  const types = avro.types as unknown as Record<'ArrayType' | 'MapType', { prototype: Proto }>;
  const array = types.ArrayType.prototype;
  const map = types.MapType.prototype;

  array._read = function (tap) {
    const items = this.itemsType as ItemType;
    const sized = takesBytes(items);
    const out: unknown[] = [];
    let n: number;
    while ((n = blockCount(tap))) {
      checkCount(tap, n, sized);
      while (n--) out.push(items._read(tap));
    }
    return out;
  };
  array._skip = function (tap) {
    const items = this.itemsType as ItemType;
    const sized = takesBytes(items);
    let n: number;
    while ((n = tap.readLong())) {
      if (n < 0) {
        tap.pos += tap.readLong();
        continue;
      }
      checkCount(tap, n, sized);
      while (n--) items._skip(tap);
    }
  };
  map._read = function (tap) {
    const values = this.valuesType as ItemType;
    const out: Record<string, unknown> = {};
    let n: number;
    while ((n = blockCount(tap))) {
      checkCount(tap, n, true);
      while (n--) {
        const key = tap.readString();
        out[key] = values._read(tap);
      }
    }
    return out;
  };
  map._skip = function (tap) {
    const values = this.valuesType as ItemType;
    let n: number;
    while ((n = tap.readLong())) {
      if (n < 0) {
        tap.pos += tap.readLong();
        continue;
      }
      checkCount(tap, n, true);
      while (n--) {
        tap.skipString();
        values._skip(tap);
      }
    }
  };
}
