/** Small helpers for writing byte vectors in tests. */
import { DecodeError } from "../../src/codec/errors.ts";
import { Writer } from "../../src/codec/writer.ts";

/** Bytes from a hex string; spaces are ignored. */
export function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Runs `write` against a fresh Writer and returns what it wrote. */
export function written(write: (w: Writer) => void): Uint8Array {
  const w = new Writer(16);
  write(w);
  return w.finish();
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The DecodeError `f` throws; fails the test if it throws nothing or something else. */
export function decodeError(f: () => unknown): DecodeError {
  try {
    f();
  } catch (e) {
    if (e instanceof DecodeError) return e;
    throw e;
  }
  throw new Error("expected a DecodeError");
}
