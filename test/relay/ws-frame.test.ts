/**
 * RFC 6455 framing built on warren/codec: golden vectors from the RFC, round trips through parser and
 * serializer for every opcode and every length encoding, chunking invariance of the streaming decoder, and
 * the MUSTs of section 5 as errors with the right close code.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Cursor } from "../../src/codec/cursor.ts";
import { EncodeError } from "../../src/codec/errors.ts";
import { parsePartial } from "../../src/codec/parsers.ts";
import { Writer } from "../../src/codec/writer.ts";
import {
  applyMask,
  decodeClosePayload,
  encodeClosePayload,
  encodeWsFrame,
  encodeWsFrameHeader,
  parseWsFrames,
  readPayloadLength,
  type WsFrame,
  WsFrameDecoder,
  type WsFrameInput,
  wsFrame,
  wsFrameHeader,
  wsFrameSize,
  WsMessageState,
  WsOpcode,
  WsProtocolError,
} from "../../src/relay/ws-frame.ts";
import { concat, hex, toHex } from "../support/bytes.ts";

function encode(f: WsFrameInput): Uint8Array {
  const w = new Writer(16);
  encodeWsFrame(w, f);
  return w.finish();
}

/** Feeds `bytes` to a decoder in the given chunk sizes (cycled) and collects every frame. */
function decodeChunked(bytes: Uint8Array, sizes: readonly number[], options = {}): WsFrame[] {
  const d = new WsFrameDecoder(options);
  const out: WsFrame[] = [];
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]!);
    d.push(bytes.subarray(at, at + n));
    at += n;
    for (let f = d.next(); f !== undefined; f = d.next()) out.push(f);
  }
  expect(d.buffered).toBe(0);
  return out;
}

/** Bytes as hex, fast for large payloads (deep equality over a 70 000-element array is slow). */
const hx = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex"));

/** A frame in a shape that compares quickly. */
const show = (f: { fin?: boolean; opcode: number; mask?: Uint8Array | undefined; payload: Uint8Array }) => ({ fin: f.fin ?? true, opcode: f.opcode, mask: hx(f.mask), payload: hx(f.payload) });

function errorOf(f: () => unknown): WsProtocolError {
  try {
    f();
  } catch (e) {
    if (e instanceof WsProtocolError) return e;
    throw e;
  }
  throw new Error("expected a WsProtocolError");
}

const OPCODES = [WsOpcode.CONTINUATION, WsOpcode.TEXT, WsOpcode.BINARY, WsOpcode.CLOSE, WsOpcode.PING, WsOpcode.PONG] as const;
/** The boundaries of the three length encodings: 7-bit up to 125, 16-bit up to 65535, 64-bit above. */
const BOUNDARY_LENGTHS = [0, 1, 125, 126, 127, 65535, 65536, 70000];

const maskArb = fc.option(fc.uint8Array({ minLength: 4, maxLength: 4 }), { nil: undefined });
/** Frames of every opcode; `large` lets data payloads reach the 64-bit length encoding. */
const frameArbitrary = (large: boolean): fc.Arbitrary<WsFrame> => fc.oneof(
  // Data frames: any fin, payloads across the 7- and 16-bit (and with `large` the 64-bit) encodings.
  fc.record({
    fin: fc.boolean(),
    opcode: fc.constantFrom(WsOpcode.CONTINUATION, WsOpcode.TEXT, WsOpcode.BINARY),
    mask: maskArb,
    payload: fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.integer({ min: 120, max: large ? 70_000 : 1000 }).map((n) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) & 0xff)),
    ),
  }),
  // Control frames: fin set, at most 125 bytes.
  fc.record({
    fin: fc.constant(true),
    opcode: fc.constantFrom(WsOpcode.CLOSE, WsOpcode.PING, WsOpcode.PONG),
    mask: maskArb,
    payload: fc.uint8Array({ maxLength: 125 }),
  }),
);
const frameArb = frameArbitrary(true);
const smallFrameArb = frameArbitrary(false);

