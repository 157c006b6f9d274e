/**
 * WebSocket framing (RFC 6455 section 5), built from warren's own codec combinators: the second binary
 * protocol on `warren/codec`, after AMQP 0-9-1.
 *
 *      0                   1                   2                   3
 *     +-+-+-+-+-------+-+-------------+-------------------------------+
 *     |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
 *     |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
 *     |N|V|V|V|       |S|             |   (if payload len==126/127)   |
 *     +-+-+-+-+-------+-+-------------+-------------------------------+
 *     |     Masking-key (0 or 4 bytes)  |          Payload Data ...    |
 *     +---------------------------------+------------------------------+
 *
 * - {@link wsFrameHeader} and {@link wsFrame} are parsers (`(c: Cursor) => T`): out of input is
 *   {@link Incomplete} (the streaming envelope `parsePartial` turns it into `{ done: false }`), bad bytes are a
 *   {@link WsProtocolError} carrying the close code the connection must be failed with.
 * - {@link WsFrameDecoder} is the streaming decoder: chunks in any split, whole frames out. It keeps a chunk
 *   list (never one growing buffer) and checks a frame's header — its length above all — as soon as the
 *   header is in, so a peer announcing a 2^63-byte frame is refused before a byte of it is buffered.
 * - {@link encodeWsFrame} writes a frame into a {@link Writer}, masking it when given a key.
 *
 * Invariants the tests pin down: `parse(encode(f))` is `f` for every valid frame; the decoder returns the
 * same frames for any chunking of the same bytes; any input is either accepted, incomplete, or a
 * WsProtocolError — nothing else escapes. The parser is strict where the RFC says MUST: RSV bits without an
 * extension, reserved opcodes, fragmented or long control frames, a 64-bit length with its top bit set and
 * a length not in its minimal encoding ("the minimal number of bytes MUST be used", 5.2) all fail.
 */
import { ChunkQueue } from "../codec/chunk-queue.ts";
import type { Cursor } from "../codec/cursor.ts";
import { EncodeError } from "../codec/errors.ts";
import { type Parser, parsePartial, takeBytes, u16, u64, u8 } from "../codec/parsers.ts";
import { decodeUtf8, encodeUtf8 } from "../codec/utf8.ts";
import type { Writer } from "../codec/writer.ts";

/** Frame opcodes (RFC 6455 5.2); 3–7 and 11–15 are reserved and rejected. */
export const WsOpcode = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;
export type WsOpcode = (typeof WsOpcode)[keyof typeof WsOpcode];

/** Close status codes (RFC 6455 7.4.1, and 1014 from the IANA registry). */
export const WsCloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  /** Reserved: "no status code was present". Never sent in a close frame. */
  NO_STATUS: 1005,
  /** Reserved: "closed without a close frame". Never sent in a close frame. */
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  /** The server, acting as a gateway, got an invalid response (here: the upstream failed). */
  BAD_GATEWAY: 1014,
} as const;

/** Stable codes of {@link WsProtocolError}, each with the close code that fails the connection. */
export const WsErrorCode = {
  /** An RSV bit is set but no extension was negotiated (5.2). */
  RESERVED_BITS: "RESERVED_BITS",
  /** A reserved opcode (3–7, 11–15). */
  BAD_OPCODE: "BAD_OPCODE",
  /** A client frame without a mask: "the server MUST close the connection" (5.1). */
  UNMASKED: "UNMASKED",
  /** A server frame with a mask: "the client MUST close the connection" (5.1). */
  MASKED: "MASKED",
  /** A control frame that is fragmented or has more than 125 bytes of payload (5.5). */
  BAD_CONTROL_FRAME: "BAD_CONTROL_FRAME",
  /** A payload length not in its shortest form, or a 64-bit length with its top bit set (5.2). */
  BAD_LENGTH: "BAD_LENGTH",
  /** A frame or a message larger than the limit. */
  TOO_BIG: "TOO_BIG",
  /** A continuation frame with no message to continue, or a new message before the last one ended (5.4). */
  BAD_FRAGMENTATION: "BAD_FRAGMENTATION",
  /** A close frame with a 1-byte payload or a status code no endpoint may send (5.5.1, 7.4). */
  BAD_CLOSE_FRAME: "BAD_CLOSE_FRAME",
  /** Text where the endpoint accepts only binary (or vice versa). */
  UNSUPPORTED_DATA: "UNSUPPORTED_DATA",
  /** Text (or a close reason) that is not valid UTF-8 (8.1). */
  INVALID_UTF8: "INVALID_UTF8",
} as const;
export type WsErrorCode = (typeof WsErrorCode)[keyof typeof WsErrorCode];

