/**
 * The fuzz targets (fuzz/targets.ts) for a small fixed budget with a fixed seed: every random input and
 * every fixed extreme-length case is either accepted or rejected with a DecodeError, and the target-specific
 * invariants hold (chunking-independence, bounded buffering, round trips). `npm run fuzz` runs the same
 * targets at scale with a fresh seed.
 *
 * The time limit is loose here (a test runner shares the CPU); the CLI enforces 20 ms per input. The timing
 * case that compares whole runs (chunk scaling) is left to fuzz-regressions.test.ts.
 */
import { describe, expect, it } from "vitest";
import { runTarget, TARGETS } from "../../fuzz/targets.ts";

const SEED = 20240601;
const RUNS = 400;

describe("fuzz smoke", () => {
  for (const target of TARGETS) {
    it(`${target}: ${RUNS} inputs from seed ${SEED} and the extreme-length cases give only DecodeErrors`, () => {
      const stats = runTarget(target, RUNS, SEED, { timeLimitMs: 250, skipScaling: true });
      expect(stats.crashes.map((c) => `#${c.index} ${c.kind}: ${c.message}`)).toEqual([]);
      expect(stats.inputs).toBe(RUNS);
      expect(stats.extremes).toBeGreaterThan(0);
      // the generators must reach both outcomes, or the target is testing nothing
      expect(stats.accepted).toBeGreaterThan(RUNS / 20);
      expect(stats.rejected).toBeGreaterThan(RUNS / 20);
    });
  }
});
