/**
 * Parsers: functions from a {@link Cursor} to a value, and combinators that build parsers from parsers.
 *
 * The vocabulary is nom's (`map`, `tuple`, `lengthValue`, `many`, `bits`, `allConsuming`, `complete`), the
 * mechanics are a cursor's: a parser reads from `c.pos`, advances it, and returns the value. A parser that
 * runs out of input throws {@link Incomplete}; one that meets bad bytes throws {@link DecodeError}.
 * Integers are big-endian (network order), as in AMQP and most wire protocols.
 */
import { Cursor } from "./cursor.ts";
import { DecodeError, Incomplete } from "./errors.ts";
import { decodeUtf8 } from "./utf8.ts";

/** A parser of `T`. */
export type Parser<T> = (c: Cursor) => T;

/**
 * A 64-bit integer: a `number` when it is a safe integer, a `bigint` otherwise — never rounded.
 */
export type Int64 = number | bigint;

const TWO_32 = 0x1_0000_0000;

/** @example u8(new Cursor(new Uint8Array([0xff]))); // 255 */
export function u8(c: Cursor): number {
  c.need(1);
  return c.bytes[c.pos++]!;
}
/** @example i8(new Cursor(new Uint8Array([0xff]))); // -1 */
export function i8(c: Cursor): number {
  c.need(1);
  return c.view.getInt8(c.pos++);
}
/** @example u16(new Cursor(new Uint8Array([1, 2]))); // 258 */
export function u16(c: Cursor): number {
  c.need(2);
  const b = c.bytes;
  const p = c.pos;
  c.pos = p + 2;
  return (b[p]! << 8) | b[p + 1]!;
}
/** @example i16(new Cursor(new Uint8Array([0xff, 0xfe]))); // -2 */
export function i16(c: Cursor): number {
  c.need(2);
  const v = c.view.getInt16(c.pos);
  c.pos += 2;
  return v;
}
/** @example u32(new Cursor(new Uint8Array([0, 0, 1, 0]))); // 256 */
export function u32(c: Cursor): number {
  c.need(4);
  const b = c.bytes;
  const p = c.pos;
  c.pos = p + 4;
  return b[p]! * 0x100_0000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
}
/** @example i32(new Cursor(new Uint8Array([0xff, 0xff, 0xff, 0xff]))); // -1 */
export function i32(c: Cursor): number {
  c.need(4);
  const b = c.bytes;
  const p = c.pos;
  c.pos = p + 4;
  return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
}
/**
 * Unsigned 64-bit: a number up to 2^53-1, a bigint above.
 * @example u64(new Cursor(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 7]))); // 7
 * @example u64(new Cursor(new Uint8Array(8).fill(0xff))); // 18446744073709551615n
 */
export function u64(c: Cursor): Int64 {
  c.need(8);
  const b = c.bytes;
  const p = c.pos;
  const hi = b[p]! * 0x100_0000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
  const lo = b[p + 4]! * 0x100_0000 + ((b[p + 5]! << 16) | (b[p + 6]! << 8) | b[p + 7]!);
  let v: Int64;
  if (hi < 0x20_0000) v = hi * TWO_32 + lo;
  else v = c.view.getBigUint64(c.pos);
  c.pos += 8;
  return v;
}
/**
 * Signed 64-bit: a number when safe, a bigint otherwise.
 * @example i64(new Cursor(new Uint8Array(8).fill(0xff))); // -1
 */
export function i64(c: Cursor): Int64 {
  c.need(8);
  const hi = c.view.getInt32(c.pos);
  const lo = c.view.getUint32(c.pos + 4);
  let v: Int64;
  // Safe when -2^53 < value < 2^53: hi in (-2^21, 2^21), or hi = -2^21 with lo > 0.
  if ((hi < 0x20_0000 && hi > -0x20_0000) || (hi === -0x20_0000 && lo !== 0)) v = hi * TWO_32 + lo;
  else v = c.view.getBigInt64(c.pos);
  c.pos += 8;
  return v;
}
/** @example f32(new Cursor(new Uint8Array([0x3f, 0xc0, 0, 0]))); // 1.5 */
export function f32(c: Cursor): number {
  c.need(4);
  const v = c.view.getFloat32(c.pos);
  c.pos += 4;
  return v;
}
/** @example f64(new Cursor(new Uint8Array([0x3f, 0xf8, 0, 0, 0, 0, 0, 0]))); // 1.5 */
export function f64(c: Cursor): number {
  c.need(8);
  const v = c.view.getFloat64(c.pos);
  c.pos += 8;
  return v;
}

