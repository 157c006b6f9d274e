/**
 * The incremental frame decoder: bytes in any chunking in, whole frames out.
 *
 * Input waits in a {@link ChunkQueue}. A frame that lies inside one chunk is decoded in place; only a frame
 * split across chunks is copied, once, into a buffer of its exact size.
 *
 * A frame's size is checked against `frameMax` as soon as its 7-byte header is in, so a peer declaring a
 * 4 GiB frame is refused before a byte of it is buffered. After a DecodeError the decoder stays failed: every
 * later call throws the same error, since the stream has lost its framing.
 */
import { ChunkQueue } from "../chunk-queue.ts";
import { Cursor } from "../cursor.ts";
import { DecodeError } from "../errors.ts";
import { decodeFramePayload, type Frame, FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD, FRAME_HEADER_SIZE, FRAME_OVERHEAD, PROTOCOL_HEADER } from "./frames.ts";

/** The frame_max used until one is negotiated: the client's default request (spec requires ≥ 4096). */
export const DEFAULT_FRAME_MAX = 131072;

export class FrameDecoder {
  /**
   * Largest frame accepted, header and frame-end included. Set it to the negotiated frame_max after tuning;
   * 0 means no limit other than 2^32 - 1.
   */
  frameMax: number;
  private readonly input = new ChunkQueue();
  /** Size of the frame whose header has been read but whose bytes have not all arrived; 0 when none. */
  private awaiting = 0;
  private failed: DecodeError | undefined;
  /** Cursor over the current head chunk, reused for every frame decoded in place. */
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
    return this.input.length;
  }

  /** Hands a chunk to the decoder. The decoder keeps a reference: do not modify the chunk afterwards. */
  push(chunk: Uint8Array): void {
    this.input.push(chunk);
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
    const input = this.input;
    const total = input.length;
    // The header of the frame being awaited was checked already: wait without looking at it again.
    if (total < this.awaiting || total < FRAME_HEADER_SIZE) return undefined;
    // A protocol header is 8 bytes, a frame header 7: a version-mismatch reply is detected below.
    const first = input.headChunk;
    let head = first;
    let at = input.headOffset;
    if (at + FRAME_HEADER_SIZE > first.length) {
      head = input.peek(FRAME_HEADER_SIZE);
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
    if (total < frameSize) {
      this.awaiting = frameSize;
      return undefined;
    }
    this.awaiting = 0;

    let c: Cursor;
    const offset = input.headOffset;
    if (offset + frameSize <= first.length) {
      if (this.cursor === undefined || this.cursor.bytes !== first) this.cursor = new Cursor(first);
      c = this.cursor;
      c.pos = offset + FRAME_HEADER_SIZE;
      c.end = offset + frameSize - 1;
    } else {
      c = new Cursor(input.peek(frameSize), FRAME_HEADER_SIZE, frameSize - 1);
    }
    const endOctet = c.bytes[c.end]!;
    if (endOctet !== FRAME_END) {
      throw new DecodeError("FRAME_END", `Cannot decode frame: frame-end octet is 0x${endOctet.toString(16)}, not 0xce (type ${type}, channel ${channel}, size ${size})`);
    }
    const frame = decodeFramePayload(type, channel, c);
    input.skip(frameSize);
    if (input.length === 0) this.cursor = undefined;
    return frame;
  }

  private protocolHeader(): Frame | undefined {
    if (this.input.length < PROTOCOL_HEADER.length) return undefined;
    const h = this.input.peek(PROTOCOL_HEADER.length);
    if (h[1] !== 0x4d || h[2] !== 0x51 || h[3] !== 0x50) {
      throw new DecodeError("FRAME_TYPE", "Cannot decode frame: unknown frame type 65 (0x41)");
    }
    this.input.skip(PROTOCOL_HEADER.length);
    return { type: "protocol-header", major: h[5]!, minor: h[6]!, revision: h[7]! };
  }
}
