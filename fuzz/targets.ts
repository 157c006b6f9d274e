/**
 * The fuzz targets, importable (fuzz/run.ts is the CLI; test/codec/fuzz-smoke.test.ts runs them briefly).
 *
 * The invariant is h11's, in one sentence: any input is either accepted or rejected with a `DecodeError`
 * (an instance, with a string `code` and a numeric `replyCode`) — nothing else may escape a decoder. On top
 * of that each target checks what the codec promises about that input:
 *
 *   frames   FrameDecoder over random and mutated byte streams, pushed in random chunk sizes and drained
 *            with `next()` until it returns undefined. Also: `buffered` never exceeds the bytes pushed (a
 *            frame declaring 2^32-1 bytes is refused or waited for, never allocated); the result — frames,
 *            then an error code or "needs more" — is the same as for the whole input pushed at once; a
 *            failed decoder keeps throwing the same error; a non-DecodeError that FrameDecoder.next() wrapped
 *            into FRAME_INVALID counts as a crash, since the wrapping would otherwise hide it.
 *   tables   decodeFieldTable, decodeFieldArray and decodeBasicProperties under `parseAll`. An accepted input
 *            must survive encode → decode to an equal value.
 *   methods  decodeMethodPayload under `parseAll`, for real and random class/method ids with generated,
 *            mutated and random arguments. An accepted input must survive encode → decode to an equal value.
 *
 * Every input must also finish within the time limit (20 ms by default): one that does not is timed twice
 * more and only counts as a crash if its best time is still over (a GC pause is not a finding).
 *
 * Input #i of a run with seed S is generated from its own PRNG seeded with `inputSeed(S, i)`, so a crash
 * reproduces from (S, i) alone, and its bytes are returned for the CLI to save.
 */
import {
  DecodeError,
  DecodeErrorCode,
  decodeBasicProperties,
  decodeFieldArray,
  decodeFieldTable,
  decodeMethodPayload,
  Decimal,
  encodeBasicProperties,
  encodeFieldArray,
  encodeFieldTable,
  encodeHeaderFrame,
  encodeMethodFrame,
  encodeMethodPayload,
  encodeBodyFrames,
  EncodeError,
  decodeFrame,
  type Frame,
  FrameDecoder,
  METHODS,
  type Method,
  parseAll,
  type Parser,
  TypedField,
  Writer,
} from "../src/codec/index.ts";
import {
  bytesOfHex,
  encodedArray,
  encodedProperties,
  encodedTable,
  methodArguments,
  mutate,
  nestedContainer,
  splitFrames,
  seedPayloads,
  seedStreams,
  seedTables,
  writeU32,
} from "./corpus.ts";
import { inputSeed, Rng } from "./rng.ts";
import { concat } from "../test/support/bytes.ts";

export const TARGETS = ["frames", "tables", "methods"] as const;
export type TargetName = (typeof TARGETS)[number];

export type FailureKind =
  | "exception" // something other than a DecodeError escaped
  | "wrapped" // FrameDecoder turned a non-DecodeError into FRAME_INVALID
  | "sticky" // a failed FrameDecoder did not keep throwing the same error
  | "buffered" // FrameDecoder.buffered exceeded the bytes pushed
  | "split" // chunked and whole-input decoding disagreed
  | "roundtrip" // an accepted value did not survive encode → decode
  | "memory" // an extreme length made the decoder allocate
  | "expectation" // a fixed extreme case did not give its documented outcome
  | "slow"; // over the time limit, three times

export interface Failure {
  kind: FailureKind;
  message: string;
}

export interface Crash extends Failure {
  target: TargetName;
  seed: number;
  /** Input index, or -1 for the fixed extreme cases. */
  index: number;
  input: Uint8Array;
}

export interface TargetStats {
  target: TargetName;
  seed: number;
  /** Random inputs run (the `runs` asked for). */
  inputs: number;
  /** Fixed extreme-length cases run in addition. */
  extremes: number;
  /** Slowest input, in milliseconds. */
  maxMs: number;
  /** Inputs decoded without error / rejected with a DecodeError. */
  accepted: number;
  rejected: number;
  /** DecodeError codes seen, with counts. */
  codes: Record<string, number>;
  crashes: Crash[];
}

export interface RunOptions {
  /** Per-input time limit in ms (default 20). */
  timeLimitMs?: number;
  /** Skip the fixed extreme-length cases (default false). */
  skipExtremes?: boolean;
  /**
   * Skip the fixed timing case of the frames target, {@link checkChunkScaling} (default false): it times
   * whole runs against each other, which a test runner sharing the CPU can upset, so the vitest smoke run
   * leaves it to test/codec/fuzz-regressions.test.ts.
   */
  skipScaling?: boolean;
  /** Run only input `only` (for reproducing one crash). */
  only?: number;
}