const CLOSE_CODE: Record<WsErrorCode, number> = {
  RESERVED_BITS: WsCloseCode.PROTOCOL_ERROR,
  BAD_OPCODE: WsCloseCode.PROTOCOL_ERROR,
  UNMASKED: WsCloseCode.PROTOCOL_ERROR,
  MASKED: WsCloseCode.PROTOCOL_ERROR,
  BAD_CONTROL_FRAME: WsCloseCode.PROTOCOL_ERROR,
  BAD_LENGTH: WsCloseCode.PROTOCOL_ERROR,
  TOO_BIG: WsCloseCode.MESSAGE_TOO_BIG,
  BAD_FRAGMENTATION: WsCloseCode.PROTOCOL_ERROR,
  BAD_CLOSE_FRAME: WsCloseCode.PROTOCOL_ERROR,
  UNSUPPORTED_DATA: WsCloseCode.UNSUPPORTED_DATA,
  INVALID_UTF8: WsCloseCode.INVALID_PAYLOAD,
};

/**
 * The peer broke RFC 6455. `closeCode` is the status to fail the connection with (7.1.7).
 * @example
 * try { decoder.next(); } catch (e) { if (e instanceof WsProtocolError) sendClose(e.closeCode, e.message); }
 */
export class WsProtocolError extends Error {
  override readonly name = "WsProtocolError";
  readonly code: WsErrorCode;
  readonly closeCode: number;
  constructor(code: WsErrorCode, message: string) {
    super(message);
    this.code = code;
    this.closeCode = CLOSE_CODE[code];
  }
}

/** One frame, payload unmasked. */
export interface WsFrame {
  readonly fin: boolean;
  readonly opcode: WsOpcode;
  /** The 4-byte masking key the frame carried, or undefined for an unmasked frame. */
  readonly mask: Uint8Array | undefined;
  /** The application data, already unmasked. A fresh copy: it shares no memory with the input. */
  readonly payload: Uint8Array;
}

/** A frame header: everything before the payload. */
export interface WsFrameHeader {
  readonly fin: boolean;
  readonly opcode: WsOpcode;
  readonly mask: Uint8Array | undefined;
  /** Payload length in bytes. */
  readonly length: number;
}

export interface WsFrameOptions {
  /** Largest payload accepted, in bytes; a longer one is a TOO_BIG error (close 1009). Default 1 MiB. */
  maxPayload?: number;
  /**
   * "required": the reader is a server (client frames MUST be masked); "forbidden": the reader is a client
   * (server frames MUST NOT be). Default "any", for tests and tools.
   */
  mask?: "required" | "forbidden" | "any";
}

export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** The longest header: 2 bytes + a 64-bit length + a masking key. */
export const MAX_HEADER_SIZE = 14;

function isOpcode(n: number): n is WsOpcode {
  return n <= 2 || (n >= 8 && n <= 10);
}

/** True for close, ping and pong (opcodes with the high bit set, 5.5). */
export function isControl(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}

/**
 * Reads the payload length that follows the 7-bit field: 126 announces a 16-bit length, 127 a 64-bit one
 * (5.2). Checked against `max` before any payload byte is needed.
 * @example readPayloadLength(new Cursor(new Uint8Array([0x01, 0x00])), 126, 1 << 20); // 256
 */
export function readPayloadLength(c: Cursor, len7: number, max: number): number {
  let n: number;
  if (len7 < 126) n = len7;
  else if (len7 === 126) {
    n = u16(c);
    if (n < 126) throw new WsProtocolError("BAD_LENGTH", `Invalid WebSocket frame: length ${n} sent in the 16-bit form`);
  } else {
    const v = u64(c);
    if (typeof v === "bigint") {
      if (v >= 0x8000_0000_0000_0000n) throw new WsProtocolError("BAD_LENGTH", "Invalid WebSocket frame: 64-bit length with its most significant bit set");
      throw new WsProtocolError("TOO_BIG", `WebSocket frame too big: ${v} bytes is over the ${max}-byte limit`);
    }
    if (v < 0x1_0000) throw new WsProtocolError("BAD_LENGTH", `Invalid WebSocket frame: length ${v} sent in the 64-bit form`);
    n = v;
  }
  if (n > max) throw new WsProtocolError("TOO_BIG", `WebSocket frame too big: ${n} bytes is over the ${max}-byte limit`);
  return n;
}

/** The 4-byte masking key. @example maskingKey(new Cursor(new Uint8Array([1, 2, 3, 4]))); // Uint8Array [1, 2, 3, 4] */
export const maskingKey: Parser<Uint8Array> = (c) => takeBytes(c, 4);

