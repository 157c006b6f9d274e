/**
 * Where fuzz inputs come from: the golden transcripts (real RabbitMQ byte streams), values generated and
 * encoded with warren's own encoders, and byte-level mutations of both.
 *
 * Everything here is deterministic given an {@link Rng}: the same seed gives the same inputs.
 */
import { readdirSync, readFileSync } from "node:fs";
import { concat } from "../test/support/bytes.ts";
import {
  Decimal,
  encodeBasicProperties,
  encodeFieldArray,
  encodeFieldTable,
  type BasicProperties,
  type FieldTable,
  type FieldValue,
  type MethodInfo,
  TypedField,
  Writer,
} from "../src/codec/index.ts";
import type { Rng } from "./rng.ts";

// ---------------------------------------------------------------------------------------------------------
// Bytes

export function hexOf(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += b[i]!.toString(16).padStart(2, "0");
  return s;
}

export function bytesOfHex(hex: string): Uint8Array {
  const clean = hex.replace(/\s+/g, "");
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) throw new Error("not a hex string");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function written(write: (w: Writer) => void): Uint8Array {
  const w = new Writer(256);
  write(w);
  return w.finish().slice();
}

// ---------------------------------------------------------------------------------------------------------
// The golden transcripts

/** One direction of one transcript, as a byte stream and as the frames it holds. */
export interface SeedStream {
  name: string;
  bytes: Uint8Array;
  /** The stream cut into frames (the protocol header, if any, is the first "frame"). */
  frames: Uint8Array[];
}

/** Cuts a well-formed stream into frames by their size fields; a leading "AMQP" header is its own piece. */
export function splitFrames(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  if (bytes.length >= 8 && bytes[0] === 0x41 && bytes[1] === 0x4d) {
    out.push(bytes.subarray(0, 8));
    at = 8;
  }
  while (at + 7 <= bytes.length) {
    const size = ((bytes[at + 3]! << 24) >>> 0) + ((bytes[at + 4]! << 16) | (bytes[at + 5]! << 8) | bytes[at + 6]!);
    const end = at + size + 8;
    if (end > bytes.length) break;
    out.push(bytes.subarray(at, end));
    at = end;
  }
  return out;
}

let seedStreamsCache: SeedStream[] | undefined;

/** Both directions of every transcript in test/fixtures/transcripts. */
export function seedStreams(): SeedStream[] {
  if (seedStreamsCache) return seedStreamsCache;
  const dir = new URL("../test/fixtures/transcripts/", import.meta.url);
  const out: SeedStream[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".json")).sort()) {
    const doc = JSON.parse(readFileSync(new URL(file, dir), "utf8")) as { chunks: { dir: "c2s" | "s2c"; hex: string }[] };
    for (const dirName of ["c2s", "s2c"] as const) {
      const bytes = concat(doc.chunks.filter((c) => c.dir === dirName).map((c) => bytesOfHex(c.hex)));
      if (bytes.length > 0) out.push({ name: `${file.replace(/\.json$/, "")}:${dirName}`, bytes, frames: splitFrames(bytes) });
    }
  }
  if (out.length === 0) throw new Error("fuzz: no transcripts found under test/fixtures/transcripts");
  seedStreamsCache = out;
  return out;
}

/** Frames of a given type found in the transcripts (payloads only: without header and frame-end). */
export function seedPayloads(type: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const s of seedStreams()) {
    for (const f of s.frames) if (f[0] === type && f.length >= 8) out.push(f.subarray(7, f.length - 1));
  }
  return out;
}

let seedTablesCache: Uint8Array[] | undefined;

/**
 * Field tables as they appear on the wire in the transcripts: connection.start's server properties and
 * start-ok's client properties (found by their method ids), and every content header's headers table.
 */
