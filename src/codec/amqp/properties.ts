/**
 * The basic class's content-header properties (spec 4.2.6.1 and the basic class fields).
 *
 * Fourteen optional properties follow a 16-bit presence mask: bit 15 is the first property (content-type),
 * bit 2 the fourteenth (cluster-id, "reserved" in the 0-9-1 XML); bit 0 would announce a further flags word,
 * which the basic class never needs. Only present properties are on the wire, in mask order.
 *
 * The encoder checks every present property before writing it, so a wrong type is an EncodeError naming the
 * property ("Cannot encode basic properties: priority must be an integer from 0 to 255, not 300") rather
 * than a TypeError from deep inside a DataView, or a byte silently truncated (priority 300 used to go out
 * as 44). The checks are a typeof and a compare per present property.
 */
import type { Cursor } from "../cursor.ts";
import { DecodeError, EncodeError } from "../errors.ts";
import { type Int64, shortString, u16, u64, u8 } from "../parsers.ts";
import { shortStringInterned } from "../string-cache.ts";
import type { Writer } from "../writer.ts";
import { utf8Length } from "../utf8.ts";
import { decodeFieldTable, encodeFieldTable, type FieldTable } from "./field-table.ts";

/** Message properties, as RabbitMQ names them in its clients (camelCase of the spec's field names). */
export interface BasicProperties {
  contentType?: string | undefined;
  contentEncoding?: string | undefined;
  headers?: FieldTable | undefined;
  /** 1 transient, 2 persistent. */
  deliveryMode?: number | undefined;
  priority?: number | undefined;
  correlationId?: string | undefined;
  replyTo?: string | undefined;
  /** Per-message TTL in milliseconds, as a decimal string (RabbitMQ's convention). */
  expiration?: string | undefined;
  messageId?: string | undefined;
  /** Seconds since the epoch. */
  timestamp?: Int64 | undefined;
  type?: string | undefined;
  userId?: string | undefined;
  appId?: string | undefined;
  /** Deprecated in 0-9-1 ("reserved"); RabbitMQ rejects publishes that set it. Kept for a lossless decode. */
  clusterId?: string | undefined;
}

/**
 * What a publish may pass: {@link BasicProperties}, except that `timestamp` may also be a `Date`, sent as
 * its whole seconds since the epoch (AMQP timestamps have no finer resolution). Decoding always yields
 * seconds, as a number.
 * @example const p: PublishProperties = { timestamp: new Date(), deliveryMode: 2 };
 */
export interface PublishProperties extends Omit<BasicProperties, "timestamp"> {
  /** Seconds since the epoch, or a Date (its milliseconds are dropped). */
  timestamp?: Int64 | Date | undefined;
}

const CONTENT_TYPE = 1 << 15;
const CONTENT_ENCODING = 1 << 14;
const HEADERS = 1 << 13;
const DELIVERY_MODE = 1 << 12;
const PRIORITY = 1 << 11;
const CORRELATION_ID = 1 << 10;
const REPLY_TO = 1 << 9;
const EXPIRATION = 1 << 8;
const MESSAGE_ID = 1 << 7;
const TIMESTAMP = 1 << 6;
const TYPE = 1 << 5;
const USER_ID = 1 << 4;
const APP_ID = 1 << 3;
const CLUSTER_ID = 1 << 2;
const CONTINUATION = 1;

/**
 * Writes the presence mask and the present properties. A property of the wrong type or out of its range is
 * an EncodeError naming it, thrown with the mask still unwritten (roll back with the writer if needed).
 * @example
 * encodeBasicProperties(w, { contentType: "text/plain", deliveryMode: 2 });
 * // [0x90, 0x00, 10, ...'text/plain', 2]
 */
