/**
 * A growable output buffer, the context every serializer writes into (cookie-factory's `WriteContext`).
 *
 * Bytes are written into a slab; `finish()` hands out what was written since the last `finish()` as a
 * subarray of that slab and never writes those bytes again, so the caller owns them outright. Many small
 * outputs therefore share one allocation. When a slab fills up the writer moves what it has written to a
 * bigger one; once an output that needed a slab far above the normal size has been handed out, the writer
 * goes back to a normal slab, so one huge publish does not pin twice its size for the connection's life.
 *
 * `reserve(n)` + `patch*()` are cookie-factory's `back_to_the_buffer`: leave room for a length, write the
 * body, then go back and fill the length in — without computing the body's size first.
 */
import { EncodeError } from "./errors.ts";
import { encodeUtf8Into, utf8Length } from "./utf8.ts";
import type { Int64 } from "./parsers.ts";

const DEFAULT_SLAB = 64 * 1024;
const TWO_32 = 0x1_0000_0000;
/** A slab more than this many times `slabSize` is dropped once nothing in it is pending. */
const SHRINK_ABOVE = 4;

export class Writer {
  /** The current slab. */
  bytes: Uint8Array;
  view: DataView;
  /** Where the next byte goes. */
  pos: number;
  /** Where the output being built began (bytes before it were handed out by `finish`). */
  start: number;
  private readonly slabSize: number;

  /**
   * @example
   * const w = new Writer();
   * w.u8(1); w.u16(2);
   * w.finish(); // Uint8Array [1, 0, 2]
   */
  constructor(slabSize = DEFAULT_SLAB) {
    this.slabSize = slabSize;
    this.bytes = new Uint8Array(slabSize);
    this.view = new DataView(this.bytes.buffer);
    this.pos = 0;
    this.start = 0;
  }

  /** Bytes written since the last `finish()`. */
  get length(): number {
    return this.pos - this.start;
  }

  /**
   * Makes room for `n` more bytes. Moves the pending output to a new slab when the current one is too
   * small; positions returned by `reserve` are relative to `start`, so they survive the move.
   */
  ensure(n: number): void {
    // Every write calls this: keep it tiny so V8 inlines it, with the rare growth out of line.
    if (this.pos + n > this.bytes.length) this.grow(n);
  }

  private grow(n: number): void {
    const pending = this.pos - this.start;
    const size = Math.max(this.slabSize, (pending + n) * 2);
    const next = new Uint8Array(size);
    next.set(this.bytes.subarray(this.start, this.pos));
    this.bytes = next;
    this.view = new DataView(next.buffer);
    this.start = 0;
    this.pos = pending;
  }

  /**
   * Hands out everything written since the last call. The writer never touches those bytes again.
   * @example const w = new Writer(); w.u8(7); w.finish(); // Uint8Array [7]
   */
  finish(): Uint8Array {
    const out = this.bytes.subarray(this.start, this.pos);
    this.start = this.pos;
    if (this.bytes.length > this.slabSize * SHRINK_ABOVE) this.freshSlab();
    return out;
  }

  /** Drops everything written since the last `finish()`. */
  discard(): void {
    this.pos = this.start;
    if (this.bytes.length > this.slabSize * SHRINK_ABOVE) this.freshSlab();
  }

  /**
   * Starts over on a normal-sized slab; only called when nothing is pending. The old slab is never written
   * again (its handed-out bytes belong to their callers, and stay alive only as long as they hold them).
   * Fixes defect 7 of issue 8: after one 50 MiB publish the writer used to keep a 100 MiB slab for good.
   */
  private freshSlab(): void {
    this.bytes = new Uint8Array(this.slabSize);
    this.view = new DataView(this.bytes.buffer);
    this.start = 0;
    this.pos = 0;
  }

