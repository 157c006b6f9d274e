/**
 * Inputs the fuzzer (fuzz/run.ts) found, kept as regression tests.
 *
 * frames-<seed>-extreme.hex — found by the fixed "byte by byte" case of the frames target: one body frame
 * delivered one byte per chunk. Every chunk was handled correctly, but the time grew with the square of the
 * chunk count: FrameDecoder.consume() removed consumed chunks with `this.chunks.shift()` in a loop, and V8
 * moves the whole remaining list on each shift once the list is large (its backing store in large-object
 * space) or while a GC is marking. A 128 KiB frame in 1-byte chunks took 12.4 s, in 4-byte chunks 1.3 s.
 * Fixed in src (the decoder now advances a head index): 0.11 s and 0.014 s.
 */
import { describe, expect, it } from "vitest";
import { encodeBodyFrames, FrameDecoder, Writer } from "../../src/codec/index.ts";
import { checkInput } from "../../fuzz/targets.ts";

describe("fuzz regressions", () => {
  it("the crash input — a 64 KiB body frame — decodes to one frame, whole and in pieces, with no error", () => {
    const w = new Writer();
    encodeBodyFrames(w, 1, new Uint8Array(65536), 65544);
    const frame = w.finish();
    expect(checkInput("frames", frame)).toEqual([]);
    // and one byte per chunk, for a smaller frame (a full-size one is timed below)
    const small = frame.subarray(0, 8200).slice();
    small.set([0, 0, 0x20, 0x00], 3); // size 8192
    small[8199] = 0xce;
    const d = new FrameDecoder({ frameMax: 0 });
    const frames = [];
    for (let i = 0; i < small.length; i++) {
      d.push(small.subarray(i, i + 1));
      for (let f = d.next(); f !== undefined; f = d.next()) frames.push(f);
    }
    expect(frames).toHaveLength(1);
    expect(frames[0]).toMatchObject({ type: 3, channel: 1 });
    expect(d.buffered).toBe(0);
  });

  // Was quadratic (chunks.shift() per consumed chunk: 12 s for this input); now a head index. A bound far
  // above the linear cost (~0.3 s here) guards against the quadratic path coming back without timing noise.
  it("reassembles a 128 KiB frame fed one byte per chunk in linear time", () => {
    const w = new Writer();
    encodeBodyFrames(w, 1, new Uint8Array(131072), 131080);
    const frame = w.finish();
    const d = new FrameDecoder({ frameMax: 0 });
    const t0 = performance.now();
    let frames = 0;
    for (let i = 0; i < frame.length; i++) {
      d.push(frame.subarray(i, i + 1));
      for (let f = d.next(); f !== undefined; f = d.next()) frames++;
    }
    expect(frames).toBe(1);
    expect(performance.now() - t0).toBeLessThan(4000);
  });
});
