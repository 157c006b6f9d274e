/**
 * AMQP frames (spec 4.2.3): `type:u8 channel:u16 size:u32 payload[size] frame-end:0xCE`.
 *
 * Encoders write whole frames into a {@link Writer}, reserving the size and patching it once the payload is
 * written. {@link encodeContent} writes a publish's method, header and body frames in one go, so nothing can
 * slip between them — the spec forbids interleaving frames of different content on one connection's channel,
 * and doing it in one call makes that impossible by construction.
 *
 * {@link decodeFrame} turns one complete frame's bytes into a {@link Frame}; the streaming part (bytes in any
 * chunking) is {@link FrameDecoder} in frame-decoder.ts.
 */
import { Cursor } from "../cursor.ts";
import { DecodeError, EncodeError, Incomplete } from "../errors.ts";
import { type Int64, u16, u64 } from "../parsers.ts";
import type { Writer } from "../writer.ts";
import { type BasicProperties, decodeBasicProperties, encodeBasicProperties, type PublishProperties } from "./properties.ts";
import { decodeMethodPayload, encodeMethodPayload, type Method } from "./methods.generated.ts";

export const FRAME_METHOD = 1;
export const FRAME_HEADER = 2;
export const FRAME_BODY = 3;
export const FRAME_HEARTBEAT = 8;
export const FRAME_END = 0xce;
/** type + channel + size. */
export const FRAME_HEADER_SIZE = 7;
/** Header plus the frame-end octet: what a frame costs beyond its payload. */
export const FRAME_OVERHEAD = 8;
/** Peers must accept frames this large before tuning (spec constant frame-min-size). */
export const FRAME_MIN_SIZE = 4096;

/** "AMQP" 0 0 9 1: what a client sends first, and what a server sends back when it wants another version. */
export const PROTOCOL_HEADER: Uint8Array = Uint8Array.of(0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1);

/** A method frame: one method on one channel. */
export interface MethodFrame {
  readonly type: 1;
  readonly channel: number;
  readonly method: Method;
}
/** A content header frame: the class, the total body size and the properties of the content that follows. */
export interface HeaderFrame {
  readonly type: 2;
  readonly channel: number;
  readonly classId: number;
  readonly bodySize: Int64;
  readonly properties: BasicProperties;
}
/** A content body frame. `payload` is a view into the decoder's input; copy it to keep it apart from that. */
export interface BodyFrame {
  readonly type: 3;
  readonly channel: number;
  readonly payload: Uint8Array;
}
/** A heartbeat frame (always channel 0, no payload). */
export interface HeartbeatFrame {
  readonly type: 8;
  readonly channel: 0;
}
/**
 * A protocol header where a frame was expected: a server that does not speak this version sends its own
 * version and closes (spec 4.2.2).
 */
export interface ProtocolHeaderFrame {
  readonly type: "protocol-header";
  readonly major: number;
  readonly minor: number;
  readonly revision: number;
}
export type Frame = MethodFrame | HeaderFrame | BodyFrame | HeartbeatFrame | ProtocolHeaderFrame;

// ---------------------------------------------------------------------------------------------------------
// Encoding

/**
 * Writes a method frame. With `frameMax`, a frame larger than that throws EncodeError (after writing it: roll
 * back with the writer's position if needed).
 * @example
 * encodeMethodFrame(w, 0, { name: "connection.close-ok", classId: 10, methodId: 51 });
 * // [1, 0, 0, 0, 0, 0, 4, 0, 10, 0, 51, 0xce]
 */
export function encodeMethodFrame(w: Writer, channel: number, method: Method, frameMax = 0): void {
  w.ensure(64);
  w.u8(FRAME_METHOD);
  w.u16(channel);
  const at = w.reserve(4);
  encodeMethodPayload(w, method);
  const size = w.length - at - 4;
  w.patchU32(at, size);
  w.u8(FRAME_END);
  checkFrameMax(size, frameMax, method.name);
}

/**
 * A method or header frame cannot be split: one over frame_max would make the peer close the connection
 * (501), so refuse it here. The caller rolls back what was written.
 */
function checkFrameMax(payloadSize: number, frameMax: number, what: string): void {
  if (frameMax > 0 && payloadSize + FRAME_OVERHEAD > frameMax) {
    throw new EncodeError(`Cannot encode ${what}: its frame is ${payloadSize + FRAME_OVERHEAD} bytes, over frame_max ${frameMax}`);
  }
}

/**
 * Writes a content header frame.
 * @example encodeHeaderFrame(w, 1, 60, 5, { contentType: "text/plain" });
 */
export function encodeHeaderFrame(w: Writer, channel: number, classId: number, bodySize: Int64, properties: PublishProperties, frameMax = 0): void {
  w.ensure(64);
  w.u8(FRAME_HEADER);
  w.u16(channel);
  const at = w.reserve(4);
  w.u16(classId);
  w.u16(0); // weight, unused
  w.u64(bodySize);
  encodeBasicProperties(w, properties);
  const size = w.length - at - 4;
  w.patchU32(at, size);
  w.u8(FRAME_END);
  checkFrameMax(size, frameMax, "content header");
}

/**
 * Writes `body` as body frames of at most `frameMax` bytes each (payload `frameMax - 8`). An empty body
 * writes no frame at all: the header's body size of 0 says everything.
 * @example encodeBodyFrames(w, 1, new Uint8Array(10000), 4096); // 3 frames: 4088 + 4088 + 1824 bytes
 */