const CODES: ReadonlySet<string> = new Set(Object.values(DecodeErrorCode));

/** Undefined when `e` is an acceptable rejection, a description otherwise. */
function badError(e: unknown): Failure | undefined {
  if (!(e instanceof DecodeError)) {
    const what = e instanceof Error ? `${e.name}: ${e.message}` : `non-Error ${Object.prototype.toString.call(e)} ${String(e)}`;
    return { kind: "exception", message: `threw ${what}` };
  }
  if (typeof e.code !== "string" || !CODES.has(e.code)) return { kind: "exception", message: `DecodeError with code ${String(e.code)}` };
  if (typeof e.replyCode !== "number" || !Number.isInteger(e.replyCode)) {
    return { kind: "exception", message: `DecodeError ${e.code} with replyCode ${String(e.replyCode)}` };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Value equality for round trips (NaN equals NaN; table key order is not significant)

function sameValue(a: unknown, b: unknown, depth = 0): boolean {
  if (depth > 200) return false;
  if (typeof a === "number" && typeof b === "number") return Object.is(a, b);
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return a === b;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && Object.is(a.getTime(), b.getTime());
  if (a instanceof Decimal || b instanceof Decimal) return a instanceof Decimal && b instanceof Decimal && a.scale === b.scale && a.value === b.value;
  if (a instanceof TypedField || b instanceof TypedField) {
    return a instanceof TypedField && b instanceof TypedField && a.type === b.type && sameValue(a.value, b.value, depth + 1);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!(Array.isArray(a) && Array.isArray(b)) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameValue(a[i], b[i], depth + 1)) return false;
    return true;
  }
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    const k = ka[i]!;
    if (k !== kb[i]) return false;
    if (!sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], depth + 1)) return false;
  }
  return true;
}

