import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  Cursor,
  DecodeError,
  Decimal,
  decodeFieldArray,
  decodeFieldTable,
  encodeFieldArray,
  encodeFieldTable,
  EncodeError,
  field,
  MAX_NESTING,
  parseAll,
  TypedField,
  type FieldTable,
} from "../../src/codec/index.ts";
import { fieldTable, fieldValue } from "../support/arbitraries.ts";
import { hex, toHex, written, decodeError } from "../support/bytes.ts";

const roundTrip = (t: FieldTable) => parseAll(decodeFieldTable, written((w) => encodeFieldTable(w, t)));

describe("field tables follow RabbitMQ's errata type codes", () => {
  // One entry per code: key "k", then type octet and value, as RabbitMQ writes them.
  const cases: [string, string, unknown][] = [
    ["t bool", "74 01", true],
    ["b int8", "62 ff", -1],
    ["B uint8", "42 ff", 255],
    ["s int16", "73 ff fe", -2],
    ["u uint16", "75 ff fe", 65534],
    ["I int32", "49 ff ff ff fe", -2],
    ["i uint32", "69 ff ff ff fe", 4294967294],
    ["l int64", "6c 80 00 00 00 00 00 00 00", -(2n ** 63n)],
    ["f float", "66 3f c0 00 00", 1.5],
    ["d double", "64 3f f8 00 00 00 00 00 00", 1.5],
    ["D decimal", "44 02 00 00 01 3a", new Decimal(2, 314)],
    ["S longstr", "53 00 00 00 02 68 69", "hi"],
    ["x byte array", "78 00 00 00 02 00 ff", Uint8Array.of(0, 255)],
    ["A array", "41 00 00 00 04 62 01 74 00", [1, false]],
    ["T timestamp", "54 00 00 00 00 65 53 f1 00", new Date(1700000000 * 1000)],
    ["F table", "46 00 00 00 04 01 61 74 01", Object.assign(Object.create(null), { a: true })],
    ["V void", "56", null],
  ];
  for (const [name, valueHex, expected] of cases) {
    it(`decodes ${name}`, () => {
      const entry = hex(`01 6b ${valueHex}`);
      const bytes = hex(`${entry.length.toString(16).padStart(8, "0")} ${toHex(entry)}`);
      expect(parseAll(decodeFieldTable, bytes)).toEqual(Object.assign(Object.create(null), { k: expected }));
    });
  }

  it("encodes plain values with their natural codes", () => {
    const bytes = written((w) =>
      encodeFieldTable(w, { b: true, i: -2, l: 2 ** 40, d: 0.5, s: "hi", x: Uint8Array.of(1), n: null, big: 2n ** 60n }),
    );
    const types = [];
    const c = new Cursor(bytes, 4);
    // walk the entries: key, then the type octet
    const t = parseAll(decodeFieldTable, bytes);
    expect(Object.keys(t)).toEqual(["b", "i", "l", "d", "s", "x", "n", "big"]);
    for (const key of Object.keys(t)) {
      c.pos += 1 + key.length;
      types.push(String.fromCharCode(c.bytes[c.pos]!));
      c.pos = skipValue(c.bytes, c.pos);
    }
    expect(types).toEqual(["t", "I", "l", "d", "S", "x", "V", "l"]);
  });

  it("writes the code a TypedField names, and reads the value back", () => {
    const t = {
      i8: field.int8(-5),
      u8: field.uint8(200),
      i16: field.int16(-300),
      u16: field.uint16(60000),
      u32: field.uint32(4e9),
      f: field.float(0.25),
      ts: field.timestamp(1),
      v: field.void(),
    };
    const bytes = written((w) => encodeFieldTable(w, t));
    expect(toHex(bytes)).toContain(toHex(hex("02 69 38 62 fb")));
    expect(roundTrip(t)).toEqual(
      Object.assign(Object.create(null), { i8: -5, u8: 200, i16: -300, u16: 60000, u32: 4e9, f: 0.25, ts: new Date(1000), v: null }),
    );
  });

  it("refuses a TypedField whose value does not fit its code", () => {
    expect(() => written((w) => encodeFieldTable(w, { a: field.int8(200) }))).toThrow(EncodeError);
    expect(() => written((w) => encodeFieldTable(w, { a: field.uint32(-1) }))).toThrow(EncodeError);
    expect(() => written((w) => encodeFieldTable(w, { a: new TypedField("f", "x") }))).toThrow(EncodeError);
  });
});

