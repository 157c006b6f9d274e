/**
 * AMQP field tables and field arrays, with RabbitMQ's type codes.
 *
 * The 0-9-1 spec's own table of field types disagrees with every broker; RabbitMQ publishes an errata
 * (https://www.rabbitmq.com/amqp-0-9-1-errata.html#section_3) and that is what is on the wire:
 *
 *   t bool · b int8 · B uint8 · s int16 · u uint16 · I int32 · i uint32 · l int64 · f float · d double ·
 *   D decimal · S longstr · x byte array · A array · T timestamp · F table · V void
 *
 * Decoding maps each to a plain JavaScript value (integers to `number`, int64 beyond 2^53 to `bigint`, `S` to
 * a string when it is valid UTF-8 and to bytes otherwise, `T` to a Date, `D` to a {@link Decimal}, `V` to
 * null, a NaN or ±Infinity `f`/`d` to a {@link TypedField} of its code). Encoding picks the natural code for
 * a plain value (see {@link encodeFieldValue}); a {@link TypedField} forces a specific one, so any table the
 * broker sends can be written back as it came.
 *
 * A plain number that is NaN or ±Infinity is refused with an EncodeError naming its key path: RabbitMQ
 * (3.10 at least) cannot parse a non-finite double and resets the connection, so the user would see only
 * ECONNRESET. `field.double(NaN)` still writes one, for brokers that can. Any encode error inside a table
 * names the path of the entry that failed (`"x-args.retries[2]"`).
 *
 * Tables decode into objects without Object.prototype behind them, so a key such as `__proto__` stays an
 * ordinary key. Nesting is capped at {@link MAX_NESTING} levels both ways: a hostile table cannot exhaust the stack, and a cyclic
 * object cannot hang the encoder.
 */
import type { Cursor } from "../cursor.ts";
import { DecodeError, EncodeError } from "../errors.ts";
import { f32, f64, i16, i32, i64, i8, type Int64, takeBytes, u16, u32, u64, u8 } from "../parsers.ts";
import { shortStringInterned } from "../string-cache.ts";
import { decodeUtf8 } from "../utf8.ts";
import { Writer } from "../writer.ts";

/** How deep tables and arrays may nest inside one another. */
export const MAX_NESTING = 64;

/** An AMQP decimal: `value / 10^scale`. */
export class Decimal {
  readonly scale: number;
  readonly value: number;
  /** @example new Decimal(2, 314); // 3.14 */
  constructor(scale: number, value: number) {
    this.scale = scale;
    this.value = value;
  }
}

/** RabbitMQ's field type codes. */
export type FieldType = "t" | "b" | "B" | "s" | "u" | "I" | "i" | "l" | "f" | "d" | "D" | "S" | "x" | "A" | "T" | "F" | "V";

/**
 * A value with an explicit wire type, for when the natural choice is not the one wanted (say an int8, or a
 * float32). Use the {@link field} helpers to make one.
 */
export class TypedField {
  readonly type: FieldType;
  readonly value: FieldValue;
  constructor(type: FieldType, value: FieldValue) {
    this.type = type;
    this.value = value;
  }
}

/** What a table or array may hold. */
export type FieldValue =
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Date
  | Decimal
  | TypedField
  | FieldTable
  | FieldValue[]
  | null
  | undefined;

/** A field table: string keys (at most 255 bytes of UTF-8) to field values. */
export interface FieldTable {
  [key: string]: FieldValue;
}

/**
 * Helpers that pin a value's wire type.
 * @example encodeFieldTable(w, { retries: field.int8(3), ratio: field.float(0.5) });
 */
export const field = {
  bool: (v: boolean) => new TypedField("t", v),
  int8: (v: number) => new TypedField("b", v),
  uint8: (v: number) => new TypedField("B", v),
  int16: (v: number) => new TypedField("s", v),
  uint16: (v: number) => new TypedField("u", v),
  int32: (v: number) => new TypedField("I", v),
  uint32: (v: number) => new TypedField("i", v),
  int64: (v: Int64) => new TypedField("l", v),
  float: (v: number) => new TypedField("f", v),
  double: (v: number) => new TypedField("d", v),
  longstr: (v: string | Uint8Array) => new TypedField("S", v),
  bytes: (v: Uint8Array) => new TypedField("x", v),
  /** Seconds since the epoch (AMQP timestamps have no finer resolution). */
  timestamp: (seconds: Int64) => new TypedField("T", seconds),
  void: () => new TypedField("V", null),
} as const;