describe("golden vectors from RFC 6455 5.7", () => {
  it('a single-frame unmasked text message "Hello"', () => {
    const bytes = hex("81 05 48 65 6c 6c 6f");
    expect(toHex(encode({ opcode: WsOpcode.TEXT, payload: new TextEncoder().encode("Hello") }))).toBe(toHex(bytes));
    const f = wsFrame()(new Cursor(bytes));
    expect(f).toMatchObject({ fin: true, opcode: WsOpcode.TEXT, mask: undefined });
    expect(new TextDecoder().decode(f.payload)).toBe("Hello");
  });

  it('a single-frame masked text message "Hello"', () => {
    const bytes = hex("81 85 37 fa 21 3d 7f 9f 4d 51 58");
    const mask = hex("37 fa 21 3d");
    expect(toHex(encode({ opcode: WsOpcode.TEXT, mask, payload: new TextEncoder().encode("Hello") }))).toBe(toHex(bytes));
    const f = wsFrame()(new Cursor(bytes));
    expect(toHex(f.mask!)).toBe("37fa213d");
    expect(new TextDecoder().decode(f.payload)).toBe("Hello");
  });

  it('a fragmented unmasked text message "Hel" + "lo"', () => {
    const { frames, rest } = parseWsFrames(hex("01 03 48 65 6c 80 02 6c 6f"));
    expect(rest).toBe(0);
    expect(frames.map((f) => [f.fin, f.opcode, new TextDecoder().decode(f.payload)])).toEqual([
      [false, WsOpcode.TEXT, "Hel"],
      [true, WsOpcode.CONTINUATION, "lo"],
    ]);
  });

  it("unmasked ping and masked pong with body Hello", () => {
    expect(toHex(encode({ opcode: WsOpcode.PING, payload: new TextEncoder().encode("Hello") }))).toBe("890548656c6c6f");
    const pong = wsFrame()(new Cursor(hex("8a 85 37 fa 21 3d 7f 9f 4d 51 58")));
    expect(pong.opcode).toBe(WsOpcode.PONG);
    expect(new TextDecoder().decode(pong.payload)).toBe("Hello");
  });

  it("256 bytes binary in a single unmasked frame uses the 16-bit length", () => {
    expect(toHex(encode({ opcode: WsOpcode.BINARY, payload: new Uint8Array(256) }).subarray(0, 4))).toBe("827e0100");
  });

  it("64 KiB binary in a single unmasked frame uses the 64-bit length", () => {
    expect(toHex(encode({ opcode: WsOpcode.BINARY, payload: new Uint8Array(65536) }).subarray(0, 10))).toBe("827f0000000000010000");
  });
});

describe("round trip: parse(encode(frame)) is the frame", () => {
  it("for every opcode, masked and unmasked, at each length-encoding boundary", () => {
    for (const opcode of OPCODES) {
      for (const n of BOUNDARY_LENGTHS) {
        if (opcode >= 8 && n > 125) continue;
        for (const mask of [undefined, hex("a1 b2 c3 d4")]) {
          const payload = Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff);
          const bytes = encode({ fin: true, opcode, mask, payload });
          expect(bytes.length).toBe(wsFrameSize(n, mask !== undefined));
          const r = parsePartial(wsFrame({ maxPayload: 1 << 20 }), bytes);
          expect(r).toMatchObject({ done: true, consumed: bytes.length });
          if (!r.done) continue;
          expect(r.value.opcode).toBe(opcode);
          expect(r.value.fin).toBe(true);
          expect(hx(r.value.mask)).toBe(hx(mask));
          expect(hx(r.value.payload)).toBe(hx(payload));
        }
      }
    }
  });

  it("length 125 is 7-bit, 126 and 65535 are 16-bit, 65536 is 64-bit", () => {
    const head = (n: number) => toHex(encode({ opcode: WsOpcode.BINARY, payload: new Uint8Array(n) }).subarray(0, 2));
    expect(head(0)).toBe("8200");
    expect(head(125)).toBe("827d");
    expect(head(126)).toBe("827e");
    expect(head(65535)).toBe("827e");
    expect(head(65536)).toBe("827f");
  });

  it("holds for random frames (property)", () => {
    fc.assert(
      fc.property(frameArb, (f) => {
        const bytes = encode(f);
        const r = parsePartial(wsFrame({ maxPayload: 1 << 20 }), bytes);
        expect(r.done).toBe(true);
        if (r.done) {
          expect(r.consumed).toBe(bytes.length);
          expect(show(r.value)).toEqual(show(f));
          // And encoding is canonical: parse then encode gives the same bytes back.
          expect(hx(encode(r.value))).toBe(hx(bytes));
        }
      }),
      { numRuns: 300 },
    );
  });

  it("masking copies: the caller's payload is left as it was", () => {
    const payload = hex("01 02 03 04 05");
    const bytes = encode({ opcode: WsOpcode.BINARY, mask: hex("ff ff ff ff"), payload });
    expect(toHex(payload)).toBe("0102030405");
    expect(toHex(bytes.subarray(6))).toBe("fefdfcfbfa");
  });

  it("applyMask is its own inverse for any offset and length", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ minLength: 4, maxLength: 4 }), (data, mask) => {
        const copy = data.slice();
        applyMask(copy, mask);
        applyMask(copy, mask);
        expect(copy).toEqual(data);
      }),
    );
  });
});

