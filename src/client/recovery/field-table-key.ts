/**
 * Field tables as the topology recorder needs them: a private copy (the application may mutate the object it
 * passed after the declare resolved, and the replay must send what was declared), and a canonical key (two
 * bindings that differ only in their arguments are different bindings on the broker, so the key of a binding
 * includes its arguments).
 *
 * The key sorts a table's entries by name, so `{ a, b }` and `{ b, a }` name the same binding, and keeps each
 * value's kind (1 and 1n, "x" and bytes of "x" go on the wire as different field types, so they are different
 * tables to the broker).
 */
import { Decimal, type FieldTable, type FieldValue, isFieldTable, TypedField } from "../../codec/amqp/field-table.ts";

/** A deep copy of `t`, with the same value kinds (Date, Decimal, TypedField and bytes copied, not shared). */
export function copyTable(t: FieldTable): FieldTable {
  // No prototype, like a decoded table: a "__proto__" key stays an ordinary entry.
  const out = Object.create(null) as FieldTable;
  for (const k of Object.keys(t)) out[k] = copyValue(t[k]);
  return out;
}

function copyValue(v: FieldValue): FieldValue {
  if (Array.isArray(v)) return v.map(copyValue);
  if (v instanceof Uint8Array) return v.slice();
  if (v instanceof Date) return new Date(v.getTime());
  if (v instanceof Decimal) return new Decimal(v.scale, v.value);
  if (v instanceof TypedField) return new TypedField(v.type, copyValue(v.value));
  if (isFieldTable(v)) return copyTable(v);
  return v;
}

/**
 * A string that is equal for two tables exactly when they hold the same entries (in any order).
 * @example tableKey({ b: 1, a: "x" }) === tableKey({ a: "x", b: 1 }); // true
 */
export function tableKey(t: FieldTable): string {
  return valueKey(t);
}

function valueKey(v: FieldValue): string {
  if (v === null || v === undefined) return "V";
  if (Array.isArray(v)) return `A[${v.map(valueKey).join(",")}]`;
  if (v instanceof Uint8Array) return `x${Array.from(v, (b) => b.toString(16).padStart(2, "0")).join("")}`;
  if (v instanceof Date) return `T${v.getTime()}`;
  if (v instanceof Decimal) return `D${v.scale}/${v.value}`;
  if (v instanceof TypedField) return `${v.type}:${valueKey(v.value)}`;
  if (isFieldTable(v)) {
    const keys = Object.keys(v).sort();
    return `F{${keys.map((k) => `${JSON.stringify(k)}:${valueKey(v[k])}`).join(",")}}`;
  }
  switch (typeof v) {
    case "string":
      return `S${JSON.stringify(v)}`;
    case "bigint":
      return `l${v}`;
    case "number":
      return `n${Object.is(v, -0) ? "0" : String(v)}`;
    case "boolean":
      return v ? "t1" : "t0";
    default:
      return `?${String(v)}`;
  }
}