export function seedTables(): Uint8Array[] {
  if (seedTablesCache) return seedTablesCache;
  const out: Uint8Array[] = [];
  const tableAt = (p: Uint8Array, at: number) => {
    if (at + 4 > p.length) return;
    const n = ((p[at]! << 24) >>> 0) + ((p[at + 1]! << 16) | (p[at + 2]! << 8) | p[at + 3]!);
    if (at + 4 + n <= p.length) out.push(p.subarray(at, at + 4 + n));
  };
  for (const p of seedPayloads(1)) {
    const id = ((p[0]! << 8) | p[1]!) * 65536 + ((p[2]! << 8) | p[3]!);
    if (id === 0x0a000a) tableAt(p, 6); // connection.start: version-major, version-minor, server-properties
    if (id === 0x0a000b) tableAt(p, 4); // connection.start-ok: client-properties
  }
  for (const p of seedPayloads(2)) {
    // class, weight, body size, flags; headers follow content-type and content-encoding when present
    const flags = (p[12]! << 8) | p[13]!;
    if (!(flags & 0x2000)) continue;
    let at = 14;
    if (flags & 0x8000) at += 1 + p[at]!;
    if (flags & 0x4000) at += 1 + p[at]!;
    tableAt(p, at);
  }
  seedTablesCache = out;
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Generated values, encoded with warren's encoders

const KEYS = ["", "a", "x-match", "x-death", "__proto__", "constructor", "toString", "0", "17", "ключ", "🐇", "k".repeat(255)];

export function randomString(r: Rng, maxBytes: number): string {
  const kind = r.int(6);
  if (kind === 0) return "";
  if (kind === 1) return r.pick(KEYS).slice(0, maxBytes);
  const n = r.smallLength(Math.min(maxBytes, 80));
  let s = "";
  for (let i = 0; i < n; i++) {
    const c = r.int(10);
    if (c < 7) s += String.fromCharCode(0x20 + r.int(0x5f));
    else if (c < 8) s += String.fromCharCode(r.range(0xa0, 0x7ff));
    else if (c < 9) s += String.fromCharCode(r.range(0x800, 0xd7ff));
    else s += "😀";
  }
  // keep it under maxBytes of UTF-8 (at most 4 bytes per UTF-16 pair, 3 per unit otherwise)
  while (new TextEncoder().encode(s).length > maxBytes) s = s.slice(0, -1);
  return s;
}

/** A random field value of any wire type, nested up to `depth`. */
export function randomFieldValue(r: Rng, depth: number): FieldValue {
  const kinds = depth > 0 ? 22 : 20;
  switch (r.int(kinds)) {
    case 0:
      return r.chance(0.5);
    case 1:
      return r.range(-0x8000_0000, 0x7fff_ffff);
    case 2:
      return r.pick([0, -1, 1, 2 ** 31, -(2 ** 31) - 1, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 40 + 7]);
    case 3:
      return r.pick([2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n, -(2n ** 53n) - 5n]);
    case 4:
      // A plain NaN/±Infinity is refused by the encoder (RabbitMQ cannot parse it); a TypedField still sends one.
      return r.pick<FieldValue>([0.5, -1.25, Math.PI, 1e300, -0, new TypedField("d", Number.NaN), new TypedField("d", -Infinity), 2 ** 60]);
    case 5:
    case 6:
      return randomString(r, 300);
    case 7:
      return r.bytes(r.smallLength(64));
    case 8:
      return new Date(r.int(2 ** 33) * 1000);
    case 9:
      return new Decimal(r.int(256), r.int(2 ** 32));
    case 10:
      return null;
    case 11:
      return new TypedField("b", r.range(-128, 127));
    case 12:
      return new TypedField("B", r.int(256));
    case 13:
      return new TypedField("s", r.range(-32768, 32767));
    case 14:
      return new TypedField("u", r.int(65536));
    case 15:
      return new TypedField("i", r.int(2 ** 32));
    case 16:
      return new TypedField("f", r.pick([1.5, -0.25, 3.4e38, Number.NaN]));
    case 17:
      return new TypedField("T", r.pick([0, 1_700_000_000, 2n ** 64n - 1n, 8.64e12 + 1]));
    case 18:
      return new TypedField("S", r.bytes(r.smallLength(32)));
    case 19:
      return new TypedField("V", null);
    case 20: {
      const a: FieldValue[] = [];
      const n = r.smallLength(8);
      for (let i = 0; i < n; i++) a.push(randomFieldValue(r, depth - 1));
      return a;
    }
    default:
      return randomFieldTable(r, depth - 1);
  }
}

export function randomFieldTable(r: Rng, depth: number): FieldTable {
  const t: FieldTable = Object.create(null) as FieldTable;
  const n = r.smallLength(10);
  for (let i = 0; i < n; i++) t[r.chance(0.3) ? r.pick(KEYS) : randomString(r, 255)] = randomFieldValue(r, depth);
  return t;
}

export function encodedTable(r: Rng): Uint8Array {
  return written((w) => encodeFieldTable(w, randomFieldTable(r, r.int(4))));
}

export function encodedArray(r: Rng): Uint8Array {
  const a: FieldValue[] = [];
  const n = r.smallLength(12);
  for (let i = 0; i < n; i++) a.push(randomFieldValue(r, r.int(3)));
  return written((w) => encodeFieldArray(w, a));
}

export function randomProperties(r: Rng): BasicProperties {
  const p: BasicProperties = {};
  const s = () => randomString(r, 255);
  if (r.chance(0.5)) p.contentType = s();
  if (r.chance(0.3)) p.contentEncoding = s();
  if (r.chance(0.4)) p.headers = randomFieldTable(r, r.int(3));
  if (r.chance(0.5)) p.deliveryMode = r.pick([1, 2]); // RabbitMQ refuses any other (406), so the encoder does
  if (r.chance(0.3)) p.priority = r.int(256);
  if (r.chance(0.3)) p.correlationId = s();
  if (r.chance(0.3)) p.replyTo = s();
  if (r.chance(0.2)) p.expiration = s();
  if (r.chance(0.4)) p.messageId = s();
  if (r.chance(0.4)) p.timestamp = r.chance(0.8) ? r.int(2 ** 40) : r.pick([2n ** 63n, 2n ** 64n - 1n]);
  if (r.chance(0.2)) p.type = s();
  if (r.chance(0.2)) p.userId = s();
  if (r.chance(0.3)) p.appId = s();
  if (r.chance(0.1)) p.clusterId = s();
  return p;
}

export function encodedProperties(r: Rng): Uint8Array {
  return written((w) => encodeBasicProperties(w, randomProperties(r)));
}

/** A field table nested `depth` levels deep: { a: { a: … {} } } (or arrays of arrays), lengths all correct. */
export function nestedContainer(depth: number, kind: "F" | "A"): Uint8Array {
  let inner: Uint8Array = Uint8Array.of(0, 0, 0, 0);
  for (let i = 0; i < depth; i++) {
    const entry = kind === "F" ? concat([Uint8Array.of(1, 0x61, 0x46), inner]) : concat([Uint8Array.of(0x41), inner]);
    const n = entry.length;
    inner = concat([Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff), entry]);
  }
  return inner;
}

