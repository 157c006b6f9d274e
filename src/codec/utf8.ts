/**
 * UTF-8 helpers shared by the parsers and serializers.
 *
 * Short ASCII strings dominate AMQP (queue names, routing keys, header keys): for those a plain loop beats a
 * call into TextDecoder/TextEncoder by several times in V8, so both directions take an ASCII fast path and
 * fall back to the platform codec for anything else. Decoding is strict: invalid UTF-8 is an error, never a
 * silent U+FFFD.
 */
import { DecodeError } from "./errors.ts";

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Below this length the ASCII loop is faster than TextDecoder. */
const ASCII_LOOP_MAX = 64;

/**
 * Decodes `bytes[start, end)` as strict UTF-8.
 * @example
 * decodeUtf8(new Uint8Array([104, 105]), 0, 2); // "hi"
 */
export function decodeUtf8(bytes: Uint8Array, start: number, end: number): string {
  if (end - start <= ASCII_LOOP_MAX) {
    let s = "";
    let i = start;
    // Four bytes per call: String.fromCharCode with several arguments is far cheaper than one per byte.
    for (; i + 4 <= end; i += 4) {
      const b0 = bytes[i]!;
      const b1 = bytes[i + 1]!;
      const b2 = bytes[i + 2]!;
      const b3 = bytes[i + 3]!;
      if ((b0 | b1 | b2 | b3) >= 0x80) return decodeSlow(bytes, start, end);
      s += String.fromCharCode(b0, b1, b2, b3);
    }
    for (; i < end; i++) {
      const b = bytes[i]!;
      if (b >= 0x80) return decodeSlow(bytes, start, end);
      s += String.fromCharCode(b);
    }
    return s;
  }
  return decodeSlow(bytes, start, end);
}

function decodeSlow(bytes: Uint8Array, start: number, end: number): string {
  try {
    return strictDecoder.decode(bytes.subarray(start, end));
  } catch {
    throw new DecodeError("BAD_UTF8", `Cannot decode string: ${end - start} bytes are not valid UTF-8`);
  }
}

/**
 * The UTF-8 length of `s` in bytes, without encoding it.
 * @example
 * utf8Length("é"); // 2
 */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2; // a surrogate pair: 2 UTF-16 units, 4 bytes
      i++;
    } else n += 2; // 3 bytes (a lone surrogate becomes U+FFFD, also 3 bytes)
  }
  return n;
}

/**
 * Writes `s` as UTF-8 at `bytes[pos]`; the caller has made room for `utf8Length(s)` bytes. Returns the
 * number of bytes written.
 * @example
 * const out = new Uint8Array(2); encodeUtf8Into(out, 0, "hi"); // 2
 */
export function encodeUtf8Into(bytes: Uint8Array, pos: number, s: string): number {
  const n = s.length;
  if (n <= ASCII_LOOP_MAX) {
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      bytes[pos + i] = c;
    }
    if (i === n) return n;
  }
  return encoder.encodeInto(s, bytes.subarray(pos)).written;
}

/** Encodes `s` to a new Uint8Array. */
export function encodeUtf8(s: string): Uint8Array {
  return encoder.encode(s);
}
