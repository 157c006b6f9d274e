/**
 * The parse position over a byte array: the input every parser takes.
 *
 * nom threads `(rest, value)` through every step; in V8 allocating a result per step costs more than the
 * parsing, so warren's parsers take a mutable cursor instead and return only the value. A cursor never reads
 * past `end`: a read that would is an {@link Incomplete}.
 *
 * The DataView honours `byteOffset` — a view built from `u8.buffer` alone reads someone else's bytes when
 * `u8` is a slice of a pooled buffer.
 */
import { Incomplete } from "./errors.ts";

export class Cursor {
  bytes: Uint8Array;
  /** Next byte to read. */
  pos: number;
  /** One past the last readable byte. */
  end: number;
  #view: DataView | undefined;

  /**
   * @example
   * const c = new Cursor(new Uint8Array([1, 2, 3]));
   * u8(c); // 1, c.pos === 1
   */
  constructor(bytes: Uint8Array, pos = 0, end = bytes.length) {
    this.bytes = bytes;
    this.pos = pos;
    this.end = end;
  }

  /**
   * A DataView over `bytes`, made on first use: the common reads (octets, shorts, longs, strings) work on
   * the bytes directly, and a cursor per small read chunk should not pay for a view it never uses.
   */
  get view(): DataView {
    const b = this.bytes;
    return (this.#view ??= new DataView(b.buffer, b.byteOffset, b.byteLength));
  }

  /** Bytes left before `end`. */
  get remaining(): number {
    return this.end - this.pos;
  }

  /**
   * Throws {@link Incomplete} unless `n` more bytes are readable.
   * @example
   * new Cursor(new Uint8Array(2)).need(4); // throws Incomplete { needed: 2 }
   */
  need(n: number): void {
    if (this.pos + n > this.end) throw new Incomplete(this.pos + n - this.end);
  }
}
