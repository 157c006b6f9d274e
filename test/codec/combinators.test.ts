import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  allConsuming,
  bits,
  bytes,
  complete,
  Cursor,
  DecodeError,
  i64,
  Incomplete,
  lengthPrefixed,
  lengthValue,
  many,
  map,
  parseAll,
  parsePartial,
  repeat,
  sequence,
  shortString,
  tuple,
  u16,
  u32,
  u64,
  u8,
  writeBits,
  writeMany,
  writeShortString,
  writeTuple,
  writeU16,
  writeU8,
  Writer,
  type Parser,
} from "../../src/codec/index.ts";
import { hex, written } from "../support/bytes.ts";

describe("primitive parsers", () => {
  it("read big-endian integers", () => {
    const c = new Cursor(hex("01 0203 04050607 ffffffffffffffff"));
    expect(u8(c)).toBe(1);
    expect(u16(c)).toBe(0x0203);
    expect(u32(c)).toBe(0x04050607);
    expect(u64(c)).toBe(2n ** 64n - 1n);
  });

  it("return 64-bit values as numbers when safe and bigints otherwise, never rounded", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (v) => {
        const b = written((w) => w.i64(v));
        const back = i64(new Cursor(b));
        expect(BigInt(back)).toBe(v);
        expect(typeof back).toBe(v >= -(2n ** 53n) + 1n && v <= 2n ** 53n - 1n ? "number" : "bigint");
      }),
    );
  });

  it("honour the view's byteOffset (a slice of a larger buffer)", () => {
    const big = hex("ff ff 00 2a ff");
    expect(u16(new Cursor(big.subarray(2, 4)))).toBe(42);
  });

  it("signal Incomplete, not an error, when input runs out", () => {
    expect(() => u32(new Cursor(hex("0001")))).toThrow(Incomplete);
    expect(parsePartial(u32, hex("0001"))).toEqual({ done: false, needed: 2 });
    expect(parsePartial(u32, hex("00000005 09"))).toEqual({ done: true, value: 5, consumed: 4 });
  });
});

describe("combinators", () => {
  it("map, tuple and sequence compose parsers", () => {
    expect(map(u8, (n) => n * 2)(new Cursor(hex("15")))).toBe(42);
    expect(tuple(u8, u16)(new Cursor(hex("01 0002")))).toEqual([1, 2]);
    expect(sequence({ a: u8, b: shortString })(new Cursor(hex("07 02 6869")))).toEqual({ a: 7, b: "hi" });
  });

  it("lengthValue confines the inner parser and requires it to use every byte", () => {
    expect(lengthValue(u8, many(u8))(new Cursor(hex("02 0708 09")))).toEqual([7, 8]);
    expect(() => lengthValue(u8, u8)(new Cursor(hex("02 0708")))).toThrow(DecodeError);
    const err = (() => {
      try {
        lengthValue(u8, u32)(new Cursor(hex("02 0708")));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(DecodeError);
    expect((err as DecodeError).code).toBe("TRUNCATED");
    expect(parsePartial(lengthValue(u8, many(u8)), hex("05 01"))).toEqual({ done: false, needed: 4 });
  });

  it("repeat, bits, allConsuming and complete", () => {
    expect(repeat(2, u8)(new Cursor(hex("040506")))).toEqual([4, 5]);
    expect(bits(10)(new Cursor(hex("05 02")))).toEqual([true, false, true, false, false, false, false, false, false, true]);
    expect(() => allConsuming(u8)(new Cursor(hex("0102")))).toThrow(DecodeError);
    expect(() => complete(u32)(new Cursor(hex("01")))).toThrow(DecodeError);
    expect(parseAll(u16, hex("0100"))).toBe(256);
  });

  it("bits and writeBits are inverses", () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { maxLength: 40 }), (flags) => {
        const b = written((w) => writeBits(w, flags));
        expect(b.length).toBe(Math.ceil(flags.length / 8));
        expect(parseAll(bits(flags.length), b)).toEqual(flags);
      }),
    );
  });
});