/**
 * `n` bytes, copied out (the result does not pin the input buffer).
 * @example bytes(2)(new Cursor(new Uint8Array([1, 2, 3]))); // Uint8Array [1, 2]
 */
export function bytes(n: number): Parser<Uint8Array> {
  return (c) => takeBytes(c, n);
}
/** Reads `n` bytes (copied). */
export function takeBytes(c: Cursor, n: number): Uint8Array {
  c.need(n);
  const v = c.bytes.slice(c.pos, c.pos + n);
  c.pos += n;
  return v;
}
/** Reads `n` bytes of strict UTF-8. */
export function takeUtf8(c: Cursor, n: number): string {
  c.need(n);
  const s = decodeUtf8(c.bytes, c.pos, c.pos + n);
  c.pos += n;
  return s;
}

/**
 * An octet length, then that many bytes of UTF-8 (AMQP's shortstr).
 * @example shortString(new Cursor(new Uint8Array([2, 104, 105]))); // "hi"
 */
export function shortString(c: Cursor): string {
  return takeUtf8(c, u8(c));
}
/**
 * A 32-bit length, then that many bytes of UTF-8.
 * @example longString(new Cursor(new Uint8Array([0, 0, 0, 1, 65]))); // "A"
 */
export function longString(c: Cursor): string {
  return takeUtf8(c, u32(c));
}
/**
 * A 32-bit length, then that many raw bytes (AMQP's longstr, read as bytes).
 * @example longBytes(new Cursor(new Uint8Array([0, 0, 0, 1, 9]))); // Uint8Array [9]
 */
export function longBytes(c: Cursor): Uint8Array {
  return takeBytes(c, u32(c));
}

/**
 * Applies `f` to what `p` parsed.
 * @example map(u8, (n) => n * 2)(new Cursor(new Uint8Array([21]))); // 42
 */
export function map<A, B>(p: Parser<A>, f: (a: A) => B): Parser<B> {
  return (c) => f(p(c));
}

/**
 * Runs parsers in order and returns their results as a tuple.
 * @example tuple(u8, u16)(new Cursor(new Uint8Array([1, 0, 2]))); // [1, 2]
 */
export function tuple<T extends unknown[]>(...ps: { [K in keyof T]: Parser<T[K]> }): Parser<T> {
  return (c) => ps.map((p) => p(c)) as T;
}

/**
 * Runs named parsers in order and returns an object of their results.
 * @example sequence({ a: u8, b: u8 })(new Cursor(new Uint8Array([1, 2]))); // { a: 1, b: 2 }
 */
export function sequence<T extends Record<string, unknown>>(ps: { [K in keyof T]: Parser<T[K]> }): Parser<T> {
  const keys = Object.keys(ps) as (keyof T)[];
  return (c) => {
    const out = {} as T;
    for (const k of keys) out[k] = ps[k](c);
    return out;
  };
}

/**
 * Reads a length with `len`, then runs `p` on exactly that many bytes: `p` may not read past them, and
 * must consume them all (nom's `length_value` + `all_consuming`). A length past the input is Incomplete;
 * `p` stopping short or running over is a DecodeError.
 * @example lengthValue(u8, many(u8))(new Cursor(new Uint8Array([2, 7, 8, 9]))); // [7, 8]
 */
export function lengthValue<T>(len: Parser<number>, p: Parser<T>): Parser<T> {
  return (c) => {
    const n = len(c);
    c.need(n);
    return within(c, n, p);
  };
}

/**
 * Runs `p` over the next `n` bytes as if they were all the input, then checks it used them all. Running out
 * inside the window is a TRUNCATED DecodeError — the window is known to be whole.
 */
