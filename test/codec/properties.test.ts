import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  decodeBasicProperties,
  DecodeError,
  encodeBasicProperties,
  encodeContent,
  EncodeError,
  parseAll,
  Writer,
  type BasicProperties,
  type PublishProperties,
} from "../../src/codec/index.ts";
import { basicProperties } from "../support/arbitraries.ts";
import { hex, toHex, written } from "../support/bytes.ts";

const roundTrip = (p: BasicProperties) => parseAll(decodeBasicProperties, written((w) => encodeBasicProperties(w, p)));

describe("basic content-header properties", () => {
  it("any subset of the 14 properties round-trips", () => {
    fc.assert(
      fc.property(basicProperties, (p) => {
        const back = roundTrip(p);
        for (const [k, v] of Object.entries(back)) if (v === undefined) delete (back as Record<string, unknown>)[k];
        expect(back).toEqual(p);
      }),
      { numRuns: 300 },
    );
  });

  it("no properties is an all-zero mask", () => {
    expect(toHex(written((w) => encodeBasicProperties(w, {})))).toBe("0000");
  });

  it("uses bit 15 for content-type down to bit 2 for cluster-id, in mask order", () => {
    expect(toHex(written((w) => encodeBasicProperties(w, { contentType: "a" })))).toBe("80000161");
    expect(toHex(written((w) => encodeBasicProperties(w, { clusterId: "c", deliveryMode: 2 })))).toBe("1004" + "02" + "0163");
    expect(toHex(written((w) => encodeBasicProperties(w, { timestamp: 1700000000 })))).toBe("0040000000006553f100");
  });

  it("refuses flags the basic class does not define", () => {
    for (const flags of ["0001", "0002"]) {
      const err = (() => {
        try {
          parseAll(decodeBasicProperties, hex(flags));
        } catch (e) {
          return e as DecodeError;
        }
      })();
      expect(err).toBeInstanceOf(DecodeError);
      expect(err!.code).toBe("BAD_VALUE");
    }
  });

  it("a short string property that is not UTF-8 is a syntax error", () => {
    expect(() => parseAll(decodeBasicProperties, hex("8000 02 c328"))).toThrow(/UTF-8/);
  });
});

/** The EncodeError message `f` throws (fails the test on anything else, a TypeError above all). */
function encodeFailure(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(EncodeError);
    return (e as EncodeError).message;
  }
  throw new Error("expected an EncodeError");
}

const encodeBad = (p: unknown) => encodeFailure(() => written((w) => encodeBasicProperties(w, p as PublishProperties)));