/**
 * Parses a frame header. All checks that need only the header happen here, so a bad frame fails before its
 * payload arrives.
 * @example
 * wsFrameHeader()(new Cursor(new Uint8Array([0x82, 0x05]))); // { fin: true, opcode: 2, mask: undefined, length: 5 }
 */
export function wsFrameHeader(options: WsFrameOptions = {}): Parser<WsFrameHeader> {
  const max = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
  const maskPolicy = options.mask ?? "any";
  return (c) => {
    const b0 = u8(c);
    const b1 = u8(c);
    const fin = (b0 & 0x80) !== 0;
    if ((b0 & 0x70) !== 0) throw new WsProtocolError("RESERVED_BITS", `Invalid WebSocket frame: RSV bits 0x${(b0 & 0x70).toString(16)} set without a negotiated extension`);
    const opcode = b0 & 0x0f;
    if (!isOpcode(opcode)) throw new WsProtocolError("BAD_OPCODE", `Invalid WebSocket frame: reserved opcode 0x${opcode.toString(16)}`);
    const masked = (b1 & 0x80) !== 0;
    if (!masked && maskPolicy === "required") throw new WsProtocolError("UNMASKED", "Invalid WebSocket frame: a client frame must be masked");
    if (masked && maskPolicy === "forbidden") throw new WsProtocolError("MASKED", "Invalid WebSocket frame: a server frame must not be masked");
    const len7 = b1 & 0x7f;
    if (isControl(opcode)) {
      if (!fin) throw new WsProtocolError("BAD_CONTROL_FRAME", `Invalid WebSocket frame: fragmented control frame (opcode 0x${opcode.toString(16)})`);
      if (len7 > 125) throw new WsProtocolError("BAD_CONTROL_FRAME", "Invalid WebSocket frame: control frame payload over 125 bytes");
    }
    const length = readPayloadLength(c, len7, max);
    const mask = masked ? maskingKey(c) : undefined;
    return { fin, opcode, mask, length };
  };
}

/** XORs `bytes[start, end)` in place with `mask`, starting at key offset 0 (5.3). Its own inverse. */
export function applyMask(bytes: Uint8Array, mask: Uint8Array, start = 0, end = bytes.length): void {
  const m0 = mask[0]!;
  const m1 = mask[1]!;
  const m2 = mask[2]!;
  const m3 = mask[3]!;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    bytes[i] = bytes[i]! ^ m0;
    bytes[i + 1] = bytes[i + 1]! ^ m1;
    bytes[i + 2] = bytes[i + 2]! ^ m2;
    bytes[i + 3] = bytes[i + 3]! ^ m3;
  }
  for (let k = 0; i < end; i++, k++) bytes[i] = bytes[i]! ^ mask[k]!;
}

/**
 * Parses a whole frame: header, then payload (copied and unmasked).
 * @example
 * parsePartial(wsFrame(), new Uint8Array([0x89, 0x02, 0x68]));       // { done: false, needed: 1 }
 * parsePartial(wsFrame(), new Uint8Array([0x89, 0x02, 0x68, 0x69])); // { done: true, value: { fin: true, opcode: 9, mask: undefined, payload: "hi" }, consumed: 4 }
 */
export function wsFrame(options: WsFrameOptions = {}): Parser<WsFrame> {
  const header = wsFrameHeader(options);
  return (c) => {
    const h = header(c);
    const payload = takeBytes(c, h.length);
    if (h.mask) applyMask(payload, h.mask);
    return { fin: h.fin, opcode: h.opcode, mask: h.mask, payload };
  };
}

/** What {@link encodeWsFrame} writes. */
export interface WsFrameInput {
  /** Default true. */
  fin?: boolean;
  opcode: WsOpcode;
  /** A 4-byte masking key: clients MUST mask every frame (5.3), servers MUST NOT. */
  mask?: Uint8Array | undefined;
  payload: Uint8Array;
}

/**
 * Writes one frame, lengths in their minimal form. The payload is copied (and masked in the copy), never
 * modified.
 * @example
 * const w = new Writer();
 * encodeWsFrame(w, { opcode: WsOpcode.BINARY, payload: new Uint8Array([1, 2]) });
 * w.finish(); // Uint8Array [0x82, 0x02, 0x01, 0x02]
 */
export function encodeWsFrame(w: Writer, f: WsFrameInput): void {
  const n = f.payload.length;
  w.ensure(MAX_HEADER_SIZE + n); // once, so the frame is not moved to a bigger slab halfway
  encodeWsFrameHeader(w, f.fin ?? true, f.opcode, n, f.mask);
  const start = w.pos;
  w.raw(f.payload);
  if (f.mask) applyMask(w.bytes, f.mask, start, w.pos);
}