/** A method's argument bytes, generated from its field list (valid unless a random choice makes them not). */
export function methodArguments(r: Rng, info: MethodInfo): Uint8Array {
  const w = new Writer(256);
  const fields = info.fields;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    switch (f.type) {
      case "bit": {
        let bits = 1;
        while (i + 1 < fields.length && fields[i + 1]!.type === "bit") {
          bits++;
          i++;
        }
        for (let o = 0; o < Math.ceil(bits / 8); o++) w.u8(r.chance(0.9) ? r.int(1 << Math.min(8, bits - o * 8)) : r.int(256));
        break;
      }
      case "octet":
        w.u8(r.int(256));
        break;
      case "short":
        w.u16(r.int(65536));
        break;
      case "long":
        w.u32(r.int(2 ** 32));
        break;
      case "longlong":
      case "timestamp":
        w.u64(r.chance(0.8) ? r.int(2 ** 40) : r.pick([2n ** 53n, 2n ** 63n, 2n ** 64n - 1n]));
        break;
      case "shortstr":
        if (r.chance(0.95)) w.shortString(randomString(r, 255));
        else {
          const b = r.bytes(r.smallLength(255));
          w.u8(b.length);
          w.raw(b);
        }
        break;
      case "longstr":
        w.longBytes(r.chance(0.5) ? new TextEncoder().encode(randomString(r, 200)) : r.bytes(r.smallLength(300)));
        break;
      case "table":
        if (r.chance(0.2)) w.raw(r.pick(seedTables()));
        else encodeFieldTable(w, randomFieldTable(r, r.int(3)));
        break;
    }
  }
  return w.finish().slice();
}