function written(write: (w: Writer) => void): Uint8Array {
  const w = new Writer(256);
  write(w);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------------------
// Outcome bookkeeping shared by the targets

interface Outcome {
  accepted: boolean;
  code?: string;
  failure?: Failure;
}

/** Runs `decode`, classifying the result; `onValue` may report a failure for an accepted value. */
function attempt<T>(decode: () => T, onValue: (v: T) => Failure | undefined): Outcome {
  let v: T;
  try {
    v = decode();
  } catch (e) {
    const bad = badError(e);
    if (bad) return { accepted: false, failure: bad };
    return { accepted: false, code: (e as DecodeError).code };
  }
  try {
    const f = onValue(v);
    return f ? { accepted: true, failure: f } : { accepted: true };
  } catch (e) {
    return { accepted: true, failure: { kind: "roundtrip", message: `re-encoding the decoded value threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}` } };
  }
}

// ---------------------------------------------------------------------------------------------------------
// Target: frames

function summarize(f: Frame): string {
  switch (f.type) {
    case "protocol-header":
      return `AMQP${f.major}.${f.minor}.${f.revision}`;
    case 1:
      return `1/${f.channel}/${f.method.name}`;
    case 2:
      return `2/${f.channel}/${f.classId}/${String(f.bodySize)}/${Object.keys(f.properties).filter((k) => f.properties[k as keyof typeof f.properties] !== undefined).join(",")}`;
    case 3:
      return `3/${f.channel}/${f.payload.length}`;
    case 8:
      return "8";
  }
}

interface StreamResult {
  frames: string[];
  end: string;
  failure?: Failure;
}

/** Feeds `input` to a fresh FrameDecoder in the given chunk sizes, draining after every push. */
function decodeStream(input: Uint8Array, chunkSizes: readonly number[], frameMax: number): StreamResult {
  const d = new FrameDecoder({ frameMax });
  const frames: string[] = [];
  let pushed = 0;
  let at = 0;
  let k = 0;
  while (at < input.length) {
    const size = Math.max(1, chunkSizes[k++ % chunkSizes.length]!);
    const chunk = input.subarray(at, Math.min(input.length, at + size));
    at += chunk.length;
    d.push(chunk);
    pushed += chunk.length;
    for (;;) {
      if (d.buffered > pushed || d.buffered < 0) {
        return { frames, end: "", failure: { kind: "buffered", message: `buffered ${d.buffered} after ${pushed} bytes pushed` } };
      }
      let f: Frame | undefined;
      try {
        f = d.next();
      } catch (e) {
        const bad = badError(e);
        if (bad) return { frames, end: "", failure: bad };
        const err = e as DecodeError;
        if (err.code === "FRAME_INVALID" && err.message.startsWith("Cannot decode frame: ")) {
          return { frames, end: "", failure: { kind: "wrapped", message: `FrameDecoder wrapped a non-DecodeError: ${err.message}` } };
        }
        let again: unknown;
        try {
          d.next();
        } catch (e2) {
          again = e2;
        }
        if (again !== err) return { frames, end: "", failure: { kind: "sticky", message: `after ${err.code}, next() gave ${String(again)}` } };
        return { frames, end: `error ${err.code}` };
      }
      if (f === undefined) break;
      frames.push(summarize(f));
    }
  }
  if (d.buffered > input.length) return { frames, end: "", failure: { kind: "buffered", message: `buffered ${d.buffered} > input ${input.length}` } };
  return { frames, end: `needs more (${d.buffered} buffered)` };
}

/** Chunk sizes for one input: whole, byte by byte, or random — at most ~5000 chunks per input. */
function chunking(r: Rng, length: number): number[] {
  const floor = Math.max(1, Math.ceil(length / 5000));
  switch (r.weighted([1, 1, 6, 2])) {
    case 0:
      return [Math.max(1, length)];
    case 1:
      return [floor];
    case 2: {
      const sizes: number[] = [];
      for (let i = 0; i < 64; i++) sizes.push(Math.max(floor, r.range(1, r.pick([3, 8, 17, 64, 300, 4096]))));
      return sizes;
    }
    default:
      // frame-header-sized pieces, to split headers everywhere
      return [Math.max(floor, r.range(1, 9))];
  }
}

function pickFrameMax(r: Rng): number {
  return [131072, 131072, 131072, 0, 4096, r.range(8, 200_000)][r.int(6)]!;
}

/** decodeFrame (one whole frame, no streaming) on the input and on each frame its size fields cut out. */
function checkWholeFrames(input: Uint8Array): Failure | undefined {
  const pieces = [input, ...splitFrames(input).slice(0, 64)];
  for (const p of pieces) {
    try {
      decodeFrame(p);
    } catch (e) {
      const bad = badError(e);
      if (bad) return { kind: bad.kind, message: `decodeFrame: ${bad.message}` };
    }
  }
  return undefined;
}

function checkFrames(input: Uint8Array, r: Rng): Outcome {
  const whole1 = checkWholeFrames(input);
  if (whole1) return { accepted: false, failure: whole1 };
  const frameMax = pickFrameMax(r);
  const chunked = decodeStream(input, chunking(r, input.length), frameMax);
  if (chunked.failure) return { accepted: false, failure: chunked.failure };
  const whole = decodeStream(input, [Math.max(1, input.length)], frameMax);
  if (whole.failure) return { accepted: false, failure: whole.failure };
  const a = `${chunked.frames.join(" ")} | ${chunked.end}`;
  const b = `${whole.frames.join(" ")} | ${whole.end}`;
  if (a !== b) return { accepted: false, failure: { kind: "split", message: `chunked: ${a.slice(-300)}\nwhole:   ${b.slice(-300)}` } };
  if (whole.end.startsWith("error ")) return { accepted: false, code: whole.end.slice(6) };
  return { accepted: true };
}

/** A window of whole frames from one transcript direction, usually under 64 KiB. */
function frameWindow(r: Rng): { frames: Uint8Array[] } {
  const s = r.pick(seedStreams());
  const start = r.chance(0.3) ? 0 : r.int(s.frames.length);
  let count = r.range(1, Math.min(64, s.frames.length - start));
  if (r.chance(0.02)) count = s.frames.length - start;
  else {
    let bytes = 0;
    for (let i = 0; i < count; i++) {
      bytes += s.frames[start + i]!.length;
      if (bytes > 65536 && i > 0) {
        count = i;
        break;
      }
    }
  }
  return { frames: s.frames.slice(start, start + count).map((f) => f.slice()) };
}

function randomSeedFrame(r: Rng): Uint8Array {
  const s = r.pick(seedStreams());
  let f = r.pick(s.frames);
  if (f.length > 65536) f = f.subarray(0, 4096);
  return f;
}

/** Frame-aware mutations: size fields, body sizes, types, frame-ends, splices, swaps. */
function mutateFrames(r: Rng, frames: Uint8Array[]): void {
  const rounds = r.range(0, 3);
  for (let k = 0; k < rounds && frames.length > 0; k++) {
    const i = r.int(frames.length);
    const f = frames[i]!;
    switch (r.int(7)) {
      case 0:
        if (f.length >= 7) writeU32(f, 3, r.pick([0xffff_ffff, 0x7fff_ffff, 0x8000_0000, 0, 1, f.length - 8 + 1, f.length - 8 - 1, r.u32()]) >>> 0);
        break;
      case 1: {
        // a content header's body size: 2^63, 2^64-1, 0 or random (hi, lo)
        const headers = frames.filter((x) => x[0] === 2 && x.length >= 20);
        const h = headers.length > 0 ? r.pick(headers) : undefined;
        if (h) {
          const [hi, lo] = r.pick([
            [0x8000_0000, 0],
            [0xffff_ffff, 0xffff_ffff],
            [0, 0],
            [0x001f_ffff, 0xffff_ffff],
            [0x0020_0000, 0],
            [r.u32(), r.u32()],
          ] as const);
          writeU32(h, 11, hi);
          writeU32(h, 15, lo);
        }
        break;
      }
      case 2:
        if (f.length > 0) f[0] = r.pick([0, 1, 2, 3, 4, 8, 0x41, 0xce, r.int(256)]);
        break;
      case 3:
        if (f.length > 0) f[f.length - 1] = r.pick([0, 0xcd, 0xcf, r.int(256)]);
        break;
      case 4:
        frames.splice(r.int(frames.length + 1), 0, randomSeedFrame(r).slice());
        break;
      case 5: {
        const j = r.int(frames.length);
        frames[i] = frames[j]!;
        frames[j] = f;
        break;
      }
      default:
        if (f.length >= 3) {
          f[1] = r.int(256);
          f[2] = r.int(256);
        }
    }
  }
}

function frameInput(r: Rng): Uint8Array {
  switch (r.weighted([1, 1, 7, 1])) {
    case 0:
      return r.bytes(r.smallLength(600));
    case 1: {
      // a plausible header in front of random bytes
      const body = r.bytes(r.smallLength(300));
      const head = Uint8Array.of(r.pick([1, 2, 3, 8]), 0, r.int(3), 0, 0, 0, 0);
      writeU32(head, 3, r.chance(0.7) ? body.length : r.u32());
      return concat([head, body, r.chance(0.8) ? Uint8Array.of(0xce) : r.bytes(1)]);
    }
    case 2: {
      const { frames } = frameWindow(r);
      mutateFrames(r, frames);
      const stream = concat(frames);
      return r.chance(0.6) ? mutate(r, stream, () => randomSeedFrame(r), 4) : stream;
    }
    default: {
      // generated frames: a method frame and a content header with extreme body sizes
      const w = new Writer();
      encodeMethodFrame(w, r.int(3), { name: "basic.deliver", classId: 60, methodId: 60, consumerTag: "ctag", deliveryTag: r.int(2 ** 40), redelivered: r.chance(0.5), exchange: "", routingKey: "q" });
      encodeHeaderFrame(w, r.int(3), 60, r.pick([2n ** 63n, 2n ** 64n - 1n, 0, 2 ** 53 - 1, 2n ** 53n]), { deliveryMode: 2 });
      const stream = w.finish().slice();
      return r.chance(0.5) ? mutate(r, stream, () => randomSeedFrame(r), 3) : stream;
    }
  }
}

interface ExtremeCase {
  name: string;
  chunks: Uint8Array[];
  frameMax: number;
  /** "frames:N", "error CODE" or "needs more". */
  expect: string;
}

function headerOf(type: number, channel: number, size: number): Uint8Array {
  const h = Uint8Array.of(type, channel >>> 8, channel & 0xff, 0, 0, 0, 0);
  writeU32(h, 3, size);
  return h;
}

/** Fixed cases run every time: frames declaring 2^32-1 and 2^31-1 bytes, body sizes of 2^63 and 2^64-1. */
export function extremeFrameCases(): ExtremeCase[] {
  const MiB = new Uint8Array(1 << 20);
  const chunksOf = (b: Uint8Array, n: number) => {
    const out: Uint8Array[] = [];
    for (let i = 0; i < b.length; i += n) out.push(b.subarray(i, i + n));
    return out;
  };
  const header = (bodySize: number | bigint) => written((w) => encodeHeaderFrame(w, 1, 60, bodySize, { contentType: "x" })).slice();
  const cases: ExtremeCase[] = [];
  for (const size of [0xffff_ffff, 0x7fff_ffff, 0xffff_fff8, 0x8000_0000]) {
    const hex = size.toString(16);
    cases.push({ name: `size 0x${hex}, default frame_max`, chunks: [headerOf(1, 0, size)], frameMax: 131072, expect: "error FRAME_TOO_LARGE" });
    cases.push({ name: `size 0x${hex}, header byte by byte`, chunks: chunksOf(headerOf(3, 1, size), 1), frameMax: 131072, expect: "error FRAME_TOO_LARGE" });
    cases.push({ name: `size 0x${hex}, 1 MiB following, frame_max 4096`, chunks: [headerOf(3, 1, size), ...chunksOf(MiB, 65536)], frameMax: 4096, expect: "error FRAME_TOO_LARGE" });
    // with no limit the decoder must wait for the bytes, holding only what it was given
    cases.push({ name: `size 0x${hex}, 1 MiB following, no frame_max`, chunks: [headerOf(3, 1, size), ...chunksOf(MiB, 65536)], frameMax: 0, expect: "needs more" });
  }
  for (const bodySize of [2n ** 63n, 2n ** 64n - 1n]) {
    const h = header(bodySize);
    cases.push({ name: `content header, body size ${bodySize}`, chunks: [h], frameMax: 131072, expect: "frames:1" });
    cases.push({ name: `content header, body size ${bodySize}, byte by byte`, chunks: chunksOf(h, 1), frameMax: 131072, expect: "frames:1" });
    const body = Uint8Array.of(3, 0, 1, 0, 0, 0, 2, 0xaa, 0xbb, 0xce);
    cases.push({ name: `content header, body size ${bodySize}, then a body frame`, chunks: [h, body], frameMax: 0, expect: "frames:2" });
  }
  // a headers table inside a content header declaring 2^32-1 bytes
  const props = written((w) => encodeBasicProperties(w, { headers: { a: 1 } })).slice();
  writeU32(props, 2, 0xffff_ffff);
  const payload = concat([Uint8Array.of(0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), props]);
  cases.push({ name: "headers table declaring 2^32-1 bytes", chunks: [headerOf(2, 1, payload.length), payload, Uint8Array.of(0xce)], frameMax: 131072, expect: "error TRUNCATED" });
  return cases;
}

/** Decodes one body frame of `payload` bytes pushed one byte per chunk; returns ms. */
export function timeByteByByte(payload: number): number {
  const w = new Writer();
  encodeBodyFrames(w, 1, new Uint8Array(payload), payload + 8);
  const frame = w.finish();
  const d = new FrameDecoder({ frameMax: 0 });
  const t = performance.now();
  let frames = 0;
  for (let i = 0; i < frame.length; i++) {
    d.push(frame.subarray(i, i + 1));
    while (d.next() !== undefined) frames++;
  }
  const ms = performance.now() - t;
  if (frames !== 1) throw new Error(`timeByteByByte: ${frames} frames`);
  return ms;
}

/**
 * A frame arriving in many tiny chunks (a trickling peer, a fragmenting transport) must cost time linear in
 * its size: the per-byte cost of a 64 KiB frame fed byte by byte may not exceed 4× that of a 4 KiB one.
 * Linear code gives about 1×; the quadratic reassembly this case found (FrameDecoder dropping consumed
 * chunks with `Array#shift()`, fixed in src since) gave 15–20×.
 */
export function checkChunkScaling(largeBytes = 65536): Failure | undefined {
  const smallBytes = 4096;
  let small = Infinity;
  for (let k = 0; k < 3; k++) small = Math.min(small, timeByteByByte(smallBytes));
  let large = timeByteByByte(largeBytes);
  const ratio = () => large / largeBytes / (small / smallBytes);
  if (ratio() > 4) large = Math.min(large, timeByteByByte(largeBytes));
  if (ratio() <= 4) return undefined;
  return {
    kind: "slow",
    message: `frame reassembly is linear in the chunk count: a ${largeBytes / 1024} KiB frame in 1-byte chunks took ${large.toFixed(0)} ms, ${ratio().toFixed(1)}× the per-byte cost of a 4 KiB one (${small.toFixed(1)} ms); limit 4×`,
  };
}

function runExtremeFrameCase(c: ExtremeCase): Failure | undefined {
  const input = concat(c.chunks);
  const before = process.memoryUsage().arrayBuffers;
  const res = decodeStream(input, c.chunks.map((x) => x.length), c.frameMax);
  const grown = process.memoryUsage().arrayBuffers - before;
  if (res.failure) return { kind: res.failure.kind, message: `${c.name}: ${res.failure.message}` };
  // everything the decoder may hold is the input itself (already allocated above); 64 MiB is far past it
  if (grown > 64 * 1024 * 1024) return { kind: "memory", message: `${c.name}: array buffers grew by ${grown} bytes` };
  const got = res.end.startsWith("needs more") ? (res.frames.length > 0 ? `frames:${res.frames.length}` : "needs more") : res.end;
  if (got !== c.expect) return { kind: "expectation", message: `${c.name}: expected ${c.expect}, got ${got} (${res.frames.join(" ")})` };
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Target: tables

type TableDecoder = "table" | "array" | "properties";

function checkTableBytes(kind: TableDecoder, input: Uint8Array): Outcome {
  switch (kind) {
    case "table":
      return attempt(
        () => parseAll(decodeFieldTable, input),
        (v) => roundTrip(v, (w, x) => encodeFieldTable(w, x), decodeFieldTable, "field table"),
      );
    case "array":
      return attempt(
        () => parseAll(decodeFieldArray, input),
        (v) => roundTrip(v, (w, x) => encodeFieldArray(w, x), decodeFieldArray, "field array"),
      );
    case "properties":
      return attempt(
        () => parseAll(decodeBasicProperties, input),
        (v) => {
          // Any octet decodes, but RabbitMQ refuses a delivery mode other than 1 or 2 (406), so the encoder does.
          if (v.deliveryMode !== undefined && v.deliveryMode !== 1 && v.deliveryMode !== 2) {
            return refusedNaming(() => written((w) => encodeBasicProperties(w, v)), "deliveryMode");
          }
          return roundTrip(v, (w, x) => encodeBasicProperties(w, x), decodeBasicProperties, "basic properties");
        },
      );
  }
}

function roundTrip<T>(v: T, encode: (w: Writer, v: T) => void, decode: Parser<T>, what: string): Failure | undefined {
  const bytes = written((w) => encode(w, v));
  const back = parseAll(decode, bytes);
  if (!sameValue(v, back)) return { kind: "roundtrip", message: `${what} changed through encode → decode` };
  return undefined;
}

/** The encode must fail with an EncodeError whose message names `what`. */
function refusedNaming(encode: () => unknown, what: string): Failure | undefined {
  try {
    encode();
  } catch (e) {
    if (e instanceof EncodeError && e.message.includes(what)) return undefined;
    return { kind: "roundtrip", message: `encoding a bad ${what} threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}` };
  }
  return { kind: "roundtrip", message: `encoding a bad ${what} did not throw` };
}

/** A field array whose one element is the given encoded table. */
function arrayHolding(table: Uint8Array): Uint8Array {
  const entry = concat([Uint8Array.of(0x46), table]);
  const len = new Uint8Array(4);
  writeU32(len, 0, entry.length);
  return concat([len, entry]);
}

function tableInput(r: Rng): { kind: TableDecoder; input: Uint8Array } {
  const kind = (["table", "array", "properties"] as const)[r.weighted([5, 2, 3])]!;
  const others = () => (r.chance(0.5) ? r.pick(seedTables()) : encodedTable(r));
  let base: Uint8Array;
  const pick = r.weighted([3, 5, 1, 2]);
  if (pick === 3) return { kind, input: r.bytes(r.smallLength(400)) };
  if (pick === 2) base = nestedContainer(r.range(55, 80), r.chance(0.5) ? "F" : "A");
  else if (kind === "table") base = pick === 0 ? r.pick(seedTables()) : encodedTable(r);
  else if (kind === "array") base = pick === 0 ? arrayHolding(r.pick(seedTables())) : encodedArray(r);
  else {
    const headers = seedPayloads(2);
    base = pick === 0 && headers.length > 0 ? r.pick(headers).subarray(12) : encodedProperties(r);
  }
  return { kind, input: r.chance(0.75) ? mutate(r, base, others) : base.slice() };
}

interface ExtremeBytes {
  name: string;
  kind: TableDecoder | "method";
  input: Uint8Array;
  /** "ok" or "error CODE". */
  expect: string;
}

export function extremeTableCases(): ExtremeBytes[] {
  const withLen = (prefix: number[], len: number, tail: number[] = []) => {
    const b = new Uint8Array(prefix.length + 4 + tail.length);
    b.set(prefix);
    writeU32(b, prefix.length, len);
    b.set(tail, prefix.length + 4);
    return b;
  };
  const inTable = (entry: Uint8Array) => concat([withLen([], entry.length), entry]);
  return [
    { name: "table declaring 2^32-1 bytes", kind: "table", input: withLen([], 0xffff_ffff), expect: "error TRUNCATED" },
    { name: "array declaring 2^31-1 bytes", kind: "array", input: withLen([], 0x7fff_ffff, [0x56]), expect: "error TRUNCATED" },
    { name: "longstr value declaring 2^32-1 bytes", kind: "table", input: inTable(withLen([1, 0x61, 0x53], 0xffff_ffff, [0x41])), expect: "error TRUNCATED" },
    { name: "byte array declaring 2^32-1 bytes", kind: "table", input: inTable(withLen([1, 0x61, 0x78], 0xffff_ffff)), expect: "error TRUNCATED" },
    { name: "tables nested 63 deep", kind: "table", input: nestedContainer(63, "F"), expect: "ok" },
    { name: "tables nested 64 deep", kind: "table", input: nestedContainer(64, "F"), expect: "error NESTING" },
    { name: "tables nested 3000 deep", kind: "table", input: nestedContainer(3000, "F"), expect: "error NESTING" },
    { name: "arrays nested 3000 deep", kind: "array", input: nestedContainer(3000, "A"), expect: "error NESTING" },
    { name: "timestamp 2^64-1", kind: "table", input: inTable(Uint8Array.of(1, 0x74, 0x54, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)), expect: "ok" },
    { name: "properties with every flag and nothing after", kind: "properties", input: Uint8Array.of(0xff, 0xfc), expect: "error TRUNCATED" },
    { name: "properties: timestamp 2^63", kind: "properties", input: Uint8Array.of(0x00, 0x40, 0x80, 0, 0, 0, 0, 0, 0, 0), expect: "ok" },
  ];
}

// ---------------------------------------------------------------------------------------------------------
// Target: methods

function checkMethodBytes(input: Uint8Array): Outcome {
  return attempt(
    () => parseAll(decodeMethodPayload, input),
    (m) => roundTrip<Method>(m, encodeMethodPayload, decodeMethodPayload, `method ${m.name}`),
  );
}

function methodInput(r: Rng): Uint8Array {
  const choice = r.weighted([6, 2, 1, 1]);
  if (choice === 2) {
    const seeds = seedPayloads(1);
    return mutate(r, r.pick(seeds), () => r.pick(seeds));
  }
  let classId: number;
  let methodId: number;
  const info = r.pick(METHODS);
  if (choice === 3) {
    classId = r.chance(0.5) ? info.classId : r.int(65536);
    methodId = r.int(65536);
  } else {
    classId = info.classId;
    methodId = info.methodId;
  }
  const args = r.chance(0.85) ? methodArguments(r, choice === 1 ? r.pick(METHODS) : info) : r.bytes(r.smallLength(300));
  const payload = concat([Uint8Array.of(classId >>> 8, classId & 0xff, methodId >>> 8, methodId & 0xff), args]);
  return r.chance(0.6) ? mutate(r, payload, () => methodArguments(r, r.pick(METHODS))) : payload;
}

export function extremeMethodCases(): ExtremeBytes[] {
  const start = (tableLen: number) => {
    const b = new Uint8Array(10);
    b.set([0, 10, 0, 10, 0, 9]);
    writeU32(b, 6, tableLen);
    return b;
  };
  return [
    { name: "connection.start with server-properties declaring 2^32-1 bytes", kind: "method", input: start(0xffff_ffff), expect: "error TRUNCATED" },
    { name: "connection.secure with a challenge declaring 2^32-1 bytes", kind: "method", input: Uint8Array.of(0, 10, 0, 20, 0xff, 0xff, 0xff, 0xff), expect: "error TRUNCATED" },
    { name: "class 65535 method 65535", kind: "method", input: Uint8Array.of(0xff, 0xff, 0xff, 0xff), expect: "error UNKNOWN_METHOD" },
    {
      name: "basic.deliver with delivery tag 2^64-1",
      kind: "method",
      input: bytesOfHex("003c003c 00 ffffffffffffffff 00 00 00"),
      expect: "ok",
    },
  ];
}

function runExtremeBytes(c: ExtremeBytes): Failure | undefined {
  const out = c.kind === "method" ? checkMethodBytes(c.input) : checkTableBytes(c.kind, c.input);
  if (out.failure) return { kind: out.failure.kind, message: `${c.name}: ${out.failure.message}` };
  const got = out.accepted ? "ok" : `error ${out.code}`;
  if (got !== c.expect) return { kind: "expectation", message: `${c.name}: expected ${c.expect}, got ${got}` };
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Running

/** Generates input `index` of a run seeded `seed` and returns it with the check that judges it. */
function makeInput(target: TargetName, seed: number, index: number): { input: Uint8Array; check: () => Outcome } {
  const r = new Rng(inputSeed(seed, index));
  switch (target) {
    case "frames": {
      const input = frameInput(r);
      const state = r.u32();
      // the check draws its chunking and frame_max from a PRNG of its own, the same on every re-run
      return { input, check: () => checkFrames(input, new Rng(state)) };
    }
    case "tables": {
      const { kind, input } = tableInput(r);
      return { input, check: () => checkTableBytes(kind, input) };
    }
    case "methods": {
      const input = methodInput(r);
      return { input, check: () => checkMethodBytes(input) };
    }
  }
}

function timed(check: () => Outcome): { out: Outcome; ms: number } {
  const t = performance.now();
  const out = check();
  return { out, ms: performance.now() - t };
}

/**
 * Runs `runs` inputs of one target (plus its fixed extreme cases) and returns what it saw.
 * @example runTarget("tables", 1000, 42).crashes.length; // 0
 */
export function runTarget(target: TargetName, runs: number, seed: number, options: RunOptions = {}): TargetStats {
  const limit = options.timeLimitMs ?? 20;
  const stats: TargetStats = { target, seed, inputs: 0, extremes: 0, maxMs: 0, accepted: 0, rejected: 0, codes: {}, crashes: [] };
  const record = (index: number, input: Uint8Array, f: Failure) => stats.crashes.push({ target, seed, index, input, kind: f.kind, message: f.message });

  if (!options.skipExtremes && options.only === undefined) {
    if (target === "frames") {
      for (const c of extremeFrameCases()) {
        stats.extremes++;
        const f = runExtremeFrameCase(c);
        if (f) record(-1, concat(c.chunks).subarray(0, 4096), f);
      }
      if (!options.skipScaling) {
        stats.extremes++;
        const f = checkChunkScaling();
        if (f) record(-1, written((w) => encodeBodyFrames(w, 1, new Uint8Array(65536), 65544)).slice(), f);
      }
    } else {
      for (const c of target === "tables" ? extremeTableCases() : extremeMethodCases()) {
        stats.extremes++;
        const f = runExtremeBytes(c);
        if (f) record(-1, c.input, f);
      }
    }
  }

  const from = options.only ?? 0;
  const to = options.only !== undefined ? options.only + 1 : runs;
  for (let i = from; i < to; i++) {
    const { input, check } = makeInput(target, seed, i);
    let { out, ms } = timed(check);
    if (ms > limit && !out.failure) {
      // re-time twice; only a consistently slow input is a finding
      for (let k = 0; k < 2 && ms > limit; k++) ms = Math.min(ms, timed(check).ms);
      if (ms > limit) out = { ...out, failure: { kind: "slow", message: `took ${ms.toFixed(1)} ms (limit ${limit} ms) on three tries` } };
    }
    stats.inputs++;
    if (ms > stats.maxMs) stats.maxMs = ms;
    if (out.accepted) stats.accepted++;
    else stats.rejected++;
    if (out.code) stats.codes[out.code] = (stats.codes[out.code] ?? 0) + 1;
    if (out.failure) record(i, input, out.failure);
  }
  return stats;
}

/**
 * Judges one saved input against a target's invariants without a PRNG: frames whole, byte by byte (up to
 * 64 KiB) and in 7-byte pieces, with the default frame_max and with none; tables through all three decoders.
 * Returns the failures (an empty list means the input is now handled).
 * @example checkInput("frames", bytesOfHex("0100 00ffffffff")); // []
 */
export function checkInput(target: TargetName, input: Uint8Array): Failure[] {
  const failures: Failure[] = [];
  const add = (o: Outcome | StreamResult) => {
    if (o.failure) failures.push(o.failure);
  };
  switch (target) {
    case "frames":
      for (const frameMax of [131072, 0]) {
        const whole = decodeStream(input, [Math.max(1, input.length)], frameMax);
        add(whole);
        const splits = input.length <= 65536 ? [[1], [7], [3, 5, 11]] : [[7], [4096]];
        for (const sizes of splits) {
          const res = decodeStream(input, sizes, frameMax);
          add(res);
          const a = `${res.frames.join(" ")} | ${res.end}`;
          const b = `${whole.frames.join(" ")} | ${whole.end}`;
          if (!res.failure && !whole.failure && a !== b) failures.push({ kind: "split", message: `chunks ${sizes.join(",")}: ${a.slice(-200)} vs whole: ${b.slice(-200)}` });
        }
      }
      break;
    case "tables":
      for (const kind of ["table", "array", "properties"] as const) add(checkTableBytes(kind, input));
      break;
    case "methods":
      add(checkMethodBytes(input));
      break;
  }
  return failures;
}