/**
 * Writes only a frame's header, for a payload the caller sends on its own (unmasked, without copying it).
 * @example
 * encodeWsFrameHeader(w, true, WsOpcode.BINARY, 70000); // [0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0x11, 0x70]
 */
export function encodeWsFrameHeader(w: Writer, fin: boolean, opcode: WsOpcode, length: number, mask?: Uint8Array): void {
  if (!isOpcode(opcode)) throw new EncodeError(`Cannot encode WebSocket frame: reserved opcode ${opcode}`);
  if (isControl(opcode) && (!fin || length > 125)) {
    throw new EncodeError("Cannot encode WebSocket control frame: it must have fin set and at most 125 bytes of payload");
  }
  if (mask !== undefined && mask.length !== 4) throw new EncodeError("Cannot encode WebSocket frame: a masking key is 4 bytes");
  w.ensure(MAX_HEADER_SIZE);
  w.u8((fin ? 0x80 : 0) | opcode);
  const maskBit = mask ? 0x80 : 0;
  if (length < 126) w.u8(maskBit | length);
  else if (length <= 0xffff) {
    w.u8(maskBit | 126);
    w.u16(length);
  } else {
    w.u8(maskBit | 127);
    w.u64(length);
  }
  if (mask) w.raw(mask);
}

/** The size of the frame {@link encodeWsFrame} writes for `payloadLength` bytes. */
export function wsFrameSize(payloadLength: number, masked: boolean): number {
  return (payloadLength < 126 ? 2 : payloadLength <= 0xffff ? 4 : 10) + (masked ? 4 : 0) + payloadLength;
}

/**
 * A close frame's payload: an optional 2-byte status code, then an optional UTF-8 reason (5.5.1).
 * @example encodeClosePayload(1000, "bye"); // Uint8Array [0x03, 0xe8, 0x62, 0x79, 0x65]
 */
export function encodeClosePayload(code: number | undefined, reason = ""): Uint8Array {
  if (code === undefined) return new Uint8Array(0);
  const text = encodeUtf8(reason);
  // 125 bytes of control payload, 2 of them the code: cut the reason rather than fail the close.
  let cut = Math.min(text.length, 123);
  while (cut < text.length && cut > 0 && (text[cut]! & 0xc0) === 0x80) cut--;
  const out = new Uint8Array(2 + cut);
  out[0] = code >> 8;
  out[1] = code & 0xff;
  out.set(text.subarray(0, cut), 2);
  return out;
}

/** True for a status code a peer may put in a close frame (7.4.1, 7.4.2). */
export function isValidCloseCode(code: number): boolean {
  if (code >= 3000 && code <= 4999) return true;
  return code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006;
}

/**
 * Decodes a received close frame's payload. An empty payload means "no status" (1005).
 * @example decodeClosePayload(new Uint8Array([0x03, 0xe8])); // { code: 1000, reason: "" }
 */
export function decodeClosePayload(payload: Uint8Array): { code: number; reason: string } {
  if (payload.length === 0) return { code: WsCloseCode.NO_STATUS, reason: "" };
  if (payload.length === 1) throw new WsProtocolError("BAD_CLOSE_FRAME", "Invalid WebSocket close frame: a 1-byte payload");
  const code = (payload[0]! << 8) | payload[1]!;
  if (!isValidCloseCode(code)) throw new WsProtocolError("BAD_CLOSE_FRAME", `Invalid WebSocket close frame: status code ${code} may not be sent`);
  let reason: string;
  try {
    reason = decodeUtf8(payload, 2, payload.length);
  } catch {
    throw new WsProtocolError("INVALID_UTF8", "Invalid WebSocket close frame: the reason is not valid UTF-8");
  }
  return { code, reason };
}

/**
 * The streaming frame decoder: `push` chunks as they arrive, call `next` until it returns undefined.
 *
 * The header is parsed with the streaming envelope (`parsePartial`) over at most 14 buffered bytes; once it
 * is in, the frame's size is known and checked, and the payload is copied out — once — when all of it has
 * arrived. After an error the decoder stays failed.
 *
 * @example
 * const d = new WsFrameDecoder({ mask: "required" });
 * d.push(chunk);
 * for (let f = d.next(); f; f = d.next()) handle(f);
 */
export class WsFrameDecoder {
  private readonly header: Parser<WsFrameHeader>;
  private readonly input = new ChunkQueue();
  /** The header of the frame whose payload is still arriving, and its size in bytes. */
  private pending: { header: WsFrameHeader; size: number } | undefined;
  private failed: WsProtocolError | undefined;