export function encodeBasicProperties(w: Writer, p: PublishProperties): void {
  if (typeof p !== "object" || p === null) invalid("properties", "an object", p);
  const at = w.reserve(2);
  let flags = 0;
  if (p.contentType !== undefined) {
    flags |= CONTENT_TYPE;
    const v = p.contentType;
    if (typeof v !== "string" || v.length > 85) checkShort("contentType", v);
    w.shortString(v);
  }
  if (p.contentEncoding !== undefined) {
    flags |= CONTENT_ENCODING;
    const v = p.contentEncoding;
    if (typeof v !== "string" || v.length > 85) checkShort("contentEncoding", v);
    w.shortString(v);
  }
  if (p.headers !== undefined) {
    flags |= HEADERS;
    const h = p.headers;
    // The likely mistakes, cheaply (isFieldTable's full check, or a prototype read, costs 5% of a publish).
    if (typeof h !== "object" || h === null || Array.isArray(h) || h instanceof Map || ArrayBuffer.isView(h)) {
      invalid("headers", "an object (a field table)", h);
    }
    encodeFieldTable(w, h, "basic properties: headers");
  }
  if (p.deliveryMode !== undefined) {
    flags |= DELIVERY_MODE;
    const v = p.deliveryMode;
    // RabbitMQ refuses any other value when it decides whether to persist the message.
    if (v !== 1 && v !== 2) invalid("deliveryMode", "1 (transient) or 2 (persistent)", v);
    w.u8(v);
  }
  if (p.priority !== undefined) {
    flags |= PRIORITY;
    const v = p.priority;
    if (typeof v !== "number" || !(v >= 0 && v <= 255) || !Number.isInteger(v)) invalid("priority", "an integer from 0 to 255", v);
    w.u8(v);
  }
  if (p.correlationId !== undefined) {
    flags |= CORRELATION_ID;
    const v = p.correlationId;
    if (typeof v !== "string" || v.length > 85) checkShort("correlationId", v);
    w.shortString(v);
  }
  if (p.replyTo !== undefined) {
    flags |= REPLY_TO;
    const v = p.replyTo;
    if (typeof v !== "string" || v.length > 85) checkShort("replyTo", v);
    w.shortString(v);
  }
  if (p.expiration !== undefined) {
    flags |= EXPIRATION;
    // A common slip is a number of milliseconds: RabbitMQ wants it as a decimal string.
    if (typeof p.expiration === "number") invalid("expiration", `a string of milliseconds (e.g. "${p.expiration}")`, p.expiration);
    const v = p.expiration;
    if (typeof v !== "string" || v.length > 85) checkShort("expiration", v);
    w.shortString(v);
  }
  if (p.messageId !== undefined) {
    flags |= MESSAGE_ID;
    const v = p.messageId;
    if (typeof v !== "string" || v.length > 85) checkShort("messageId", v);
    w.shortString(v);
  }
  if (p.timestamp !== undefined) {
    flags |= TIMESTAMP;
    const t = p.timestamp;
    w.u64(typeof t === "number" && t >= 0 && Number.isSafeInteger(t) ? t : timestampSeconds(t));
  }
  if (p.type !== undefined) {
    flags |= TYPE;
    const v = p.type;
    if (typeof v !== "string" || v.length > 85) checkShort("type", v);
    w.shortString(v);
  }
  if (p.userId !== undefined) {
    flags |= USER_ID;
    const v = p.userId;
    if (typeof v !== "string" || v.length > 85) checkShort("userId", v);
    w.shortString(v);
  }
  if (p.appId !== undefined) {
    flags |= APP_ID;
    const v = p.appId;
    if (typeof v !== "string" || v.length > 85) checkShort("appId", v);
    w.shortString(v);
  }
  if (p.clusterId !== undefined) {
    flags |= CLUSTER_ID;
    const v = p.clusterId;
    if (typeof v !== "string" || v.length > 85) checkShort("clusterId", v);
    w.shortString(v);
  }
  w.patchU16(at, flags);
}

function invalid(name: string, must: string, v: unknown): never {
  throw new EncodeError(`Cannot encode basic properties: ${name} must be ${must}, not ${describeValue(v)}`);
}

