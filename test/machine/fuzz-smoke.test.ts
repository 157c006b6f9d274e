/**
 * A short run of the machine fuzz target (fuzz/machine-target.ts): arbitrary and mutated broker bytes after a
 * completed handshake never make the machine throw, hang, or break the settlement rules.
 */
import { describe, expect, it } from "vitest";
import { fuzzMachine } from "../../fuzz/machine-target.ts";

describe("machine fuzz smoke", () => {
  it("300 runs from seed 1: no crashes", () => {
    const result = fuzzMachine(300, 1);
    expect(result.runs).toBe(300);
    expect(result.crashes.map((c) => `${c.error}\n  ${c.input.slice(0, 300)}`)).toEqual([]);
  }, 60_000);

  it("is deterministic: the same seed gives the same crashes", () => {
    expect(fuzzMachine(20, 7).crashes).toEqual(fuzzMachine(20, 7).crashes);
  });
});
