import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { decodeBasicProperties, DecodeError, encodeBasicProperties, parseAll, type BasicProperties } from "../../src/codec/index.ts";
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