/**
 * The slow half of a shortstr property's check, for a value that is not a string or may be over 255 bytes
 * (at most 3 bytes of UTF-8 per UTF-16 unit, so 85 units always fit): throws if it does not fit.
 */
function checkShort(name: string, v: unknown): asserts v is string {
  if (typeof v !== "string") invalid(name, "a string", v);
  const n = utf8Length(v);
  if (n > 255) throw new EncodeError(`Cannot encode basic properties: ${name} must be at most 255 bytes of UTF-8, not ${n}`);
}

const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** Whole seconds since the epoch from a number, a bigint or a Date. */
function timestampSeconds(v: unknown): Int64 {
  const must = "whole seconds since the epoch (a non-negative integer or bigint) or a Date";
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v) || v < 0) invalid("timestamp", must, v);
    return v;
  }
  if (typeof v === "bigint") {
    if (v < 0n || v > U64_MAX) invalid("timestamp", must, v);
    return v;
  }
  if (v instanceof Date) {
    const ms = v.getTime();
    if (!(ms >= 0)) invalid("timestamp", "a valid Date no earlier than 1970", v);
    return Math.floor(ms / 1000);
  }
  return invalid("timestamp", must, v);
}

/** A short description of a wrong value for an error message: `"300"`, `a string ("abc")`, `a Map`. */
function describeValue(v: unknown): string {
  switch (typeof v) {
    case "string":
      return `a string (${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)})`;
    case "number":
    case "boolean":
      return String(v);
    case "bigint":
      return `${v}n`;
    case "undefined":
      return "undefined";
    case "object":
      if (v === null) return "null";
      if (v instanceof Date) return Number.isNaN(v.getTime()) ? "an invalid Date" : `the Date ${v.toISOString()}`;
      if (Array.isArray(v)) return "an array";
      return `${articled((v as object).constructor?.name ?? "object")}`;
    default:
      return `a ${typeof v}`;
  }
}

function articled(name: string): string {
  return /^[aeiou]/i.test(name) ? `an ${name}` : `a ${name}`;
}

/**
 * Reads the presence mask and the properties it announces. Properties that repeat across messages (content
 * type and encoding, type, app id, user id, reply-to) are interned; ids that differ every time are not. Every property is present on the result (as
 * `undefined` when absent), so all decoded properties share one object shape.
 * @example decodeBasicProperties(new Cursor(new Uint8Array([0x10, 0x00, 2]))); // { deliveryMode: 2, … }
 */
export function decodeBasicProperties(c: Cursor): BasicProperties {
  const flags = u16(c);
  if (flags & (CONTINUATION | 0b10)) {
    throw new DecodeError("BAD_VALUE", `Cannot decode basic properties: flags 0x${flags.toString(16)} set bits the basic class does not define`);
  }
  return {
    contentType: flags & CONTENT_TYPE ? shortStringInterned(c) : undefined,
    contentEncoding: flags & CONTENT_ENCODING ? shortStringInterned(c) : undefined,
    headers: flags & HEADERS ? decodeFieldTable(c) : undefined,
    deliveryMode: flags & DELIVERY_MODE ? u8(c) : undefined,
    priority: flags & PRIORITY ? u8(c) : undefined,
    correlationId: flags & CORRELATION_ID ? shortString(c) : undefined,
    replyTo: flags & REPLY_TO ? shortStringInterned(c) : undefined,
    expiration: flags & EXPIRATION ? shortString(c) : undefined,
    messageId: flags & MESSAGE_ID ? shortString(c) : undefined,
    timestamp: flags & TIMESTAMP ? u64(c) : undefined,
    type: flags & TYPE ? shortStringInterned(c) : undefined,
    userId: flags & USER_ID ? shortStringInterned(c) : undefined,
    appId: flags & APP_ID ? shortStringInterned(c) : undefined,
    clusterId: flags & CLUSTER_ID ? shortString(c) : undefined,
  };
}