export function encodeBodyFrames(w: Writer, channel: number, body: Uint8Array, frameMax: number): void {
  if (frameMax < FRAME_OVERHEAD + 1) throw new EncodeError(`Cannot split a body into frames of ${frameMax} bytes`);
  const chunk = frameMax - FRAME_OVERHEAD;
  const frames = Math.ceil(body.length / chunk);
  w.ensure(body.length + frames * FRAME_OVERHEAD);
  for (let off = 0; off < body.length; off += chunk) {
    const part = body.subarray(off, Math.min(off + chunk, body.length));
    w.u8(FRAME_BODY);
    w.u16(channel);
    w.u32(part.length);
    w.raw(part);
    w.u8(FRAME_END);
  }
}

/**
 * Writes a whole message: the content-bearing method, its header and its body frames. Nothing is left
 * written if it throws (e.g. properties too large for one frame of `frameMax`).
 * @example encodeContent(w, 1, publishMethod, { deliveryMode: 2 }, body, 131072);
 */
export function encodeContent(w: Writer, channel: number, method: Method, properties: PublishProperties, body: Uint8Array, frameMax: number): void {
  if (!(body instanceof Uint8Array)) {
    // An untyped caller's object or string would otherwise fail deep inside ("Cannot convert undefined to a BigInt").
    throw new EncodeError(`Cannot encode content: the body must be a Uint8Array, not ${body === null ? "null" : typeof body}`);
  }
  const start = w.length;
  try {
    encodeMethodFrame(w, channel, method, frameMax);
    encodeHeaderFrame(w, channel, method.classId, body.length, properties, frameMax);
    encodeBodyFrames(w, channel, body, frameMax);
  } catch (e) {
    w.pos = w.start + start; // leave no half-written message behind
    throw e;
  }
}

/** Writes a heartbeat frame. @example encodeHeartbeatFrame(w); // [8, 0, 0, 0, 0, 0, 0, 0xce] */
export function encodeHeartbeatFrame(w: Writer): void {
  w.ensure(FRAME_OVERHEAD);
  w.u8(FRAME_HEARTBEAT);
  w.u16(0);
  w.u32(0);
  w.u8(FRAME_END);
}

// ---------------------------------------------------------------------------------------------------------
// Decoding

/**
 * Runs `decode` over a whole frame payload: running out of bytes is TRUNCATED (the payload is known to be
 * whole) and bytes left over are TRAILING_BYTES. The same contract as `complete(allConsuming(p))`, written
 * out because this runs for every frame.
 */
function whole<T>(c: Cursor, decode: (c: Cursor) => T, what: string): T {
  let v: T;
  try {
    v = decode(c);
  } catch (e) {
    if (e instanceof Incomplete) throw new DecodeError("TRUNCATED", `Cannot decode ${what}: the frame ends ${e.needed} bytes early`);
    throw e;
  }
  if (c.pos !== c.end) throw new DecodeError("TRAILING_BYTES", `Cannot decode ${what}: ${c.end - c.pos} bytes left over in the frame`);
  return v;
}

/**
 * Decodes the payload of one frame whose header has been read: `c` spans exactly the payload (pos to end).
 * Throws DecodeError for anything malformed.
 */
export function decodeFramePayload(type: number, channel: number, c: Cursor): Frame {
  switch (type) {
    case FRAME_METHOD:
      return { type: FRAME_METHOD, channel, method: whole(c, decodeMethodPayload, "method frame") };
    case FRAME_HEADER: {
      if (c.end - c.pos < 14) throw new DecodeError("TRUNCATED", `Cannot decode content header: ${c.end - c.pos} bytes is too short`);
      const classId = u16(c);
      u16(c); // weight, unused
      const bodySize = u64(c);
      if (classId !== 60) throw new DecodeError("BAD_VALUE", `Cannot decode content header: class ${classId} carries no content`);
      return { type: FRAME_HEADER, channel, classId, bodySize, properties: whole(c, decodeBasicProperties, "content header") };
    }
    case FRAME_BODY: {
      // Not subarray(): on a Node Buffer that goes through Buffer's species constructor and costs far more.
      const payload = new Uint8Array(c.bytes.buffer, c.bytes.byteOffset + c.pos, c.end - c.pos);
      c.pos = c.end;
      return { type: FRAME_BODY, channel, payload };
    }
    case FRAME_HEARTBEAT:
      if (channel !== 0 || c.end !== c.pos) {
        throw new DecodeError("FRAME_INVALID", `Cannot decode heartbeat frame: channel ${channel}, ${c.end - c.pos}-byte payload (must be 0 and empty)`);
      }
      return { type: FRAME_HEARTBEAT, channel: 0 };
    default:
      throw new DecodeError("FRAME_TYPE", `Cannot decode frame: unknown frame type ${type}`);
  }
}

/**
 * Decodes one whole frame from `bytes` (which must hold exactly one frame).
 * @example decodeFrame(Uint8Array.of(8, 0, 0, 0, 0, 0, 0, 0xce)); // { type: 8, channel: 0 }
 */
export function decodeFrame(bytes: Uint8Array): Frame {
  const c = new Cursor(bytes);
  if (bytes.length < FRAME_OVERHEAD) throw new DecodeError("TRUNCATED", `Cannot decode frame: ${bytes.length} bytes is shorter than a frame header`);
  const type = bytes[0]!;
  const channel = c.view.getUint16(1);
  const size = c.view.getUint32(3);
  if (size + FRAME_OVERHEAD !== bytes.length) {
    throw new DecodeError("TRUNCATED", `Cannot decode frame: it declares a ${size}-byte payload but ${bytes.length - FRAME_OVERHEAD} bytes are given`);
  }
  if (bytes[bytes.length - 1] !== FRAME_END) {
    throw new DecodeError("FRAME_END", `Cannot decode frame: frame-end octet is 0x${bytes[bytes.length - 1]!.toString(16)}, not 0xce`);
  }
  c.pos = FRAME_HEADER_SIZE;
  c.end = bytes.length - 1;
  return decodeFramePayload(type, channel, c);
}
