/**
 * The checks every publish gets before anything is sent, and the copy a publish waiting for a recovered
 * connection keeps.
 */
import type { PublishProperties } from "../codec/amqp/properties.ts";
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
 * A publish that waits for a recovered connection owns what it will send: the body is copied, and so are the
 * properties and their headers table, one level down (deeper tables are shared — document, don't deep-clone
 * TypedField values).
 */
export function ownedCopy(body: Uint8Array, properties: PublishProperties): { body: Uint8Array; properties: PublishProperties } {
  const copy: PublishProperties = { ...properties };
  if (properties.headers) copy.headers = { ...properties.headers };
  return { body: body.slice(), properties: copy };
}

function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (v instanceof ArrayBuffer) return "an ArrayBuffer (wrap it: new Uint8Array(buffer))";
  return typeof v === "object" ? `an object (${Object.prototype.toString.call(v).slice(8, -1)})` : `a ${typeof v}`;
}