// ---------------------------------------------------------------------------------------------------------
// Mutations

const INTERESTING_U8 = [0, 1, 0x7f, 0x80, 0xfe, 0xff, 0xce, 0x41, 0x46, 0x41, 0x53, 0x56];
const INTERESTING_U32 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0xffff, 0x1_0000, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff];

export function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

/** One random byte-level mutation: flips, overwrites, insertions, deletions, duplication, splicing, truncation. */
export function mutateOnce(r: Rng, input: Uint8Array, others: () => Uint8Array): Uint8Array {
  const n = input.length;
  const at = n > 0 ? r.int(n) : 0;
  switch (r.int(11)) {
    case 0: {
      if (n === 0) return r.bytes(1);
      const b = input.slice();
      b[at] = b[at]! ^ (1 << r.int(8));
      return b;
    }
    case 1: {
      if (n === 0) return r.bytes(1);
      const b = input.slice();
      b[at] = r.chance(0.5) ? r.pick(INTERESTING_U8) : r.int(256);
      return b;
    }
    case 2: {
      // a 32-bit length-like value (table/array/longstr lengths, frame sizes) made extreme or off by one
      if (n < 4) return input;
      const b = input.slice();
      const pos = r.int(n - 3);
      const old = ((b[pos]! << 24) >>> 0) + ((b[pos + 1]! << 16) | (b[pos + 2]! << 8) | b[pos + 3]!);
      writeU32(b, pos, r.chance(0.6) ? r.pick(INTERESTING_U32) : (old + r.pick([-1, 1, 2, -4, 4096])) >>> 0);
      return b;
    }
    case 3:
      return concat([input.subarray(0, at), r.bytes(r.range(1, 8)), input.subarray(at)]);
    case 4: {
      const len = r.range(1, 16);
      return concat([input.subarray(0, at), input.subarray(Math.min(n, at + len))]);
    }
    case 5: {
      const len = r.range(1, 32);
      const piece = input.subarray(at, Math.min(n, at + len));
      return concat([input.subarray(0, at), piece, piece, input.subarray(at)]);
    }
    case 6: {
      const other = others();
      const cut = other.length > 0 ? r.int(other.length) : 0;
      return concat([input.subarray(0, at), other.subarray(cut)]);
    }
    case 7:
      return input.subarray(0, at);
    case 8:
      return concat([input, r.bytes(r.range(1, 16))]);
    case 9: {
      // an octet length (shortstr) made extreme
      if (n === 0) return input;
      const b = input.slice();
      b[at] = r.pick([0, 1, 0x7f, 0xff, (b[at]! + 1) & 0xff, (b[at]! - 1) & 0xff]);
      return b;
    }
    default: {
      // overwrite a run of bytes with one value
      const b = input.slice();
      b.fill(r.pick(INTERESTING_U8), at, Math.min(n, at + r.range(1, 12)));
      return b;
    }
  }
}

export function mutate(r: Rng, input: Uint8Array, others: () => Uint8Array, maxRounds = 6): Uint8Array {
  let b = input;
  const rounds = r.range(1, maxRounds);
  for (let i = 0; i < rounds; i++) b = mutateOnce(r, b, others);
  return b;
}
