/**
 * Confluent wire format over avsc: byte 0 is the magic 0, bytes 1..4 the big-endian schema id,
 * then the Avro binary body. Decoding resolves the writer schema (from the id) to the reader schema
 * with an avsc resolver, cached per writer id, so old and new producers can share a topic.
 */
import type { Resolver, Type } from 'avsc';
import { PoisonEventError, ThawError, errorMessage } from '../lib/errors.js';
import type { SchemaRegistry } from '../schemas/catalog.js';
import { installAvroBounds } from './avro-bounds.js';

// A corrupt block count must be poison, not an endless loop (avro-bounds.ts).
installAvroBounds();

export const MAGIC_BYTE = 0;
/** Magic byte + 4-byte schema id. */
export const WIRE_HEADER_BYTES = 5;

// One scratch buffer shared by all codecs: encoding is synchronous, so it is never used by two
// encodes at once. Grows on demand; each message is copied out of it (one small allocation).
let scratch = Buffer.allocUnsafe(64 * 1024);

/** Schema id of a wire-format message; throws PoisonEventError if the header is malformed. */
export function schemaIdOf(buf: Buffer): number {
  if (buf.length < WIRE_HEADER_BYTES) {
    throw new PoisonEventError('DECODE_FAILED', `message of ${buf.length} bytes is shorter than the 5-byte wire-format header`);
  }
  if (buf[0] !== MAGIC_BYTE) {
    throw new PoisonEventError('DECODE_FAILED', `magic byte is ${buf[0]}, expected ${MAGIC_BYTE} (not Confluent wire format)`);
  }
  return buf.readUInt32BE(1);
}

export interface AvroCodecOptions {
  /** Schema id used when encoding. @default the latest id of the record name */
  writerId?: number;
  /** Schema id decoded messages are resolved to. @default the latest id of the record name */
  readerId?: number;
}

/** Encoder/decoder of one record name (e.g. `thaw.LabelledEvent`) against a registry. */
export class AvroCodec {
  readonly name: string;
  readonly writerId: number;
  private readonly writer: Type;
  private readonly reader: Type;
  private readonly resolvers = new Map<number, Resolver | null>();

  constructor(
    private readonly registry: SchemaRegistry,
    name: string,
    opts: AvroCodecOptions = {},
  ) {
    this.name = name;
    const latest = registry.latest(name);
    this.writerId = opts.writerId ?? latest.id;
    this.writer = opts.writerId === undefined ? latest.type : registry.byId(opts.writerId);
    this.reader = opts.readerId === undefined ? latest.type : registry.byId(opts.readerId);
    for (const [key, t] of [
      ['writerId', this.writer],
      ['readerId', this.reader],
    ] as const) {
      if (t.name !== name) throw new ThawError('CONFIG_INVALID', `${key} schema is ${t.name ?? 'anonymous'}, expected ${name}`);
    }
  }

  /** Encodes `value` with the writer schema; avsc type errors become PoisonEventError(VALIDATION_FAILED). */
  encode(value: unknown): Buffer {
    let end: number;
    try {
      end = this.writer.encode(value, scratch, WIRE_HEADER_BYTES);
      if (end < 0) {
        // avsc returns minus the number of missing bytes: grow once to fit and encode again.
        scratch = Buffer.allocUnsafe(Math.max(scratch.length * 2, scratch.length - end + WIRE_HEADER_BYTES));
        end = this.writer.encode(value, scratch, WIRE_HEADER_BYTES);
      }
    } catch (err) {
      throw new PoisonEventError('VALIDATION_FAILED', `cannot encode ${this.name}: ${errorMessage(err)}`, { cause: err });
    }
    scratch[0] = MAGIC_BYTE;
    scratch.writeUInt32BE(this.writerId, 1);
    const out = Buffer.allocUnsafe(end);
    scratch.copy(out, 0, 0, end);
    return out;
  }

  /** Decodes a wire-format message into a reader-schema record; throws PoisonEventError(DECODE_FAILED). */
  decode(buf: Buffer): Record<string, unknown> {
    const id = schemaIdOf(buf);
    const resolver = this.resolverFor(id);
    let res: { value: unknown; offset: number };
    try {
      res = resolver === null ? this.reader.decode(buf, WIRE_HEADER_BYTES) : this.reader.decode(buf, WIRE_HEADER_BYTES, resolver);
    } catch (err) {
      throw new PoisonEventError('DECODE_FAILED', `corrupt ${this.name} body (schema id ${id}): ${errorMessage(err)}`, { cause: err });
    }
    if (res.offset < 0) throw new PoisonEventError('DECODE_FAILED', `truncated ${this.name} body (schema id ${id}, ${buf.length} bytes)`);
    if (res.offset !== buf.length) {
      throw new PoisonEventError('DECODE_FAILED', `${buf.length - res.offset} trailing bytes after ${this.name} body (schema id ${id})`);
    }
    return res.value as Record<string, unknown>;
  }

  private resolverFor(id: number): Resolver | null {
    const cached = this.resolvers.get(id);
    if (cached !== undefined) return cached;
    let writer: Type;
    try {
      writer = this.registry.byId(id);
    } catch (err) {
      throw new PoisonEventError('DECODE_FAILED', `unknown schema id ${id} for ${this.name}`, { cause: err });
    }
    let resolver: Resolver | null = null;
    if (writer !== this.reader) {
      try {
        resolver = this.reader.createResolver(writer);
      } catch (err) {
        throw new PoisonEventError('DECODE_FAILED', `schema id ${id} (${writer.name ?? 'anonymous'}) cannot be read as ${this.name}: ${errorMessage(err)}`, {
          cause: err,
        });
      }
    }
    this.resolvers.set(id, resolver);
    return resolver;
  }
}