// Issue 8, defect 10: a wrong property used to fail as a DataView TypeError, "Cannot convert undefined to a
// BigInt", or not at all (priority 300 went out as 44). Each is now an EncodeError naming the property.
describe("bad properties are refused with an error naming the property", () => {
  it("timestamp: whole seconds, a bigint or a Date, nothing else", () => {
    expect(encodeBad({ timestamp: "2024-01-01" })).toBe(
      'Cannot encode basic properties: timestamp must be whole seconds since the epoch (a non-negative integer or bigint) or a Date, not a string ("2024-01-01")',
    );
    expect(encodeBad({ timestamp: 1.5 })).toMatch(/^Cannot encode basic properties: timestamp must be whole seconds .*, not 1\.5$/);
    expect(encodeBad({ timestamp: -1 })).toMatch(/timestamp must be/);
    expect(encodeBad({ timestamp: 2n ** 64n })).toMatch(/timestamp must be .*, not 18446744073709551616n$/);
    expect(encodeBad({ timestamp: new Date(Number.NaN) })).toBe("Cannot encode basic properties: timestamp must be a valid Date no earlier than 1970, not an invalid Date");
    expect(encodeBad({ timestamp: new Date(-1000) })).toMatch(/timestamp must be a valid Date no earlier than 1970/);
  });

  it("deliveryMode: 1 or 2 (RabbitMQ closes the channel with 406 for any other)", () => {
    expect(encodeBad({ deliveryMode: 7 })).toBe("Cannot encode basic properties: deliveryMode must be 1 (transient) or 2 (persistent), not 7");
    expect(encodeBad({ deliveryMode: 0 })).toMatch(/deliveryMode must be 1/);
    expect(encodeBad({ deliveryMode: "2" })).toMatch(/deliveryMode must be 1 .*, not a string \("2"\)$/);
  });

  it("priority: an integer from 0 to 255 (not silently truncated to an octet)", () => {
    expect(encodeBad({ priority: 300 })).toBe("Cannot encode basic properties: priority must be an integer from 0 to 255, not 300");
    expect(encodeBad({ priority: -1 })).toMatch(/priority must be/);
    expect(encodeBad({ priority: 1.5 })).toMatch(/priority must be/);
    expect(encodeBad({ priority: Number.NaN })).toMatch(/priority must be .*, not NaN$/);
  });

  it("headers: an object, and every value in it encodable", () => {
    expect(encodeBad({ headers: "x-retry=1" })).toBe('Cannot encode basic properties: headers must be an object (a field table), not a string ("x-retry=1")');
    expect(encodeBad({ headers: [1, 2] })).toMatch(/headers must be an object \(a field table\), not an array$/);
    expect(encodeBad({ headers: new Map() })).toMatch(/headers must be an object \(a field table\), not a Map$/);
    expect(encodeBad({ headers: null })).toMatch(/headers must be .*, not null$/);
    expect(encodeBad({ headers: { a: { b: Number.NaN } } })).toMatch(/^Cannot encode basic properties: headers: "a\.b" is NaN, which RabbitMQ cannot parse/);
  });

  it("short strings: a string of at most 255 bytes of UTF-8", () => {
    expect(encodeBad({ contentType: "x".repeat(300) })).toBe("Cannot encode basic properties: contentType must be at most 255 bytes of UTF-8, not 300");
    expect(encodeBad({ messageId: "é".repeat(128) })).toBe("Cannot encode basic properties: messageId must be at most 255 bytes of UTF-8, not 256");
    expect(encodeBad({ correlationId: 42 })).toBe("Cannot encode basic properties: correlationId must be a string, not 42");
    expect(encodeBad({ appId: null })).toBe("Cannot encode basic properties: appId must be a string, not null");
    expect(encodeBad({ expiration: 60000 })).toBe('Cannot encode basic properties: expiration must be a string of milliseconds (e.g. "60000"), not 60000');
    for (const name of ["contentEncoding", "replyTo", "type", "userId", "clusterId"]) {
      expect(encodeBad({ [name]: {} })).toBe(`Cannot encode basic properties: ${name} must be a string, not an Object`);
    }
    expect(written((w) => encodeBasicProperties(w, { contentType: "x".repeat(255) })).length).toBe(2 + 1 + 255);
  });

  it("the properties themselves: an object", () => {
    expect(encodeBad("text/plain")).toBe('Cannot encode basic properties: properties must be an object, not a string ("text/plain")');
  });

  it("a bad property leaves no half-written message: encodeContent rolls back", () => {
    const w = new Writer();
    w.u8(1);
    const publish = { name: "basic.publish", classId: 60, methodId: 40, exchange: "", routingKey: "q", mandatory: false, immediate: false } as const;
    expect(() => encodeContent(w, 1, publish, { priority: 300 }, new Uint8Array(3), 4096)).toThrow(/priority must be/);
    expect(w.length).toBe(1);
  });

  it("a body that is not bytes is an EncodeError, not a BigInt conversion failure", () => {
    const publish = { name: "basic.publish", classId: 60, methodId: 40, exchange: "", routingKey: "q", mandatory: false, immediate: false } as const;
    const err = encodeFailure(() => encodeContent(new Writer(), 1, publish, {}, { a: 1 } as unknown as Uint8Array, 4096));
    expect(err).toBe("Cannot encode content: the body must be a Uint8Array, not object");
  });
});

describe("a Date timestamp", () => {
  it("encodes as whole seconds since the epoch and decodes to that number", () => {
    const ms = 1_700_000_000_999;
    const date = new Date(ms);
    const bytes = written((w) => encodeBasicProperties(w, { timestamp: date }));
    expect(toHex(bytes)).toBe(toHex(written((w) => encodeBasicProperties(w, { timestamp: Math.floor(ms / 1000) }))));
    expect(parseAll(decodeBasicProperties, bytes).timestamp).toBe(1_700_000_000);
  });

  it("the epoch itself is 0", () => {
    expect(parseAll(decodeBasicProperties, written((w) => encodeBasicProperties(w, { timestamp: new Date(0) }))).timestamp).toBe(0);
  });

  it("BasicProperties (what a delivery carries) can be published again as PublishProperties", () => {
    const received: BasicProperties = { timestamp: 5, deliveryMode: 2 };
    const again: PublishProperties = received;
    expect(parseAll(decodeBasicProperties, written((w) => encodeBasicProperties(w, again)))).toMatchObject(received);
  });
});
