/**
 * The checks every publish gets before anything is sent, and the copy a publish keeps while it waits for a
 * recovered connection or, under the resend policy, for its confirm.
 */
import { Decimal, type FieldTable, type FieldValue, MAX_NESTING, TypedField } from "../codec/amqp/field-table.ts";
import type { PublishProperties } from "../codec/amqp/properties.ts";
import type { PublishOptions } from "./channel-options.ts";
import type { Resend } from "./confirms.ts";
import { encodeUtf8 } from "../codec/utf8.ts";
import { UsageError } from "./errors.ts";

/** The body as bytes; a UsageError naming the argument for a body or properties of the wrong kind. */
export function publishBody(what: string, body: Uint8Array | string, properties: PublishProperties): Uint8Array {
  let bytes: Uint8Array;
  if (typeof body === "string") bytes = encodeUtf8(body);
  else if (body instanceof Uint8Array) bytes = body;
  else throw new UsageError(`${what}: body must be a Uint8Array or a string, not ${describeValue(body)}`);
  if (properties === null || typeof properties !== "object") throw new UsageError(`${what}: properties must be an object, not ${describeValue(properties)}`);
  return bytes;
}

/**
 * A publish that waits for a recovered connection, or is kept for a resend, owns what it will send: the body,
 * the properties and every table, array, byte array and date inside them are copied, so that a caller
 * changing them afterwards changes nothing that is sent.
 */
export function ownedCopy(body: Uint8Array, properties: PublishProperties): { body: Uint8Array; properties: PublishProperties } {
  const copy: PublishProperties = { ...properties };
  if (properties.headers) copy.headers = copyTable(properties.headers, 0);
  if (properties.timestamp instanceof Date) copy.timestamp = new Date(properties.timestamp.getTime());
  return { body: body.slice(), properties: copy };
}

function copyTable(t: FieldTable, depth: number): FieldTable {
  const out: FieldTable = {};
  for (const key of Object.keys(t)) out[key] = copyValue(t[key], depth + 1);
  return out;
}

function copyValue(v: FieldValue, depth: number): FieldValue {
  if (v === null || typeof v !== "object") return v;
  // Deeper than the codec would encode (or a cycle): the encoder would reject it too.
  if (depth > MAX_NESTING) throw new UsageError(`Cannot encode headers: nesting deeper than ${MAX_NESTING}`);
  if (v instanceof Uint8Array) return v.slice();
  if (v instanceof Date) return new Date(v.getTime());
  if (Array.isArray(v)) return v.map((x) => copyValue(x, depth + 1));
  if (v instanceof TypedField) return new TypedField(v.type, copyValue(v.value, depth));
  if (v instanceof Decimal) return new Decimal(v.scale, v.value);
  return copyTable(v, depth);
}

function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (v instanceof ArrayBuffer) return "an ArrayBuffer (wrap it: new Uint8Array(buffer))";
  return typeof v === "object" ? `an object (${Object.prototype.toString.call(v).slice(8, -1)})` : `a ${typeof v}`;
}

/** A publish's message as the resend policy keeps it until confirmed (see ownedCopy). */
export function resendCopy(exchange: string, routingKey: string, bytes: Uint8Array, properties: PublishProperties, o: PublishOptions): Resend {
  const copy = ownedCopy(bytes, properties);
  return { exchange, routingKey, body: copy.body, properties: copy.properties, mandatory: o.mandatory ?? false, immediate: o.immediate ?? false };
}