describe("Writer", () => {
  it("grows past its slab and keeps reserved positions valid across the move", () => {
    const w = new Writer(8);
    const at = w.reserve(4);
    for (let i = 0; i < 100; i++) w.u8(i);
    w.patchU32(at, 100);
    const out = w.finish();
    expect(out.length).toBe(104);
    expect(new DataView(out.buffer, out.byteOffset).getUint32(0)).toBe(100);
    expect(out[103]).toBe(99);
  });

  it("never writes again into bytes it handed out", () => {
    const w = new Writer(64);
    w.u32(0xdeadbeef);
    const first = w.finish();
    w.u32(0x01020304);
    const second = w.finish();
    expect(Array.from(first)).toEqual([0xde, 0xad, 0xbe, 0xef]);
    expect(Array.from(second)).toEqual([1, 2, 3, 4]);
  });

  it("lengthPrefixed reserves, writes, then patches (back_to_the_buffer)", () => {
    expect(Array.from(written((w) => lengthPrefixed(4, writeShortString)(w, "hi")))).toEqual([0, 0, 0, 3, 2, 104, 105]);
    expect(Array.from(written((w) => writeTuple<[number, number]>(writeU8, writeU16)(w, [1, 2])))).toEqual([1, 0, 2]);
    expect(Array.from(written((w) => writeMany(writeU8)(w, [5, 6])))).toEqual([5, 6]);
  });

  it("refuses a short string over 255 bytes and values out of range", () => {
    expect(() => written((w) => w.shortString("é".repeat(128)))).toThrow(/255/);
    expect(() => written((w) => w.u64(-1))).toThrow();
    expect(() => written((w) => w.i64(2n ** 63n))).toThrow();
  });
});

// The reuse claim: the same combinators read a format that has nothing to do with AMQP. A PNG file is an
// 8-byte signature followed by chunks of `length:u32 type:4 ASCII bytes data[length] crc:u32`.
describe("the combinators read other binary formats: PNG chunks", () => {
  interface PngChunk {
    type: string;
    data: Uint8Array;
    crc: number;
  }
  const ascii4: Parser<string> = map(bytes(4), (b) => String.fromCharCode(...b));
  const chunk: Parser<PngChunk> = (c) => {
    const length = u32(c);
    return { type: ascii4(c), data: bytes(length)(c), crc: u32(c) };
  };
  const png: Parser<PngChunk[]> = (c) => {
    const sig = bytes(8)(c);
    if (sig.join() !== "137,80,78,71,13,10,26,10") throw new DecodeError("BAD_VALUE", "not a PNG file");
    return many(chunk)(c);
  };
  const ihdr = sequence({ width: u32, height: u32, bitDepth: u8, colorType: u8, compression: u8, filter: u8, interlace: u8 });

  // A 1×1 RGBA PNG: signature, IHDR, IDAT, IEND (the CRCs are carried, not checked).
  const file = hex(
    "89504e470d0a1a0a" +
      "0000000d 49484452 00000001 00000001 08 06 00 00 00 1f15c489" +
      "0000000e 49444154 789c6360f8cfc0f01f0005000201 0d0a2db4" +
      "00000000 49454e44 ae426082",
  );

  it("lists the chunks and parses IHDR with sequence", () => {
    const chunks = parseAll(png, file);
    expect(chunks.map((k) => k.type)).toEqual(["IHDR", "IDAT", "IEND"]);
    expect(parseAll(ihdr, chunks[0]!.data)).toEqual({ width: 1, height: 1, bitDepth: 8, colorType: 6, compression: 0, filter: 0, interlace: 0 });
  });

  it("streams: a partial file asks for more bytes instead of failing", () => {
    const r = parsePartial(png, file.subarray(0, 20));
    expect(r.done).toBe(false);
  });
});