// ---------------------------------------------------------------------------------------------------------
// Decoding

/**
 * Reads a field table: a 32-bit byte length, then key/type/value entries filling exactly that many bytes.
 * @example
 * decodeFieldTable(new Cursor(new Uint8Array([0, 0, 0, 6, 1, 97, 116, 1]))); // wrong length → DecodeError
 * decodeFieldTable(new Cursor(new Uint8Array([0, 0, 0, 4, 1, 97, 116, 1]))); // { a: true }
 */
export function decodeFieldTable(c: Cursor): FieldTable {
  return guarded(c, decodeTable, "field table");
}

/**
 * Reads a field array: a 32-bit byte length, then type/value pairs filling exactly that many bytes.
 * @example decodeFieldArray(new Cursor(new Uint8Array([0, 0, 0, 2, 98, 0xff]))); // [-1]
 */
export function decodeFieldArray(c: Cursor): FieldValue[] {
  return guarded(c, decodeArray, "field array");
}

/**
 * Runs a table or array decoder from the top. Inside, each nested table narrows `c.end` to its own length;
 * running out of bytes there is malformed data, not a need for more input, so an Incomplete becomes
 * TRUNCATED — here, once, rather than in every nested table — and `c.end` is put back.
 */
function guarded<T>(c: Cursor, decode: (c: Cursor, depth: number) => T, what: string): T {
  const end = c.end;
  try {
    return decode(c, 0);
  } catch (e) {
    c.end = end;
    throw truncatedInside(e, what);
  }
}

function windowEnd(c: Cursor, what: string): number {
  const n = u32(c);
  const end = c.pos + n;
  if (end > c.end) {
    throw new DecodeError("TRUNCATED", `Cannot decode ${what}: it declares ${n} bytes but ${c.end - c.pos} remain`);
  }
  return end;
}

function decodeTable(c: Cursor, depth: number): FieldTable {
  if (depth >= MAX_NESTING) throw new DecodeError("NESTING", `Cannot decode field table: nesting deeper than ${MAX_NESTING}`);
  const end = windowEnd(c, "field table");
  const outerEnd = c.end;
  c.end = end; // entries may not read past the table's own length
  const table: FieldTable = new (TableObject as unknown as new () => FieldTable)();
  while (c.pos < end) {
    const key = shortStringInterned(c); // header names repeat from message to message
    table[key] = decodeValue(c, depth);
  }
  c.end = outerEnd;
  return table;
}

/**
 * Decoded tables are made by this constructor: their prototype is an empty, frozen object without
 * Object.prototype behind it, so a `__proto__` or `constructor` key is ordinary data. (Object.create(null)
 * would do the same, but V8 keeps such objects in slow dictionary mode — 3× slower to fill.)
 */
function TableObject(): void {}
TableObject.prototype = Object.freeze(Object.create(null));

function decodeArray(c: Cursor, depth: number): FieldValue[] {
  if (depth >= MAX_NESTING) throw new DecodeError("NESTING", `Cannot decode field array: nesting deeper than ${MAX_NESTING}`);
  const end = windowEnd(c, "field array");
  const outerEnd = c.end;
  c.end = end;
  const out: FieldValue[] = [];
  while (c.pos < end) out.push(decodeValue(c, depth));
  c.end = outerEnd;
  return out;
}

/**
 * A non-finite float decodes as a TypedField: a plain NaN or ±Infinity would be refused when the table is
 * encoded again (RabbitMQ cannot parse them), and a table that arrived must be writable back as it came.
 */
function finiteOr(type: "f" | "d", v: number): number | TypedField {
  return v - v === 0 ? v : new TypedField(type, v);
}

/** Running out of bytes inside a length-delimited table is malformed data, not a need for more input. */
function truncatedInside(e: unknown, what: string): unknown {
  if (e instanceof DecodeError) return e;
  return new DecodeError("TRUNCATED", `Cannot decode ${what}: an entry runs past the end of the ${what}`);
}

