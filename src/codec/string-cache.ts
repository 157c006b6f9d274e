/**
 * Interned short strings: a parser for AMQP shortstrs that repeat from message to message (exchange and
 * routing key on every delivery, consumer tags, header names, content types). Decoding one costs a loop over
 * its bytes and a string allocation; looking it up costs the loop only.
 *
 * One slot per hash of the bytes, checked byte for byte before a cached string is used, so a collision only
 * costs a decode. Long strings (over 32 bytes) and strings that differ every time (message ids) should use
 * the plain `shortString` parser: they would only churn the cache.
 */
import type { Cursor } from "./cursor.ts";
import { takeUtf8, u8 } from "./parsers.ts";

const SLOTS = 1024;
const MAX_LENGTH = 32;
const slotBytes: (Uint8Array | undefined)[] = new Array(SLOTS);
const slotStrings: string[] = new Array(SLOTS);

/**
 * Reads a shortstr, returning the same string instance for the same bytes where it can.
 * @example shortStringInterned(new Cursor(Uint8Array.of(2, 104, 105))); // "hi"
 */
export function shortStringInterned(c: Cursor): string {
  const n = u8(c);
  if (n === 0) return "";
  if (n > MAX_LENGTH) return takeUtf8(c, n);
  c.need(n);
  const b = c.bytes;
  const start = c.pos;
  let h = n;
  for (let i = 0; i < n; i++) h = (Math.imul(h, 31) + b[start + i]!) | 0;
  const slot = (h >>> 0) % SLOTS;
  const cached = slotBytes[slot];
  if (cached !== undefined && cached.length === n) {
    let i = 0;
    while (i < n && cached[i] === b[start + i]) i++;
    if (i === n) {
      c.pos = start + n;
      return slotStrings[slot]!;
    }
  }
  const s = takeUtf8(c, n); // throws on bad UTF-8 before anything is cached
  slotBytes[slot] = b.slice(start, start + n);
  slotStrings[slot] = s;
  return s;
}