describe("streaming: partial input is Incomplete, never an error", () => {
  it("every proper prefix of a frame reports done: false with a positive need", () => {
    for (const n of [0, 5, 125, 126, 300, 65536]) {
      const bytes = encode({ opcode: WsOpcode.BINARY, mask: hex("01 02 03 04"), payload: new Uint8Array(n).fill(9) });
      const step = Math.max(1, Math.floor(bytes.length / 50));
      for (let k = 0; k < bytes.length; k += k < 16 ? 1 : step) {
        const r = parsePartial(wsFrame(), bytes.subarray(0, k));
        expect(r.done, `prefix ${k} of ${bytes.length}`).toBe(false);
        if (!r.done) expect(r.needed).toBeGreaterThan(0);
      }
    }
  });

  it("a stream of frames decodes the same whole, byte by byte and in random chunks (property)", () => {
    fc.assert(
      fc.property(fc.array(smallFrameArb, { minLength: 1, maxLength: 6 }), fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 8 }), (frames, sizes) => {
        const bytes = concat(frames.map(encode));
        const whole = decodeChunked(bytes, [bytes.length]).map(show);
        expect(whole).toEqual(frames.map(show));
        expect(decodeChunked(bytes, sizes).map(show)).toEqual(whole);
        // The envelope over one buffer agrees with the chunked decoder.
        expect(parseWsFrames(bytes, { maxPayload: 1 << 20 }).frames.map(show)).toEqual(whole);
      }),
      { numRuns: 150 },
    );
  });

  it("frames with 64-bit lengths decode the same in any chunking, byte by byte included", () => {
    const bytes = concat([
      encode({ opcode: WsOpcode.BINARY, fin: false, mask: hex("01 02 03 04"), payload: Uint8Array.from({ length: 65536 }, (_, i) => i & 0xff) }),
      encode({ opcode: WsOpcode.PING, payload: hex("aa") }),
      encode({ opcode: WsOpcode.CONTINUATION, payload: new Uint8Array(70_000).fill(5) }),
    ]);
    const whole = decodeChunked(bytes, [bytes.length]);
    expect(whole.map((f) => [f.opcode, f.payload.length])).toEqual([[2, 65536], [9, 1], [0, 70_000]]);
    for (const sizes of [[1], [13, 1, 4096], [65_000, 3], [9, 10, 14, 15]]) expect(decodeChunked(bytes, sizes).map(show)).toEqual(whole.map(show));
  });

  it("byte by byte gives the same frames as whole, for small frames of every opcode", () => {
    const frames = OPCODES.map((opcode, i) => encode({ fin: true, opcode, mask: i % 2 ? hex("0a 0b 0c 0d") : undefined, payload: new Uint8Array(i * 20).fill(i) }));
    const bytes = concat([...frames, encode({ opcode: WsOpcode.BINARY, payload: new Uint8Array(300).fill(3) })]);
    expect(decodeChunked(bytes, [1]).map(show)).toEqual(decodeChunked(bytes, [bytes.length]).map(show));
  });

  it("trailing bytes of the next frame are left for the next call", () => {
    const a = encode({ opcode: WsOpcode.PING, payload: hex("01") });
    const b = encode({ opcode: WsOpcode.BINARY, payload: hex("02 03 04") });
    const r = parsePartial(wsFrame(), concat([a, b.subarray(0, 2)]));
    expect(r).toMatchObject({ done: true, consumed: a.length });
    const { frames, rest } = parseWsFrames(concat([a, b.subarray(0, 2)]));
    expect(frames).toHaveLength(1);
    expect(rest).toBe(2);
  });

  it("the decoder checks the header before the payload arrives", () => {
    const d = new WsFrameDecoder({ maxPayload: 1000 });
    d.push(hex("82 7e 10 00")); // announces 4096 bytes, none of them sent
    expect(errorOf(() => d.next())).toMatchObject({ code: "TOO_BIG", closeCode: 1009 });
    // Failed for good: the stream has lost its framing.
    expect(errorOf(() => d.next())).toMatchObject({ code: "TOO_BIG" });
  });
});