export function within<T>(c: Cursor, n: number, p: Parser<T>): T {
  const outerEnd = c.end;
  const windowEnd = c.pos + n;
  c.end = windowEnd;
  try {
    const v = p(c);
    if (c.pos !== windowEnd) {
      throw new DecodeError("TRAILING_BYTES", `Cannot decode: ${windowEnd - c.pos} bytes left over in a ${n}-byte value`);
    }
    return v;
  } catch (e) {
    if (e instanceof Incomplete) throw new DecodeError("TRUNCATED", `Cannot decode: a ${n}-byte value ends before its fields do`);
    throw e;
  } finally {
    c.end = outerEnd;
  }
}

/**
 * Runs `p` until the input is exhausted (nom's `many0` over a bounded input), collecting results.
 * @example many(u16)(new Cursor(new Uint8Array([0, 1, 0, 2]))); // [1, 2]
 */
export function many<T>(p: Parser<T>): Parser<T[]> {
  return (c) => {
    const out: T[] = [];
    while (c.pos < c.end) out.push(p(c));
    return out;
  };
}

/**
 * Runs `p` exactly `n` times.
 * @example repeat(2, u8)(new Cursor(new Uint8Array([4, 5, 6]))); // [4, 5]
 */
export function repeat<T>(n: number, p: Parser<T>): Parser<T[]> {
  return (c) => {
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(p(c));
    return out;
  };
}

/**
 * Reads `count` bits packed into as few octets as they need, least significant bit first — AMQP packs
 * consecutive bit fields of a method this way (spec 4.2.5.2).
 * @example bits(3)(new Cursor(new Uint8Array([0b101]))); // [true, false, true]
 */
export function bits(count: number): Parser<boolean[]> {
  return (c) => {
    const out: boolean[] = [];
    let octet = 0;
    for (let i = 0; i < count; i++) {
      if (i % 8 === 0) octet = u8(c);
      out.push((octet & (1 << i % 8)) !== 0);
    }
    return out;
  };
}

/**
 * Runs `p` and requires that it consumed the whole input.
 * @example allConsuming(u8)(new Cursor(new Uint8Array([1, 2]))); // throws DecodeError TRAILING_BYTES
 */
export function allConsuming<T>(p: Parser<T>): Parser<T> {
  return (c) => {
    const v = p(c);
    if (c.pos !== c.end) throw new DecodeError("TRAILING_BYTES", `Cannot decode: ${c.end - c.pos} bytes left over`);
    return v;
  };
}

/**
 * Treats running out of input as an error: for input that is known to be whole (a frame payload).
 * @example complete(u32)(new Cursor(new Uint8Array([1]))); // throws DecodeError TRUNCATED
 */
export function complete<T>(p: Parser<T>): Parser<T> {
  return (c) => {
    try {
      return p(c);
    } catch (e) {
      if (e instanceof Incomplete) throw new DecodeError("TRUNCATED", `Cannot decode: input ends ${e.needed} bytes early`);
      throw e;
    }
  };
}

/** The streaming envelope's answer: a value and how many bytes it used, or how many more bytes it needs. */
export type Partial<T> = { done: true; value: T; consumed: number } | { done: false; needed: number };

/**
 * The streaming envelope: runs `p` on what has arrived so far. "Need more bytes" comes back as
 * `{ done: false }`; bad bytes still throw DecodeError.
 * @example
 * parsePartial(u32, new Uint8Array([0, 0])); // { done: false, needed: 2 }
 * parsePartial(u32, new Uint8Array([0, 0, 0, 5, 9])); // { done: true, value: 5, consumed: 4 }
 */
export function parsePartial<T>(p: Parser<T>, input: Uint8Array): Partial<T> {
  const c = new Cursor(input);
  try {
    const value = p(c);
    return { done: true, value, consumed: c.pos };
  } catch (e) {
    if (e instanceof Incomplete) return { done: false, needed: e.needed };
    throw e;
  }
}

/**
 * Parses a whole input: runs `p` under {@link complete} and {@link allConsuming}.
 * @example parseAll(u16, new Uint8Array([1, 0])); // 256
 */
export function parseAll<T>(p: Parser<T>, input: Uint8Array): T {
  return complete(allConsuming(p))(new Cursor(input));
}
