/**
 * The reconnect policy (src/client/recovery/backoff.ts): defaults, the delay sequence under each jitter with
 * a fixed random source, the cap, the attempt and time limits, and validation that names the option.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { UsageError } from "../../../src/client/errors.ts";
import { nextDelay, type ReconnectOptions, resolveReconnectPolicy } from "../../../src/client/recovery/backoff.ts";

const always = (r: number) => () => r;

/** The waits before attempts 1..n, or "give up" where the policy stops. */
function sequence(options: ReconnectOptions, n: number, random: () => number, elapsed: (attempt: number) => number = () => 0): (number | "give up")[] {
  const policy = resolveReconnectPolicy(options);
  return Array.from({ length: n }, (_, i) => nextDelay(policy, i + 1, random, elapsed(i + 1)) ?? "give up");
}

describe("defaults", () => {
  it("are an immediate first retry, then 100 ms doubling to 30 s, full jitter, no limit", () => {
    expect(resolveReconnectPolicy()).toEqual({ initialDelayMs: 100, multiplier: 2, maxDelayMs: 30_000, jitter: "full", maxAttempts: Infinity, maxElapsedMs: Infinity });
    expect(resolveReconnectPolicy({})).toEqual(resolveReconnectPolicy());
  });

  it("never give up by themselves", () => {
    const policy = resolveReconnectPolicy();
    expect(nextDelay(policy, 1_000_000, always(0.5), 1e12)).toBe(15_000);
  });

  it("are frozen", () => {
    expect(Object.isFrozen(resolveReconnectPolicy())).toBe(true);
  });
});

describe("the delay sequence", () => {
  it("with no jitter: 0, 100, 200, 400, … up to the cap", () => {
    expect(sequence({ jitter: "none" }, 12, always(0.5))).toEqual([0, 100, 200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000]);
  });

  it("with full jitter: a uniform wait from 0 to the capped delay", () => {
    expect(sequence({}, 5, always(0))).toEqual([0, 0, 0, 0, 0]);
    expect(sequence({}, 5, always(1))).toEqual([0, 100, 200, 400, 800]);
    expect(sequence({}, 5, always(0.5))).toEqual([0, 50, 100, 200, 400]);
  });

  it("with equal jitter: half the capped delay plus a random part of the other half", () => {
    expect(sequence({ jitter: "equal" }, 5, always(0))).toEqual([0, 50, 100, 200, 400]);
    expect(sequence({ jitter: "equal" }, 5, always(1))).toEqual([0, 100, 200, 400, 800]);
    expect(sequence({ jitter: "equal" }, 5, always(0.5))).toEqual([0, 75, 150, 300, 600]);
  });

  it("the first retry is immediate whatever the jitter or random source", () => {
    for (const jitter of ["full", "equal", "none"] as const) expect(sequence({ jitter, initialDelayMs: 5000 }, 1, always(0.9))).toEqual([0]);
  });

  it("the cap holds after many attempts (no overflow to Infinity or NaN)", () => {
    const policy = resolveReconnectPolicy({ maxDelayMs: 1000, jitter: "none" });
    expect(nextDelay(policy, 5000, always(0))).toBe(1000);
    expect(nextDelay(resolveReconnectPolicy({ maxDelayMs: 1000 }), 5000, always(0))).toBe(0);
  });

  it("follows initialDelayMs, multiplier and maxDelayMs", () => {
    expect(sequence({ initialDelayMs: 250, multiplier: 3, maxDelayMs: 5000, jitter: "none" }, 6, always(0))).toEqual([0, 250, 750, 2250, 5000, 5000]);
    expect(sequence({ initialDelayMs: 1000, multiplier: 1, jitter: "none" }, 4, always(0))).toEqual([0, 1000, 1000, 1000]);
  });

  it("an initialDelayMs above 30 s raises the default cap to it", () => {
    expect(resolveReconnectPolicy({ initialDelayMs: 60_000 }).maxDelayMs).toBe(60_000);
  });

  it("a random source that misbehaves (1, above 1, below 0, NaN) stays within [0, cap]", () => {
    const policy = resolveReconnectPolicy({ maxDelayMs: 1000 });
    expect(nextDelay(policy, 20, always(1.5))).toBe(1000);
    expect(nextDelay(policy, 20, always(-1))).toBe(0);
    expect(nextDelay(policy, 20, always(Number.NaN))).toBe(0);
  });

  it("every delay is a whole number from 0 to the cap, for any random value", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.constantFrom("full", "equal", "none" as const), (attempt, r, jitter) => {
        const policy = resolveReconnectPolicy({ jitter, maxDelayMs: 10_000 });
        const d = nextDelay(policy, attempt, () => r)!;
        expect(Number.isInteger(d)).toBe(true);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(10_000);
      }),
    );
  });
});

