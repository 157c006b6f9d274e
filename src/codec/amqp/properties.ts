/**
 * The basic class's content-header properties (spec 4.2.6.1 and the basic class fields).
 *
 * Fourteen optional properties follow a 16-bit presence mask: bit 15 is the first property (content-type),
 * bit 2 the fourteenth (cluster-id, "reserved" in the 0-9-1 XML); bit 0 would announce a further flags word,
 * which the basic class never needs. Only present properties are on the wire, in mask order.
 */
import type { Cursor } from "../cursor.ts";
import { DecodeError } from "../errors.ts";
import { type Int64, shortString, u16, u64, u8 } from "../parsers.ts";
import { shortStringInterned } from "../string-cache.ts";
import type { Writer } from "../writer.ts";
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
 * Writes the presence mask and the present properties.
 * @example
 * encodeBasicProperties(w, { contentType: "text/plain", deliveryMode: 2 });
 * // [0x90, 0x00, 10, ...'text/plain', 2]
 */
export function encodeBasicProperties(w: Writer, p: BasicProperties): void {
  const at = w.reserve(2);
  let flags = 0;
  if (p.contentType !== undefined) {
    flags |= CONTENT_TYPE;
    w.shortString(p.contentType);
  }
  if (p.contentEncoding !== undefined) {
    flags |= CONTENT_ENCODING;
    w.shortString(p.contentEncoding);
  }
  if (p.headers !== undefined) {
    flags |= HEADERS;
    encodeFieldTable(w, p.headers);
  }
  if (p.deliveryMode !== undefined) {
    flags |= DELIVERY_MODE;
    w.u8(p.deliveryMode);
  }
  if (p.priority !== undefined) {
    flags |= PRIORITY;
    w.u8(p.priority);
  }
  if (p.correlationId !== undefined) {
    flags |= CORRELATION_ID;
    w.shortString(p.correlationId);
  }
  if (p.replyTo !== undefined) {
    flags |= REPLY_TO;
    w.shortString(p.replyTo);
  }
  if (p.expiration !== undefined) {
    flags |= EXPIRATION;
    w.shortString(p.expiration);
  }
  if (p.messageId !== undefined) {
    flags |= MESSAGE_ID;
    w.shortString(p.messageId);
  }
  if (p.timestamp !== undefined) {
    flags |= TIMESTAMP;
    w.u64(p.timestamp);
  }
  if (p.type !== undefined) {
    flags |= TYPE;
    w.shortString(p.type);
  }
  if (p.userId !== undefined) {
    flags |= USER_ID;
    w.shortString(p.userId);
  }
  if (p.appId !== undefined) {
    flags |= APP_ID;
    w.shortString(p.appId);
  }
  if (p.clusterId !== undefined) {
    flags |= CLUSTER_ID;
    w.shortString(p.clusterId);
  }
  w.patchU16(at, flags);
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