  u8(v: number): void {
    this.ensure(1);
    this.bytes[this.pos++] = v;
  }
  i8(v: number): void {
    this.ensure(1);
    this.view.setInt8(this.pos++, v);
  }
  u16(v: number): void {
    this.ensure(2);
    this.view.setUint16(this.pos, v);
    this.pos += 2;
  }
  i16(v: number): void {
    this.ensure(2);
    this.view.setInt16(this.pos, v);
    this.pos += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.view.setUint32(this.pos, v);
    this.pos += 4;
  }
  i32(v: number): void {
    this.ensure(4);
    this.view.setInt32(this.pos, v);
    this.pos += 4;
  }
  /** Unsigned 64-bit from a non-negative safe integer or a bigint in range. */
  u64(v: Int64): void {
    this.ensure(8);
    if (typeof v === "number") {
      if (!Number.isSafeInteger(v) || v < 0) throw new EncodeError(`Cannot encode ${v} as an unsigned 64-bit integer`);
      this.view.setUint32(this.pos, Math.floor(v / TWO_32));
      this.view.setUint32(this.pos + 4, v >>> 0);
    } else {
      if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new EncodeError(`Cannot encode ${v} as an unsigned 64-bit integer`);
      this.view.setBigUint64(this.pos, v);
    }
    this.pos += 8;
  }
  /** Signed 64-bit from a safe integer or a bigint in range. */
  i64(v: Int64): void {
    this.ensure(8);
    if (typeof v === "number") {
      if (!Number.isSafeInteger(v)) throw new EncodeError(`Cannot encode ${v} as a signed 64-bit integer`);
      this.view.setInt32(this.pos, Math.floor(v / TWO_32));
      this.view.setUint32(this.pos + 4, v >>> 0);
    } else {
      if (v < -0x8000_0000_0000_0000n || v > 0x7fff_ffff_ffff_ffffn) {
        throw new EncodeError(`Cannot encode ${v} as a signed 64-bit integer`);
      }
      this.view.setBigInt64(this.pos, v);
    }
    this.pos += 8;
  }
  f32(v: number): void {
    this.ensure(4);
    this.view.setFloat32(this.pos, v);
    this.pos += 4;
  }
  f64(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, v);
    this.pos += 8;
  }
  /** Raw bytes. */
  raw(v: Uint8Array): void {
    this.ensure(v.length);
    this.bytes.set(v, this.pos);
    this.pos += v.length;
  }
  /** UTF-8 with an octet length prefix (AMQP shortstr); over 255 bytes is an EncodeError. */
  shortString(s: string): void {
    // A string of n UTF-16 units is at most 3n bytes of UTF-8: write first, then check the real length.
    this.ensure(1 + s.length * 3);
    const n = encodeUtf8Into(this.bytes, this.pos + 1, s);
    if (n > 255) throw new EncodeError(`Cannot encode short string: ${n} bytes is over the 255-byte limit`);
    this.bytes[this.pos] = n;
    this.pos += 1 + n;
  }
  /** UTF-8 with a 32-bit length prefix. */
  longString(s: string): void {
    const n = s.length <= 64 ? -1 : utf8Length(s);
    this.ensure(4 + (n < 0 ? s.length * 3 : n));
    const written = encodeUtf8Into(this.bytes, this.pos + 4, s);
    this.view.setUint32(this.pos, written);
    this.pos += 4 + written;
  }
  /** Raw bytes with a 32-bit length prefix. */
  longBytes(v: Uint8Array): void {
    this.ensure(4 + v.length);
    this.view.setUint32(this.pos, v.length);
    this.bytes.set(v, this.pos + 4);
    this.pos += 4 + v.length;
  }

  /**
   * Leaves `n` bytes to be filled in later; returns their position for `patch*`.
   * @example
   * const at = w.reserve(4); w.shortString("body"); w.patchU32(at, w.length - at - 4);
   */
  reserve(n: number): number {
    this.ensure(n);
    const at = this.pos - this.start;
    this.pos += n;
    return at;
  }
  /** Fills a reserved octet. */
  patchU8(at: number, v: number): void {
    this.bytes[this.start + at] = v;
  }
  /** Fills a reserved 16-bit slot. */
  patchU16(at: number, v: number): void {
    this.view.setUint16(this.start + at, v);
  }
  /** Fills a reserved 32-bit slot. */
  patchU32(at: number, v: number): void {
    this.view.setUint32(this.start + at, v);
  }
}