/** Skips one type-tagged value starting at `pos` (enough of the format for the test above). */
function skipValue(b: Uint8Array, pos: number): number {
  const view = new DataView(b.buffer, b.byteOffset);
  const type = String.fromCharCode(b[pos]!);
  const fixed: Record<string, number> = { t: 1, b: 1, B: 1, s: 2, u: 2, I: 4, i: 4, l: 8, f: 4, d: 8, D: 5, T: 8, V: 0 };
  if (type in fixed) return pos + 1 + fixed[type]!;
  return pos + 5 + view.getUint32(pos + 1);
}

describe("round trips", () => {
  it("any table decodes to an equal table", () => {
    fc.assert(
      fc.property(fieldTable(3), (t) => {
        expect(roundTrip(t)).toEqual(t);
      }),
      { numRuns: 300 },
    );
  });

  it("any array decodes to an equal array", () => {
    fc.assert(
      fc.property(fc.array(fieldValue(2), { maxLength: 10 }), (a) => {
        expect(parseAll(decodeFieldArray, written((w) => encodeFieldArray(w, a)))).toEqual(a);
      }),
    );
  });

  it("wide tables (1000 keys) round-trip", () => {
    const t: FieldTable = Object.create(null);
    for (let i = 0; i < 1000; i++) t[`key-${i}`] = i % 2 ? i : `v${i}`;
    expect(roundTrip(t)).toEqual(t);
  });

  it("a table nested to the cap round-trips; one level more is refused both ways", () => {
    const nest = (depth: number): FieldTable => (depth === 0 ? { leaf: 1 } : { n: nest(depth - 1) });
    const deepest = nest(MAX_NESTING - 1);
    expect(roundTrip(deepest)).toEqual(deepest);
    expect(() => written((w) => encodeFieldTable(w, nest(MAX_NESTING)))).toThrow(/nesting deeper than 64/);

    // hand-build a table nested MAX_NESTING + 1 deep: each level is { n: <table> }
    let inner = hex("00000000");
    for (let i = 0; i < MAX_NESTING; i++) {
      const entry = new Uint8Array(3 + inner.length);
      entry.set([1, 0x6e, 0x46]);
      entry.set(inner, 3);
      inner = hex(entry.length.toString(16).padStart(8, "0") + toHex(entry));
    }
    const err = decodeError(() => parseAll(decodeFieldTable, inner));
    expect(err.code).toBe("NESTING");
    expect(err.replyCode).toBe(502);
  });

  it("a cyclic object is refused, not recursed into forever", () => {
    const t: FieldTable = {};
    t.self = t;
    expect(() => written((w) => encodeFieldTable(w, t))).toThrow(EncodeError);
  });

  it("keeps __proto__ and constructor as ordinary keys", () => {
    const bytes = hex("00000013 09 5f5f70726f746f5f5f 74 01 01 63 49 00000007");
    const t = parseAll(decodeFieldTable, bytes);
    expect(Object.getPrototypeOf(Object.getPrototypeOf(t))).toBe(null); // no Object.prototype in the chain
    expect(Object.keys(Object.getPrototypeOf(t))).toEqual([]);
    expect(Object.keys(t)).toEqual(["__proto__", "c"]);
    expect(t["__proto__"]).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(roundTrip(t)).toEqual(t);
  });

  it("keeps a longstr that is not UTF-8 as bytes instead of mangling it", () => {
    const t = parseAll(decodeFieldTable, hex("00000009 01 6b 53 00000002 ff fe"));
    expect(t.k).toEqual(new TypedField("S", Uint8Array.of(0xff, 0xfe)));
    expect(toHex(written((w) => encodeFieldTable(w, t)))).toBe("00000009016b5300000002fffe");
  });
});