describe("errors: what RFC 6455 section 5 says MUST fail", () => {
  const parse = (bytes: Uint8Array, o = {}) => () => parsePartial(wsFrame(o), bytes);

  it("an announced length over the limit fails with 1009 at once, for every length encoding", () => {
    expect(errorOf(parse(hex("82 7e 01 00"), { maxPayload: 255 }))).toMatchObject({ code: "TOO_BIG", closeCode: 1009 });
    expect(errorOf(parse(hex("82 7f 00 00 00 00 00 10 00 01")))).toMatchObject({ code: "TOO_BIG", closeCode: 1009 });
    expect(errorOf(parse(hex("82 7f 7f ff ff ff ff ff ff ff")))).toMatchObject({ code: "TOO_BIG", closeCode: 1009 });
    expect(errorOf(parse(hex("82 10"), { maxPayload: 15 }))).toMatchObject({ code: "TOO_BIG" });
    // At the limit is fine.
    expect(parsePartial(wsFrame({ maxPayload: 16 }), hex("82 10"))).toMatchObject({ done: false, needed: 16 });
  });

  it("a 64-bit length with its most significant bit set is a protocol error", () => {
    expect(errorOf(parse(hex("82 7f 80 00 00 00 00 00 00 00")))).toMatchObject({ code: "BAD_LENGTH", closeCode: 1002 });
  });

  it("a length not in its minimal form is a protocol error", () => {
    expect(errorOf(parse(hex("82 7e 00 7d")))).toMatchObject({ code: "BAD_LENGTH", closeCode: 1002 });
    expect(errorOf(parse(hex("82 7f 00 00 00 00 00 00 ff ff")))).toMatchObject({ code: "BAD_LENGTH", closeCode: 1002 });
  });

  it("RSV bits without an extension, and reserved opcodes, are protocol errors", () => {
    for (const b0 of [0xc2, 0xa2, 0x92]) expect(errorOf(parse(Uint8Array.of(b0, 0)))).toMatchObject({ code: "RESERVED_BITS", closeCode: 1002 });
    for (const op of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
      expect(errorOf(parse(Uint8Array.of(0x80 | op, 0)))).toMatchObject({ code: "BAD_OPCODE", closeCode: 1002 });
    }
  });

  it("control frames must not be fragmented nor longer than 125 bytes", () => {
    expect(errorOf(parse(hex("09 00")))).toMatchObject({ code: "BAD_CONTROL_FRAME", closeCode: 1002 });
    expect(errorOf(parse(hex("88 7e 00 7e")))).toMatchObject({ code: "BAD_CONTROL_FRAME", closeCode: 1002 });
    expect(() => encode({ opcode: WsOpcode.PING, payload: new Uint8Array(126) })).toThrow(EncodeError);
    expect(() => encode({ fin: false, opcode: WsOpcode.CLOSE, payload: new Uint8Array(0) })).toThrow(EncodeError);
  });

  it("a server reading an unmasked client frame fails it with 1002; a client reading a masked one too", () => {
    expect(errorOf(parse(hex("82 00"), { mask: "required" }))).toMatchObject({ code: "UNMASKED", closeCode: 1002 });
    expect(errorOf(parse(hex("82 80 00 00 00 00"), { mask: "forbidden" }))).toMatchObject({ code: "MASKED", closeCode: 1002 });
    expect(parsePartial(wsFrame({ mask: "required" }), hex("82 80 00 00 00 00"))).toMatchObject({ done: true });
  });

  it("any input is accepted, incomplete or a WsProtocolError — nothing else escapes (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.constantFrom("required", "forbidden", "any") as fc.Arbitrary<"required" | "forbidden" | "any">, (bytes, mask) => {
        try {
          const d = new WsFrameDecoder({ mask, maxPayload: 100 });
          d.push(bytes);
          while (d.next() !== undefined);
        } catch (e) {
          expect(e).toBeInstanceOf(WsProtocolError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("any input gives the same frames and the same error whole or byte by byte (property)", () => {
    const run = (bytes: Uint8Array, step: number) => {
      const d = new WsFrameDecoder({ maxPayload: 200 });
      const frames: unknown[] = [];
      try {
        for (let at = 0; at < bytes.length; at += step) {
          d.push(bytes.subarray(at, at + step));
          for (let f = d.next(); f !== undefined; f = d.next()) frames.push(show(f));
        }
        return { frames, error: undefined, buffered: d.buffered };
      } catch (e) {
        return { frames, error: (e as WsProtocolError).code, buffered: -1 };
      }
    };
    // Valid frames with random bytes spliced in, so that both outcomes are common.
    const input = fc.tuple(fc.array(smallFrameArb, { maxLength: 3 }), fc.uint8Array({ maxLength: 12 }), fc.nat(40)).map(([frames, junk, at]) => {
      const valid = concat(frames.filter((f) => f.payload.length <= 200).map(encode));
      const cut = Math.min(at, valid.length);
      return concat([valid.subarray(0, cut), junk, valid.subarray(cut)]);
    });
    fc.assert(
      fc.property(input, (bytes) => {
        expect(run(bytes, 1)).toEqual(run(bytes, Math.max(1, bytes.length)));
      }),
      { numRuns: 500 },
    );
  });

  it("readPayloadLength reads each encoding", () => {
    expect(readPayloadLength(new Cursor(hex("")), 125, 1000)).toBe(125);
    expect(readPayloadLength(new Cursor(hex("01 00")), 126, 1000)).toBe(256);
    expect(readPayloadLength(new Cursor(hex("00 00 00 00 00 01 00 00")), 127, 1 << 20)).toBe(65536);
  });

  it("wsFrameHeader reads only the header", () => {
    const c = new Cursor(hex("82 85 01 02 03 04 ff"));
    expect(wsFrameHeader()(c)).toEqual({ fin: true, opcode: 2, mask: hex("01 02 03 04"), length: 5 });
    expect(c.pos).toBe(6);
  });

  it("encodeWsFrameHeader writes the header of a payload sent apart", () => {
    const w = new Writer(16);
    encodeWsFrameHeader(w, true, WsOpcode.BINARY, 70000);
    expect(toHex(w.finish())).toBe("827f0000000000011170");
  });
});

describe("close frames", () => {
  it("round-trip a status code and reason", () => {
    expect(decodeClosePayload(encodeClosePayload(1000, "bye"))).toEqual({ code: 1000, reason: "bye" });
    expect(toHex(encodeClosePayload(1002, ""))).toBe("03ea");
    expect(decodeClosePayload(new Uint8Array(0))).toEqual({ code: 1005, reason: "" });
  });

  it("a reason is cut to fit 125 bytes on a character boundary", () => {
    const p = encodeClosePayload(1000, "é".repeat(100));
    expect(p.length).toBeLessThanOrEqual(125);
    expect(decodeClosePayload(p).reason).toBe("é".repeat(61));
  });

  it("a 1-byte payload, a reserved code or a bad reason fails", () => {
    expect(errorOf(() => decodeClosePayload(hex("03")))).toMatchObject({ code: "BAD_CLOSE_FRAME", closeCode: 1002 });
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1100, 2999, 5000]) {
      expect(errorOf(() => decodeClosePayload(Uint8Array.of(code >> 8, code & 0xff)))).toMatchObject({ code: "BAD_CLOSE_FRAME" });
    }
    expect(errorOf(() => decodeClosePayload(hex("03 e8 ff fe")))).toMatchObject({ code: "INVALID_UTF8", closeCode: 1007 });
    for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1014, 3000, 4999]) {
      expect(decodeClosePayload(Uint8Array.of(code >> 8, code & 0xff)).code).toBe(code);
    }
  });
});

