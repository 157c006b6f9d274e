/**
 * The incremental frame decoder: bytes in any chunking in, whole frames out.
 *
 * It keeps a list of the chunks it was given (never one growing buffer, which would make reassembly
 * quadratic) and an offset into the first. A frame that lies inside one chunk is decoded in place; only a
 * frame split across chunks is copied, once, into a buffer of its exact size.
 *
 * A frame's size is checked against `frameMax` as soon as its 7-byte header is in, so a peer declaring a
 * 4 GiB frame is refused before a byte of it is buffered. After a DecodeError the decoder stays failed: every
 * later call throws the same error, since the stream has lost its framing.
 */
import { Cursor } from "../cursor.ts";
import { DecodeError } from "../errors.ts";
import { decodeFramePayload, type Frame, FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD, FRAME_HEADER_SIZE, FRAME_OVERHEAD, PROTOCOL_HEADER } from "./frames.ts";

/** The frame_max used until one is negotiated: the client's default request (spec requires ≥ 4096). */
export const DEFAULT_FRAME_MAX = 131072;

const EMPTY = new Uint8Array(0);

export class FrameDecoder {
  /**
   * Largest frame accepted, header and frame-end included. Set it to the negotiated frame_max after tuning;
   * 0 means no limit other than 2^32 - 1.
   */
  frameMax: number;
  private chunks: Uint8Array[] = [];
  /**
   * Index of the first unconsumed chunk. Consumed chunks are dropped by moving this index, not by
   * `shift()`: shifting a long list once per chunk made a frame in many tiny chunks quadratic (found by the
   * fuzzer, see test/codec/fuzz-regressions.test.ts).
   */
  private head = 0;
  /** Read position inside `chunks[head]`. */
  private offset = 0;
  private total = 0;
  /** Size of the frame whose header has been read but whose bytes have not all arrived; 0 when none. */
  private awaiting = 0;
  private failed: DecodeError | undefined;
  /** Cursor over `chunks[0]`, reused for every frame decoded in place. */
  private cursor: Cursor | undefined;

  /**
   * @example
   * const d = new FrameDecoder();
   * d.push(bytes.subarray(0, 3)); d.next(); // undefined: need more
   * d.push(bytes.subarray(3)); d.next();    // { type: 1, channel: 0, method: { name: "connection.start", … } }
   */
  constructor(options: { frameMax?: number } = {}) {
    this.frameMax = options.frameMax ?? DEFAULT_FRAME_MAX;
  }

  /** Bytes received and not yet returned as frames. */
  get buffered(): number {
    return this.total;
  }

  /** Hands a chunk to the decoder. The decoder keeps a reference: do not modify the chunk afterwards. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /**
   * The next whole frame, or `undefined` when more bytes are needed. Throws DecodeError for a malformed
   * stream.
   */
  next(): Frame | undefined {
    if (this.failed) throw this.failed;
    try {
      return this.decodeNext();
    } catch (e) {
      this.failed =
        e instanceof DecodeError ? e : new DecodeError("FRAME_INVALID", `Cannot decode frame: ${e instanceof Error ? e.message : String(e)}`);
      throw this.failed;
    }
  }

  private decodeNext(): Frame | undefined {
    // The header of the frame being awaited was checked already: wait without looking at it again.
    if (this.total < this.awaiting) return undefined;
    if (this.total < FRAME_HEADER_SIZE) {
      // A protocol header is 8 bytes, a frame header 7: a version-mismatch reply is detected below.
      return undefined;
    }
    const first = this.chunks[this.head]!;
    let head: Uint8Array;
    let at: number;
    if (this.offset + FRAME_HEADER_SIZE <= first.length) {
      head = first;
      at = this.offset;
    } else {
      head = this.peek(FRAME_HEADER_SIZE);
      at = 0;
    }
    const type = head[at]!;
    if (type === PROTOCOL_HEADER[0]) return this.protocolHeader();
    if (type !== FRAME_METHOD && type !== FRAME_HEADER && type !== FRAME_BODY && type !== FRAME_HEARTBEAT) {
      // Say so now: waiting for the "size" of something that is not AMQP would only stall.
      throw new DecodeError("FRAME_TYPE", `Cannot decode frame: unknown frame type ${type} — is the peer an AMQP 0-9-1 server?`);
    }
    const channel = (head[at + 1]! << 8) | head[at + 2]!;
    const size = ((head[at + 3]! << 24) >>> 0) + ((head[at + 4]! << 16) | (head[at + 5]! << 8) | head[at + 6]!);
    const frameSize = size + FRAME_OVERHEAD;
    if (this.frameMax > 0 && frameSize > this.frameMax) {
      throw new DecodeError("FRAME_TOO_LARGE", `Cannot decode frame: ${frameSize} bytes is over frame_max ${this.frameMax}`);
    }
    if (this.total < frameSize) {
      this.awaiting = frameSize;
      return undefined;
    }
    this.awaiting = 0;

    let c: Cursor;
    if (this.offset + frameSize <= first.length) {
      if (this.cursor === undefined || this.cursor.bytes !== first) this.cursor = new Cursor(first);
      c = this.cursor;
      c.pos = this.offset + FRAME_HEADER_SIZE;
      c.end = this.offset + frameSize - 1;
    } else {
      const whole = this.peek(frameSize);
      c = new Cursor(whole, FRAME_HEADER_SIZE, frameSize - 1);
    }
    const endOctet = c.bytes[c.end]!;
    if (endOctet !== FRAME_END) {
      throw new DecodeError("FRAME_END", `Cannot decode frame: frame-end octet is 0x${endOctet.toString(16)}, not 0xce (type ${type}, channel ${channel}, size ${size})`);
    }
    const frame = decodeFramePayload(type, channel, c);
    this.consume(frameSize);
    return frame;
  }

  private protocolHeader(): Frame | undefined {
    if (this.total < PROTOCOL_HEADER.length) return undefined;
    const h = this.peek(PROTOCOL_HEADER.length);
    if (h[1] !== 0x4d || h[2] !== 0x51 || h[3] !== 0x50) {
      throw new DecodeError("FRAME_TYPE", "Cannot decode frame: unknown frame type 65 (0x41)");
    }
    this.consume(PROTOCOL_HEADER.length);
    return { type: "protocol-header", major: h[5]!, minor: h[6]!, revision: h[7]! };
  }

  /** Copies the next `n` buffered bytes (spanning chunks) into one array, without consuming them. */
  private peek(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    let off = this.offset;
    for (let i = this.head; filled < n; i++) {
      const chunk = this.chunks[i]!;
      const take = Math.min(chunk.length - off, n - filled);
      out.set(chunk.subarray(off, off + take), filled);
      filled += take;
      off = 0;
    }
    return out;
  }

  private consume(n: number): void {
    this.total -= n;
    let off = this.offset + n;
    const chunks = this.chunks;
    while (this.head < chunks.length && off >= chunks[this.head]!.length) {
      off -= chunks[this.head]!.length;
      chunks[this.head++] = EMPTY; // let the consumed chunk be collected
    }
    this.offset = off;
    if (this.head === chunks.length) {
      this.chunks = [];
      this.head = 0;
      this.cursor = undefined;
    } else if (this.head > 64 && this.head * 2 > chunks.length) {
      this.chunks = chunks.slice(this.head);
      this.head = 0;
    }
  }
}