describe("limits", () => {
  it("maxAttempts allows that many attempts, then gives up", () => {
    expect(sequence({ maxAttempts: 3, jitter: "none" }, 5, always(0))).toEqual([0, 100, 200, "give up", "give up"]);
  });

  it("maxElapsedMs gives up once that much time has passed since the loss", () => {
    const policy = resolveReconnectPolicy({ maxElapsedMs: 1000, jitter: "none" });
    expect(nextDelay(policy, 2, always(0), 999)).toBe(1);
    expect(nextDelay(policy, 2, always(0), 1000)).toBeUndefined();
    expect(nextDelay(policy, 2, always(0), 5000)).toBeUndefined();
  });

  it("maxElapsedMs shortens the last wait so the final attempt starts at the deadline, not never", () => {
    const policy = resolveReconnectPolicy({ maxElapsedMs: 10_000, initialDelayMs: 8000, jitter: "none" });
    expect(nextDelay(policy, 2, always(0), 5000)).toBe(5000);
  });

  it("a zero time budget still allows the immediate first attempt, and nothing after it", () => {
    const policy = resolveReconnectPolicy({ maxElapsedMs: 0 });
    expect(nextDelay(policy, 1, always(0), 0)).toBe(0);
    expect(nextDelay(policy, 2, always(0), 0)).toBeUndefined();
  });

  it("whichever limit comes first wins", () => {
    const elapsed = (attempt: number) => attempt * 100;
    expect(sequence({ maxAttempts: 10, maxElapsedMs: 350, jitter: "none" }, 5, always(0), elapsed)).toEqual([0, 100, 50, "give up", "give up"]);
    expect(sequence({ maxAttempts: 2, maxElapsedMs: 1e6, jitter: "none" }, 3, always(0), elapsed)).toEqual([0, 100, "give up"]);
  });
});

describe("validation", () => {
  const cases: [ReconnectOptions, RegExp][] = [
    [{ initialDelayMs: -1 }, /reconnect\.initialDelayMs must be a whole number from 0 to 2147483647, not -1/],
    [{ initialDelayMs: 1.5 }, /reconnect\.initialDelayMs/],
    [{ initialDelayMs: 2 ** 31 }, /reconnect\.initialDelayMs/],
    [{ maxDelayMs: Number.NaN }, /reconnect\.maxDelayMs must be a whole number from 0 to 2147483647, not NaN/],
    [{ maxDelayMs: 50 }, /reconnect\.maxDelayMs \(50\) must be at least reconnect\.initialDelayMs \(100\)/],
    [{ multiplier: 0.5 }, /reconnect\.multiplier must be a finite number of at least 1, not 0\.5/],
    [{ multiplier: Infinity }, /reconnect\.multiplier/],
    [{ jitter: "half" as "full" }, /reconnect\.jitter must be one of "full", "equal", "none", not "half"/],
    [{ maxAttempts: 0 }, /reconnect\.maxAttempts must be a whole number from 1/],
    [{ maxAttempts: "3" as unknown as number }, /reconnect\.maxAttempts must be a whole number from 1 to \d+, not "3"/],
    [{ maxElapsedMs: -5 }, /reconnect\.maxElapsedMs must be a whole number from 0/],
  ];
  for (const [options, message] of cases) {
    it(`refuses ${JSON.stringify(options) ?? String(options)} with a UsageError naming the option`, () => {
      expect(() => resolveReconnectPolicy(options)).toThrow(UsageError);
      expect(() => resolveReconnectPolicy(options)).toThrow(message);
    });
  }

  it("refuses something that is not an options object", () => {
    expect(() => resolveReconnectPolicy(5 as unknown as ReconnectOptions)).toThrow(/Option reconnect must be an object/);
  });

  it("nextDelay refuses an attempt number below 1 or an elapsed time that is not a number", () => {
    const policy = resolveReconnectPolicy();
    expect(() => nextDelay(policy, 0, always(0))).toThrow(UsageError);
    expect(() => nextDelay(policy, 1, always(0), Number.NaN)).toThrow(/elapsedMs/);
  });
});