describe("malformed tables", () => {
  it("an unknown field type is a syntax error", () => {
    const err = decodeError(() => parseAll(decodeFieldTable, hex("00000003 01 6b 5a")));
    expect(err.code).toBe("FIELD_TYPE");
    expect(err.replyCode).toBe(502);
    expect(err.message).toMatch(/unknown type code 0x5a/);
  });

  it("a table longer than its input is truncated", () => {
    expect(decodeError(() => parseAll(decodeFieldTable, hex("ffffffff 01 6b 74 01"))).code).toBe("TRUNCATED");
  });

  it("a value running past the table's own length is truncated, even if bytes follow", () => {
    // declares 4 bytes but the int32 value needs 7
    expect(decodeError(() => decodeFieldTable(new Cursor(hex("00000004 01 6b 49 00 00 00 00 00 00")))).code).toBe("TRUNCATED");
  });

  it("a string length past the end is truncated", () => {
    expect(decodeError(() => parseAll(decodeFieldTable, hex("00000007 01 6b 53 7fffffff")))).toBeInstanceOf(DecodeError);
  });

  it("a key that is not UTF-8 is a syntax error", () => {
    const err = decodeError(() => parseAll(decodeFieldTable, hex("00000004 01 ff 74 01")));
    expect(err.code).toBe("BAD_UTF8");
    expect(err.replyCode).toBe(502);
  });
});

/** The EncodeError `f` throws (fails the test if it throws anything else or nothing). */
function encodeError(f: () => unknown): EncodeError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(EncodeError);
    return e as EncodeError;
  }
  throw new Error("expected an EncodeError");
}

// RabbitMQ (3.10 at least) cannot parse a non-finite double in a table: it resets the connection and the
// user sees only ECONNRESET. The encoder refuses them up front and says where they are (issue 8, defect 10).
describe("values RabbitMQ cannot parse", () => {
  it("refuses a plain NaN, Infinity or -Infinity, naming the key path", () => {
    for (const v of [Number.NaN, Infinity, -Infinity]) {
      const err = encodeError(() => written((w) => encodeFieldTable(w, { x: { y: v } })));
      expect(err.message).toMatch(new RegExp(`^Cannot encode field table: "x\\.y" is ${String(v)}, which RabbitMQ cannot parse`));
    }
  });

  it("names array indices in the path, and the table an entry point was told it encodes", () => {
    const t = { "x-args": { retries: [1, 2, Number.NaN] } };
    expect(encodeError(() => written((w) => encodeFieldTable(w, t))).message).toMatch(/^Cannot encode field table: "x-args\.retries\[2\]" is NaN/);
    expect(encodeError(() => written((w) => encodeFieldTable(w, { a: Infinity }, "queue arguments"))).message).toMatch(
      /^Cannot encode queue arguments: "a" is Infinity/,
    );
    expect(encodeError(() => written((w) => encodeFieldArray(w, [0, [Infinity]]))).message).toMatch(/^Cannot encode field array: "\[1\]\[0\]" is Infinity/);
  });

  it("still encodes them as an explicit TypedField, for brokers that can parse them", () => {
    const bytes = written((w) => encodeFieldTable(w, { d: field.double(Number.NaN), f: field.float(-Infinity) }));
    expect(toHex(bytes)).toBe("00000012" + "0164" + "64" + "7ff8000000000000" + "0166" + "66" + "ff800000");
  });

  it("decodes a non-finite f or d as a TypedField, so a table that arrived can be sent back as it came", () => {
    const t = parseAll(decodeFieldTable, hex("00000012 0164 64 7ff8000000000000 0166 66 ff800000"));
    expect(t.d).toEqual(new TypedField("d", Number.NaN));
    expect(t.f).toEqual(new TypedField("f", -Infinity));
    expect(toHex(written((w) => encodeFieldTable(w, t)))).toBe("00000012016464" + "7ff8000000000000" + "016666ff800000");
    expect(parseAll(decodeFieldTable, written((w) => encodeFieldTable(w, { d: 0.5 })))).toEqual(Object.assign(Object.create(null), { d: 0.5 }));
  });

  it("keeps finite doubles, -0 and unsafe integers on the plain path", () => {
    const back = parseAll(decodeFieldTable, written((w) => encodeFieldTable(w, { a: -0, b: 2 ** 60, c: 1e300, d: -1.5 })));
    expect(Object.is(back.a, -0)).toBe(true);
    expect([back.b, back.c, back.d]).toEqual([2 ** 60, 1e300, -1.5]);
  });

  it("names the entry of any other encode error too", () => {
    expect(encodeError(() => written((w) => encodeFieldTable(w, { h: { n: field.int8(200) } }))).message).toBe(
      `Cannot encode field table: "h.n": Cannot encode 200 as field type 'b'`,
    );
    expect(encodeError(() => written((w) => encodeFieldTable(w, { m: new Map([["k", 1]]) as never }))).message).toBe(
      `Cannot encode field table: "m": Cannot encode field value: a Map is not a field table (use a plain object)`,
    );
  });
});