  constructor(options: WsFrameOptions = {}) {
    this.header = wsFrameHeader(options);
  }

  /** Bytes received and not yet returned in frames. */
  get buffered(): number {
    return this.input.length;
  }

  /** Hands over a chunk. The decoder keeps a reference but never writes to it. */
  push(chunk: Uint8Array): void {
    this.input.push(chunk);
  }

  /** The next whole frame, or undefined when more bytes are needed. Throws WsProtocolError. */
  next(): WsFrame | undefined {
    if (this.failed) throw this.failed;
    try {
      return this.decodeNext();
    } catch (e) {
      if (e instanceof WsProtocolError) this.failed = e;
      throw e;
    }
  }

  private decodeNext(): WsFrame | undefined {
    const input = this.input;
    if (this.pending === undefined) {
      if (input.length < 2) return undefined;
      const r = parsePartial(this.header, input.peek(Math.min(input.length, MAX_HEADER_SIZE)));
      if (!r.done) return undefined;
      input.skip(r.consumed);
      this.pending = { header: r.value, size: r.value.length };
    }
    const { header, size } = this.pending;
    if (input.length < size) return undefined;
    this.pending = undefined;
    // One copy (take always returns bytes the caller owns), which is then ours to unmask.
    const payload = input.take(size);
    if (header.mask) applyMask(payload, header.mask);
    return { fin: header.fin, opcode: header.opcode, mask: header.mask, payload };
  }
}

/**
 * Parses every frame of a whole input with the streaming envelope, for tests and tools.
 * @example parseWsFrames(new Uint8Array([0x8a, 0x00, 0x8a, 0x00])); // two empty pongs
 */
export function parseWsFrames(input: Uint8Array, options: WsFrameOptions = {}): { frames: WsFrame[]; rest: number } {
  const p = wsFrame(options);
  const frames: WsFrame[] = [];
  let at = 0;
  for (;;) {
    const r = parsePartial(p, input.subarray(at));
    if (!r.done) return { frames, rest: input.length - at };
    frames.push(r.value);
    at += r.consumed;
  }
}

/**
 * The fragmentation rules of 5.4, for a reader that streams data frames on rather than reassembling them:
 * a message is a text or binary frame followed by continuation frames until one has fin set; control frames
 * may come in between; nothing else may. The size of a whole message is capped as well as each frame's.
 *
 * @example
 * const m = new WsMessageState({ maxMessage: 1 << 20 });
 * m.accept({ fin: false, opcode: WsOpcode.BINARY, … }); // WsOpcode.BINARY: the opcode of the message the frame belongs to
 * m.accept({ fin: true, opcode: WsOpcode.CONTINUATION, … }); // WsOpcode.BINARY, and the message is over
 */
export class WsMessageState {
  private readonly maxMessage: number;
  /** The opcode of the message in progress, or undefined between messages. */
  private current: WsOpcode | undefined;
  private size = 0;

  constructor(options: { maxMessage?: number } = {}) {
    this.maxMessage = options.maxMessage ?? DEFAULT_MAX_PAYLOAD;
  }

  /** True while a fragmented message has begun and not yet ended. */
  get inMessage(): boolean {
    return this.current !== undefined;
  }

  /** Checks a data frame (text, binary or continuation) and returns the opcode of its message. */
  accept(frame: { readonly fin: boolean; readonly opcode: WsOpcode; readonly payload: Uint8Array }): typeof WsOpcode.TEXT | typeof WsOpcode.BINARY {
    let opcode: WsOpcode;
    if (frame.opcode === WsOpcode.CONTINUATION) {
      if (this.current === undefined) throw new WsProtocolError("BAD_FRAGMENTATION", "Invalid WebSocket message: a continuation frame with no message to continue");
      opcode = this.current;
      this.size += frame.payload.length;
    } else if (frame.opcode === WsOpcode.TEXT || frame.opcode === WsOpcode.BINARY) {
      if (this.current !== undefined) throw new WsProtocolError("BAD_FRAGMENTATION", "Invalid WebSocket message: a new message began before the previous one ended");
      opcode = frame.opcode;
      this.size = frame.payload.length;
    } else {
      throw new WsProtocolError("BAD_OPCODE", `Invalid WebSocket message: opcode 0x${frame.opcode.toString(16)} is not a data frame`);
    }
    if (this.size > this.maxMessage) throw new WsProtocolError("TOO_BIG", `WebSocket message too big: over the ${this.maxMessage}-byte limit`);
    this.current = frame.fin ? undefined : opcode;
    return opcode as typeof WsOpcode.TEXT | typeof WsOpcode.BINARY;
  }
}
