/**
 * Serializers: functions that write a value into a {@link Writer}, and combinators that build them (the
 * cookie-factory half of the vocabulary). `lengthPrefixed` is `back_to_the_buffer`: reserve the length,
 * write the body, patch the length.
 */
import type { Writer } from "./writer.ts";

/** A serializer of `T`. */
export type Serializer<T> = (w: Writer, v: T) => void;

/** @example const w = new Writer(); writeU8(w, 7); w.finish(); // [7] */
export const writeU8: Serializer<number> = (w, v) => w.u8(v);
/** @example writeU16(w, 258); // [1, 2] */
export const writeU16: Serializer<number> = (w, v) => w.u16(v);
/** @example writeU32(w, 1); // [0, 0, 0, 1] */
export const writeU32: Serializer<number> = (w, v) => w.u32(v);
/** @example writeShortString(w, "hi"); // [2, 104, 105] */
export const writeShortString: Serializer<string> = (w, v) => w.shortString(v);
/** @example writeLongBytes(w, new Uint8Array([9])); // [0, 0, 0, 1, 9] */
export const writeLongBytes: Serializer<Uint8Array> = (w, v) => w.longBytes(v);

/**
 * Writes a value after transforming it (the serializer side of `map`).
 * @example contramap(writeU8, (b: boolean) => (b ? 1 : 0))(w, true); // [1]
 */
export function contramap<A, B>(s: Serializer<B>, f: (a: A) => B): Serializer<A> {
  return (w, v) => s(w, f(v));
}

/**
 * Writes the parts of a tuple in order.
 * @example writeTuple(writeU8, writeU16)(w, [1, 2]); // [1, 0, 2]
 */
export function writeTuple<T extends unknown[]>(...ss: { [K in keyof T]: Serializer<T[K]> }): Serializer<T> {
  return (w, v) => {
    for (let i = 0; i < ss.length; i++) (ss[i] as Serializer<unknown>)(w, v[i]);
  };
}

/**
 * Writes every element of an array with `s`.
 * @example writeMany(writeU8)(w, [1, 2]); // [1, 2]
 */
export function writeMany<T>(s: Serializer<T>): Serializer<readonly T[]> {
  return (w, vs) => {
    for (const v of vs) s(w, v);
  };
}

/**
 * Writes a length prefix of `lengthSize` bytes (1, 2 or 4) followed by `s`'s output, reserving the prefix and
 * patching it afterwards, so the body is written once without computing its size first.
 * @example lengthPrefixed(4, writeShortString)(w, "hi"); // [0, 0, 0, 3, 2, 104, 105]
 */
export function lengthPrefixed<T>(lengthSize: 1 | 2 | 4, s: Serializer<T>): Serializer<T> {
  return (w, v) => {
    const at = w.reserve(lengthSize);
    s(w, v);
    const n = w.length - at - lengthSize;
    if (lengthSize === 1) w.patchU8(at, n);
    else if (lengthSize === 2) w.patchU16(at, n);
    else w.patchU32(at, n);
  };
}

/**
 * Packs booleans into octets, least significant bit first (the inverse of the `bits` parser).
 * @example writeBits(w, [true, false, true]); // [0b101]
 */
export function writeBits(w: Writer, flags: readonly boolean[]): void {
  let octet = 0;
  for (let i = 0; i < flags.length; i++) {
    if (flags[i]) octet |= 1 << i % 8;
    if (i % 8 === 7 || i === flags.length - 1) {
      w.u8(octet);
      octet = 0;
    }
  }
}
