/**
 * The Writer's slab policy (src/codec/writer.ts): outputs share a slab, a big output grows it, and once a big
 * output has been handed out the writer returns to its normal slab size (issue 8, defect 7: one 50 MiB
 * publish used to leave the connection holding a 100 MiB slab for life). Handed-out bytes are never reused.
 */
import { describe, expect, it } from "vitest";
import { Writer } from "../../src/codec/writer.ts";

const DEFAULT_SLAB = 64 * 1024;
const MiB = 1024 * 1024;

describe("Writer slab size", () => {
  it("returns to the default slab after a 50 MiB output is handed out", () => {
    const w = new Writer();
    expect(w.bytes.length).toBe(DEFAULT_SLAB);
    const body = new Uint8Array(50 * MiB).fill(7);
    w.u32(body.length);
    w.raw(body);
    const big = w.finish();
    expect(big.length).toBe(50 * MiB + 4);
    expect(w.bytes.length).toBeLessThanOrEqual(DEFAULT_SLAB);

    w.u16(0xbeef);
    const small = w.finish();
    expect(Array.from(small)).toEqual([0xbe, 0xef]);
    expect(w.bytes.length).toBe(DEFAULT_SLAB);
    expect(small.buffer).not.toBe(big.buffer);
  });

  it("never writes into a big output it handed out, whatever comes after", () => {
    const w = new Writer(1024);
    w.raw(new Uint8Array(100_000).fill(0xaa));
    const big = w.finish();
    for (let i = 0; i < 100; i++) {
      w.raw(new Uint8Array(500).fill(i));
      w.finish();
    }
    expect(big.every((b) => b === 0xaa)).toBe(true);
  });

  it("returns to the default slab when a big pending output is discarded", () => {
    const w = new Writer(1024);
    w.u8(1);
    const kept = w.finish();
    w.raw(new Uint8Array(1 * MiB));
    w.discard();
    expect(w.length).toBe(0);
    expect(w.bytes.length).toBe(1024);
    w.u8(2);
    expect(Array.from(w.finish())).toEqual([2]);
    expect(Array.from(kept)).toEqual([1]);
  });

  it("keeps a slab grown only a little, so steady medium outputs do not reallocate every time", () => {
    const w = new Writer(1024);
    w.raw(new Uint8Array(1500));
    w.finish();
    const grown = w.bytes;
    expect(grown.length).toBeGreaterThan(1024);
    w.u8(1);
    w.finish();
    expect(w.bytes).toBe(grown);
  });

  it("keeps sharing one slab between small outputs", () => {
    const w = new Writer();
    w.u32(1);
    const a = w.finish();
    w.u32(2);
    const b = w.finish();
    expect(a.buffer).toBe(b.buffer);
    expect(b.byteOffset).toBe(a.byteOffset + 4);
  });
});
