/**
 * fast-check arbitraries for AMQP values, shared by the codec, machine and fuzz tests.
 *
 * Values are generated in the shape the decoder returns them (integers as numbers, int64 past 2^53 as
 * bigint, tables without prototype), so `decode(encode(v))` can be compared with `toEqual`.
 */
import fc from "fast-check";
import { Decimal, type FieldTable, type FieldValue } from "../../src/codec/amqp/field-table.ts";
import type { BasicProperties } from "../../src/codec/amqp/properties.ts";
import { utf8Length } from "../../src/codec/utf8.ts";

/** A string of at most `max` UTF-8 bytes, with the edges (empty, exactly `max` bytes) made likely. */
export function shortStr(max = 255): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.string({ unit: "grapheme", maxLength: 40 }).filter((s) => utf8Length(s) <= max) },
    { weight: 1, arbitrary: fc.constant("") },
    { weight: 1, arbitrary: fc.constant("q".repeat(max)) },
    { weight: 1, arbitrary: fc.constant("é".repeat(Math.floor(max / 2)) + (max % 2 ? "x" : "")) },
  );
}

/** An unsigned 64-bit value as the decoder returns it: number up to 2^53-1, bigint above. */
export const u64Value: fc.Arbitrary<number | bigint> = fc.oneof(
  fc.constantFrom(0, 1, Number.MAX_SAFE_INTEGER, 2n ** 53n, 2n ** 64n - 1n),
  fc.integer({ min: 0, max: 2 ** 31 }),
  fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n - 1n }),
);

/** A signed 64-bit value as the decoder returns it. */
export const i64Value: fc.Arbitrary<number | bigint> = fc.oneof(
  fc.constantFrom(-(2n ** 63n), 2n ** 63n - 1n, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 2n ** 53n, -(2n ** 53n)),
  fc.bigInt({ min: -(2n ** 63n), max: -(2n ** 53n) }),
  fc.bigInt({ min: 2n ** 53n, max: 2n ** 63n - 1n }),
  fc.integer({ min: 2 ** 31, max: 2 ** 40 }),
);

/** Field values that round-trip to an equal value (numbers keep their value though not their wire type). */
export function fieldValue(depth = 3): fc.Arbitrary<FieldValue> {
  const leaf: fc.Arbitrary<FieldValue> = fc.oneof(
    fc.boolean(),
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    i64Value,
    fc.double({ noNaN: true, noDefaultInfinity: true }), // plain NaN/±Infinity are refused (RabbitMQ cannot parse them)
    fc.string({ maxLength: 30 }).filter((s) => !/[\ud800-\udfff]/.test(s)),
    fc.uint8Array({ maxLength: 20 }),
    fc.integer({ min: 0, max: 2 ** 33 }).map((s) => new Date(s * 1000)),
    fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 2 ** 32 - 1 })).map(([s, v]) => new Decimal(s, v)),
    fc.constant(null),
  );
  if (depth <= 0) return leaf;
  return fc.oneof(
    { weight: 8, arbitrary: leaf },
    { weight: 1, arbitrary: fc.array(fieldValue(depth - 1), { maxLength: 5 }) },
    { weight: 1, arbitrary: fieldTable(depth - 1) },
  );
}

/** A field table, keys included the awkward ones (`__proto__`, `constructor`, empty, non-ASCII). */
export function fieldTable(depth = 3): fc.Arbitrary<FieldTable> {
  const key = fc.oneof(fc.constantFrom("__proto__", "constructor", "", "x-match", "ключ"), shortStr(255));
  return fc.array(fc.tuple(key, fieldValue(depth)), { maxLength: 8 }).map((entries) => {
    const t: FieldTable = Object.create(null);
    for (const [k, v] of entries) t[k] = v;
    return t;
  });
}

/** Basic properties with any subset present. */
export const basicProperties: fc.Arbitrary<BasicProperties> = fc.record(
  {
    contentType: shortStr(),
    contentEncoding: shortStr(),
    headers: fieldTable(2),
    deliveryMode: fc.constantFrom(1, 2),
    priority: fc.integer({ min: 0, max: 255 }),
    correlationId: shortStr(),
    replyTo: shortStr(),
    expiration: shortStr(),
    messageId: shortStr(),
    timestamp: u64Value,
    type: shortStr(),
    userId: shortStr(),
    appId: shortStr(),
    clusterId: shortStr(),
  },
  { requiredKeys: [] },
);