describe("fragmentation (5.4)", () => {
  const frame = (opcode: WsOpcode, fin: boolean, n = 1) => ({ opcode, fin, payload: new Uint8Array(n) });

  it("a message is a data frame and continuations up to fin", () => {
    const m = new WsMessageState();
    expect(m.accept(frame(WsOpcode.BINARY, false))).toBe(WsOpcode.BINARY);
    expect(m.inMessage).toBe(true);
    expect(m.accept(frame(WsOpcode.CONTINUATION, false))).toBe(WsOpcode.BINARY);
    expect(m.accept(frame(WsOpcode.CONTINUATION, true))).toBe(WsOpcode.BINARY);
    expect(m.inMessage).toBe(false);
    expect(m.accept(frame(WsOpcode.TEXT, true))).toBe(WsOpcode.TEXT);
  });

  it("a continuation with nothing to continue, or a new message inside one, is a protocol error", () => {
    expect(errorOf(() => new WsMessageState().accept(frame(WsOpcode.CONTINUATION, true)))).toMatchObject({ code: "BAD_FRAGMENTATION", closeCode: 1002 });
    const m = new WsMessageState();
    m.accept(frame(WsOpcode.BINARY, false));
    expect(errorOf(() => m.accept(frame(WsOpcode.BINARY, true)))).toMatchObject({ code: "BAD_FRAGMENTATION" });
  });

  it("the size of a whole message is capped, not just each frame's", () => {
    const m = new WsMessageState({ maxMessage: 10 });
    m.accept(frame(WsOpcode.BINARY, false, 6));
    expect(errorOf(() => m.accept(frame(WsOpcode.CONTINUATION, true, 5)))).toMatchObject({ code: "TOO_BIG", closeCode: 1009 });
    const ok = new WsMessageState({ maxMessage: 10 });
    ok.accept(frame(WsOpcode.BINARY, false, 5));
    ok.accept(frame(WsOpcode.CONTINUATION, true, 5));
  });
});
