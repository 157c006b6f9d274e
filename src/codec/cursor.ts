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
  view: DataView;
  /** Next byte to read. */
  pos: number;
  /** One past the last readable byte. */
  end: number;

  /**
   * @example
   * const c = new Cursor(new Uint8Array([1, 2, 3]));
   * u8(c); // 1, c.pos === 1
   */
  constructor(bytes: Uint8Array, pos = 0, end = bytes.length) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = pos;
    this.end = end;
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