function decodeValue(c: Cursor, depth: number): FieldValue {
  const type = u8(c);
  switch (type) {
    case 0x74: // t
      return u8(c) !== 0;
    case 0x62: // b
      return i8(c);
    case 0x42: // B
      return u8(c);
    case 0x73: // s
      return i16(c);
    case 0x75: // u
      return u16(c);
    case 0x49: // I
      return i32(c);
    case 0x69: // i
      return u32(c);
    case 0x6c: // l
      return i64(c);
    case 0x66: // f
      return finiteOr("f", f32(c));
    case 0x64: // d
      return finiteOr("d", f64(c));
    case 0x44: {
      // D: scale octet, then an unsigned 32-bit value
      const scale = u8(c);
      return new Decimal(scale, u32(c));
    }
    case 0x53: {
      // S: RabbitMQ does not promise UTF-8 here; keep undecodable content as bytes rather than lose it
      const n = u32(c);
      c.need(n);
      try {
        const s = decodeUtf8(c.bytes, c.pos, c.pos + n);
        c.pos += n;
        return s;
      } catch {
        return new TypedField("S", takeBytes(c, n));
      }
    }
    case 0x78: // x
      return takeBytes(c, u32(c));
    case 0x41: // A
      return decodeArray(c, depth + 1);
    case 0x54: {
      // T: seconds since the epoch
      const seconds = u64(c);
      if (typeof seconds === "number" && seconds <= 8.64e12) return new Date(seconds * 1000);
      return new TypedField("T", seconds); // beyond what a Date can hold
    }
    case 0x46: // F
      return decodeTable(c, depth + 1);
    case 0x56: // V
      return null;
    default:
      throw new DecodeError("FIELD_TYPE", `Cannot decode field value: unknown type code 0x${type.toString(16).padStart(2, "0")}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Encoding

/**
 * Writes a field table with its 32-bit length (reserved first, patched after the entries). Keys whose value
 * is `undefined` are left out; `null` is written as void. A value that cannot be encoded is an EncodeError
 * naming the entry's key path; `what` names the table in that message (e.g. `"basic properties: headers"`).
 * @example
 * const w = new Writer(); encodeFieldTable(w, { a: true }); w.finish(); // [0, 0, 0, 4, 1, 97, 116, 1]
 * encodeFieldTable(w, { x: { y: NaN } }); // EncodeError: Cannot encode field table: "x.y" is NaN, which RabbitMQ cannot parse …
 */
export function encodeFieldTable(w: Writer, t: FieldTable, what = "field table"): void {
  try {
    encodeTable(w, t, 0);
  } catch (e) {
    throw named(e, what, findFailure(t, 0));
  }
}

/** Writes a field array with its 32-bit length. */
export function encodeFieldArray(w: Writer, a: readonly FieldValue[], what = "field array"): void {
  try {
    encodeArray(w, a, 0);
  } catch (e) {
    throw named(e, what, findFailure(a, 0));
  }
}

function encodeTable(w: Writer, t: FieldTable, depth: number): void {
  if (depth >= MAX_NESTING) throw new EncodeError(`Cannot encode field table: nesting deeper than ${MAX_NESTING}`);
  const at = w.reserve(4);
  const keys = Object.keys(t);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const v = t[key];
    if (v === undefined) continue;
    w.shortString(key);
    encodeValue(w, v, depth);
  }
  w.patchU32(at, w.length - at - 4);
}

function encodeArray(w: Writer, a: readonly FieldValue[], depth: number): void {
  if (depth >= MAX_NESTING) throw new EncodeError(`Cannot encode field array: nesting deeper than ${MAX_NESTING}`);
  const at = w.reserve(4);
  for (let i = 0; i < a.length; i++) encodeValue(w, a[i], depth);
  w.patchU32(at, w.length - at - 4);
}

/**
 * Writes one type octet and value. The natural codes: boolean → t; integer in int32 → I; other safe integer
 * → l; other finite number → d; bigint → l; string → S; Uint8Array → x; Date → T (whole seconds); Decimal →
 * D; array → A; object → F; null/undefined → V. A {@link TypedField} writes the code it names. NaN and
 * ±Infinity are refused unless a TypedField asks for them (see the file comment).
 */
export function encodeFieldValue(w: Writer, v: FieldValue): void {
  try {
    encodeValue(w, v, 0);
  } catch (e) {
    const inside = containerOf(v);
    throw named(e, "field value", inside === undefined ? undefined : findFailure(inside, 1));
  }
}

// Naming the entry that failed. The encoders above keep no path (that would cost every entry of every
// table); once an encode has failed, findFailure encodes the same value again entry by entry into a scratch
// writer and returns the path to the innermost entry that fails, with its error.

/** What encodeValue throws for a plain NaN or ±Infinity; named() turns it into an EncodeError. */
class NonFinite {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
}

interface Failure {
  /** Keys and array indices, outermost first. */
  readonly path: (string | number)[];
  readonly error: NonFinite | EncodeError;
}

/** Made on the first failure; only failing encodes use it. */
let scratch: Writer | undefined;

/** The table, array or typed container an entry's value encodes as, if any, to look into for the failure. */
function containerOf(v: FieldValue): FieldTable | readonly FieldValue[] | undefined {
  if (v instanceof TypedField) {
    return (v.type === "F" && isFieldTable(v.value)) || (v.type === "A" && Array.isArray(v.value)) ? (v.value as FieldTable) : undefined;
  }
  if (Array.isArray(v)) return v;
  return isFieldTable(v) ? v : undefined;
}

/** The path to the innermost entry of `c` (a container at nesting `depth`) that fails to encode. */
function findFailure(c: FieldTable | readonly FieldValue[], depth: number): Failure | undefined {
  if (depth >= MAX_NESTING) return undefined; // the container itself is too deep: its entry is the answer
  const w = (scratch ??= new Writer(256));
  const array = Array.isArray(c);
  const keys: (string | number)[] = array ? c.map((_, i) => i) : Object.keys(c);
  for (const k of keys) {
    const v = (c as Record<string | number, FieldValue>)[k];
    if (!array && v === undefined) continue;
    w.discard();
    try {
      if (typeof k === "string") w.shortString(k);
    } catch (e) {
      w.discard();
      return e instanceof EncodeError ? { path: [k], error: e } : undefined;
    }
    try {
      encodeValue(w, v, depth);
    } catch (e) {
      w.discard();
      if (!(e instanceof NonFinite || e instanceof EncodeError)) return undefined;
      const inside = containerOf(v);
      const inner = inside === undefined ? undefined : findFailure(inside, depth + 1);
      return inner ? { path: [k, ...inner.path], error: inner.error } : { path: [k], error: e };
    }
  }
  w.discard();
  return undefined;
}

/** Turns what an encode threw into the EncodeError the caller sees: `Cannot encode <what>: "<path>" …`. */
function named(e: unknown, what: string, found: Failure | undefined): unknown {
  if (!(e instanceof NonFinite || e instanceof EncodeError)) return e; // not ours (a throwing getter, say)
  if (!found) {
    if (e instanceof EncodeError) return e;
    found = { path: [], error: e };
  }
  let path = "";
  for (const k of found.path) path += typeof k === "number" ? `[${k}]` : path === "" ? k : `.${k}`;
  const where = found.path.length ? JSON.stringify(path) : "the value";
  const f = found.error;
  if (f instanceof EncodeError) return new EncodeError(`Cannot encode ${what}: ${where}: ${f.message}`, { cause: f });
  const v = String(f.value);
  return new EncodeError(
    `Cannot encode ${what}: ${where} is ${v}, which RabbitMQ cannot parse (it resets the connection); ` +
      `field.double(${v}) sends it anyway, for brokers that can`,
  );
}


function encodeValue(w: Writer, v: FieldValue, depth: number): void {
  switch (typeof v) {
    case "boolean":
      w.u8(0x74);
      w.u8(v ? 1 : 0);
      return;
    case "number":
      if (Number.isInteger(v) && !Object.is(v, -0)) {
        if (v >= -0x8000_0000 && v <= 0x7fff_ffff) {
          w.u8(0x49);
          w.i32(v);
        } else if (Number.isSafeInteger(v)) {
          w.u8(0x6c);
          w.i64(v);
        } else {
          w.u8(0x64);
          w.f64(v);
        }
      } else {
        // Only here, off the integer fast path: RabbitMQ cannot parse a non-finite double.
        if (v !== v || v === Infinity || v === -Infinity) throw new NonFinite(v);
        w.u8(0x64);
        w.f64(v);
      }
      return;
    case "bigint":
      w.u8(0x6c);
      w.i64(v);
      return;
    case "string":
      w.u8(0x53);
      w.longString(v);
      return;
    case "undefined":
      w.u8(0x56);
      return;
    case "object":
      if (v === null) w.u8(0x56);
      else if (v instanceof Uint8Array) {
        w.u8(0x78);
        w.longBytes(v);
      } else if (Array.isArray(v)) {
        w.u8(0x41);
        encodeArray(w, v, depth + 1);
      } else if (v instanceof Date) {
        const ms = v.getTime();
        if (Number.isNaN(ms) || ms < 0) throw new EncodeError("Cannot encode field value: a timestamp must be a valid date after 1970");
        w.u8(0x54);
        w.u64(Math.floor(ms / 1000));
      } else if (v instanceof Decimal) {
        w.u8(0x44);
        encodeDecimal(w, v);
      } else if (v instanceof TypedField) {
        encodeTyped(w, v, depth);
      } else if (v instanceof Map || v instanceof Set || ArrayBuffer.isView(v)) {
        // Encoded as a table of its own keys, it would silently lose its content (a Map has none).
        throw new EncodeError(`Cannot encode field value: a ${v.constructor.name} is not a field table (use a plain object)`);
      } else {
        w.u8(0x46);
        encodeTable(w, v as FieldTable, depth + 1);
      }
      return;
    default:
      throw new EncodeError(`Cannot encode field value of type ${typeof v}`);
  }
}

/**
 * Whether `v` is an object a field table can be written from: not an array, a byte view, a Date, a Map or
 * Set, a Decimal or a TypedField (each of which is a value of its own or would lose its content).
 * @example isFieldTable({ a: 1 }); // true
 * @example isFieldTable(new Map()); // false
 */
export function isFieldTable(v: unknown): v is FieldTable {
  return (
    typeof v === "object" &&
    v !== null &&
    !Array.isArray(v) &&
    !ArrayBuffer.isView(v) &&
    !(v instanceof Date) &&
    !(v instanceof Map) &&
    !(v instanceof Set) &&
    !(v instanceof Decimal) &&
    !(v instanceof TypedField)
  );
}

function encodeDecimal(w: Writer, d: Decimal): void {
  if (!isIntIn(d.scale, 0, 0xff) || !isIntIn(d.value, 0, 0xffff_ffff)) {
    throw new EncodeError(`Cannot encode decimal: scale ${d.scale} or value ${d.value} out of range`);
  }
  w.u8(d.scale);
  w.u32(d.value);
}

function isIntIn(v: unknown, lo: number, hi: number): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= lo && v <= hi;
}

function intOf(f: TypedField, lo: number, hi: number): number {
  if (!isIntIn(f.value, lo, hi)) throw new EncodeError(`Cannot encode ${String(f.value)} as field type '${f.type}'`);
  return f.value;
}

function encodeTyped(w: Writer, f: TypedField, depth: number): void {
  const v = f.value;
  w.u8(f.type.charCodeAt(0));
  switch (f.type) {
    case "t":
      if (typeof v !== "boolean") throw new EncodeError(`Cannot encode ${String(v)} as field type 't'`);
      return w.u8(v ? 1 : 0);
    case "b":
      return w.i8(intOf(f, -0x80, 0x7f));
    case "B":
      return w.u8(intOf(f, 0, 0xff));
    case "s":
      return w.i16(intOf(f, -0x8000, 0x7fff));
    case "u":
      return w.u16(intOf(f, 0, 0xffff));
    case "I":
      return w.i32(intOf(f, -0x8000_0000, 0x7fff_ffff));
    case "i":
      return w.u32(intOf(f, 0, 0xffff_ffff));
    case "l":
    case "T":
      if (typeof v !== "number" && typeof v !== "bigint") throw new EncodeError(`Cannot encode ${String(v)} as field type '${f.type}'`);
      return f.type === "l" ? w.i64(v) : w.u64(v);
    case "f":
    case "d":
      if (typeof v !== "number") throw new EncodeError(`Cannot encode ${String(v)} as field type '${f.type}'`);
      return f.type === "f" ? w.f32(v) : w.f64(v);
    case "D":
      if (!(v instanceof Decimal)) throw new EncodeError("Cannot encode field type 'D': the value must be a Decimal");
      return encodeDecimal(w, v);
    case "S":
    case "x":
      if (typeof v === "string") return w.longString(v);
      if (v instanceof Uint8Array) return w.longBytes(v);
      throw new EncodeError(`Cannot encode ${String(v)} as field type '${f.type}'`);
    case "A":
      if (!Array.isArray(v)) throw new EncodeError("Cannot encode field type 'A': the value must be an array");
      return encodeArray(w, v, depth + 1);
    case "F":
      if (typeof v !== "object" || v === null || Array.isArray(v)) throw new EncodeError("Cannot encode field type 'F': the value must be an object");
      return encodeTable(w, v as FieldTable, depth + 1);
    case "V":
      return;
    default:
      throw new EncodeError(`Cannot encode unknown field type '${String(f.type)}'`);
  }
}
