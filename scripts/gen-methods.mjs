#!/usr/bin/env node
/**
 * Generates src/codec/amqp/methods.generated.ts from spec/amqp0-9-1.extended.xml.
 *
 *   node scripts/gen-methods.mjs           write the generated file
 *   node scripts/gen-methods.mjs --check   regenerate in memory; exit 1 if the committed file differs (CI)
 *
 * Zero dependencies: the XML is read with a small scanner that understands only what this file uses —
 * elements, attributes, comments, the XML declaration — which is enough for the vendored spec and is checked
 * against it (a missing or unexpected construct throws rather than silently generating less).
 *
 * The output is deterministic (no dates, no environment): running this twice gives identical bytes, and the
 * header records the sha256 of the XML it came from.
 *
 * What the generator encodes about the wire format (AMQP 0-9-1 §4.2.5 and RabbitMQ's errata):
 * - Consecutive bit fields are packed into one octet, least significant bit first (§4.2.5.2); any non-bit
 *   field ends the run, reserved ones included; a ninth consecutive bit starts a new octet.
 * - Reserved fields (reserved="1") are not in the interfaces: encoders write their zero value, decoders read
 *   and discard them.
 * - Class-level <field>s (basic's content properties) are not method arguments and are ignored here.
 *
 * Who sends what comes from the XML's per-method <chassis name="server"|"client"> elements: a chassis names
 * the peer that must *implement* (receive) the method, so a method the server implements is one the client
 * sends, and vice versa.
 */
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const SPEC_PATH = "spec/amqp0-9-1.extended.xml";
const OUT_PATH = "src/codec/amqp/methods.generated.ts";

/**
 * Methods RabbitMQ implements that the extended XML lacks (they live in RabbitMQ's JSON codegen spec
 * instead). Listed explicitly so the codec can decode them when the broker sends them:
 * - connection.blocked / connection.unblocked: the broker's resource alarms (asynchronous, server → client).
 * - connection.update-secret / update-secret-ok: replace the credentials of an open connection (synchronous).
 * Each is appended to the end of its class, in id order. `chassis` names the peer that receives it, as the
 * XML's <chassis> elements do.
 */
const EXTRA_METHODS = [
  {
    className: "connection",
    name: "blocked",
    index: 60,
    synchronous: false,
    content: false,
    responses: [],
    chassis: ["client"],
    fields: [{ name: "reason", type: "shortstr", reserved: false }],
  },
  {
    className: "connection",
    name: "unblocked",
    index: 61,
    synchronous: false,
    content: false,
    responses: [],
    chassis: ["client"],
    fields: [],
  },
  {
    className: "connection",
    name: "update-secret",
    index: 70,
    synchronous: true,
    content: false,
    responses: ["update-secret-ok"],
    chassis: ["server"],
    fields: [
      { name: "new-secret", type: "longstr", reserved: false },
      { name: "reason", type: "shortstr", reserved: false },
    ],
  },
  {
    className: "connection",
    name: "update-secret-ok",
    index: 71,
    // Marked synchronous like every other "-ok" reply in the XML (and in RabbitMQ's JSON spec).
    synchronous: true,
    content: false,
    responses: [],
    chassis: ["client"],
    fields: [],
  },
];

/**
 * Corrections to what the XML says, each with its reason.
 * - basic.recover: the 0-9-1 XML gives it neither synchronous="1" nor a <response>, yet the server answers it
 *   with basic.recover-ok (its description: "This method replaces the asynchronous Recover"; RabbitMQ's JSON
 *   spec marks it synchronous). A state machine that trusted the XML would take recover-ok as unexpected.
 */
const ERRATA = {
  "basic.recover": { synchronous: true, responses: ["recover-ok"] },
};

/**
 * Field names that would collide with the `classId`/`methodId` discriminants every method object carries.
 * connection.close and channel.close name "the class and method of the failing method" class-id and
 * method-id; their interfaces call them failingClassId and failingMethodId (the spec's own wording).
 */
const FIELD_RENAMES = {
  "connection.close": { "class-id": "failingClassId", "method-id": "failingMethodId" },
  "channel.close": { "class-id": "failingClassId", "method-id": "failingMethodId" },
};

/**
 * The XML spells one argument two ways: every method's `no-wait` except confirm.select's `nowait` (a RabbitMQ
 * addition). Field names are derived from the canonical spelling, so every method's flag is `noWait`.
 */
const SPELLINGS = { nowait: "no-wait" };

const TYPES = ["bit", "octet", "short", "long", "longlong", "timestamp", "shortstr", "longstr", "table"];

// ---------------------------------------------------------------------------------------------------------
// XML scanning

/** Decodes the five predefined entities and numeric character references in an attribute value. */
function unescapeXml(s) {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);/g, (_, e) => {
    if (e === "lt") return "<";
    if (e === "gt") return ">";
    if (e === "amp") return "&";
    if (e === "quot") return '"';
    if (e === "apos") return "'";
    if (e[1] === "x") return String.fromCodePoint(parseInt(e.slice(2), 16));
    return String.fromCodePoint(parseInt(e.slice(1), 10));
  });
}

/**
 * Parses the document into a tree of `{ tag, attrs, children }`. Text content is ignored (the codec needs
 * none of it). Throws on anything it does not understand or on mismatched tags.
 */
function parseXml(text) {
  const root = { tag: "#document", attrs: {}, children: [] };
  const stack = [root];
  let i = 0;
  while (i < text.length) {
    const lt = text.indexOf("<", i);
    if (lt < 0) break;
    if (text.startsWith("<!--", lt)) {
      const end = text.indexOf("-->", lt + 4);
      if (end < 0) throw new Error(`Unterminated comment at offset ${lt}`);
      i = end + 3;
      continue;
    }
    if (text.startsWith("<?", lt)) {
      const end = text.indexOf("?>", lt + 2);
      if (end < 0) throw new Error(`Unterminated processing instruction at offset ${lt}`);
      i = end + 2;
      continue;
    }
    if (text.startsWith("<!", lt)) throw new Error(`Unsupported markup (DOCTYPE/CDATA) at offset ${lt}`);
    const gt = findTagEnd(text, lt);
    const inner = text.slice(lt + 1, gt);
    i = gt + 1;
    if (inner.startsWith("/")) {
      const tag = inner.slice(1).trim();
      const open = stack.pop();
      if (!open || open.tag !== tag) throw new Error(`Mismatched </${tag}> at offset ${lt}`);
      continue;
    }
    const selfClosing = inner.endsWith("/");
    const body = selfClosing ? inner.slice(0, -1) : inner;
    const m = /^([A-Za-z_][\w.-]*)/.exec(body);
    if (!m) throw new Error(`Bad tag at offset ${lt}`);
    const node = { tag: m[1], attrs: parseAttributes(body.slice(m[1].length), lt), children: [] };
    stack[stack.length - 1].children.push(node);
    if (!selfClosing) stack.push(node);
  }
  if (stack.length !== 1) throw new Error(`Unclosed <${stack[stack.length - 1].tag}>`);
  return root;
}

/** Index of the `>` closing the tag that starts at `lt`, skipping `>` inside quoted attribute values. */
function findTagEnd(text, lt) {
  let quote = "";
  for (let j = lt + 1; j < text.length; j++) {
    const ch = text[j];
    if (quote) {
      if (ch === quote) quote = "";
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === ">") return j;
  }
  throw new Error(`Unterminated tag at offset ${lt}`);
}

function parseAttributes(s, at) {
  const attrs = {};
  const re = /\s*([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/y;
  let pos = 0;
  while (pos < s.length) {
    if (/^\s*$/.test(s.slice(pos))) break;
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m) throw new Error(`Bad attributes near offset ${at}: ${JSON.stringify(s.slice(pos))}`);
    attrs[m[1]] = unescapeXml(m[2] ?? m[3]);
    pos = re.lastIndex;
  }
  return attrs;
}

function childrenNamed(node, tag) {
  return node.children.filter((c) => c.tag === tag);
}

function requireAttr(node, name) {
  const v = node.attrs[name];
  if (v === undefined) throw new Error(`<${node.tag}> lacks attribute "${name}": ${JSON.stringify(node.attrs)}`);
  return v;
}

function flag(node, name) {
  const v = node.attrs[name];
  if (v === undefined || v === "0") return false;
  if (v === "1") return true;
  throw new Error(`<${node.tag} ${name}="${v}"> is neither 0 nor 1`);
}

function intAttr(node, name) {
  const v = requireAttr(node, name);
  if (!/^[0-9]+$/.test(v)) throw new Error(`<${node.tag} ${name}="${v}"> is not an integer`);
  return Number(v);
}

// ---------------------------------------------------------------------------------------------------------
// Spec model

function readSpec(xml) {
  const doc = parseXml(xml);
  const [amqp, ...rest] = childrenNamed(doc, "amqp");
  if (!amqp || rest.length) throw new Error("Expected exactly one <amqp> root element");

  const constants = childrenNamed(amqp, "constant").map((c) => ({
    name: requireAttr(c, "name"),
    value: intAttr(c, "value"),
    class: c.attrs.class ?? null,
  }));

  const domains = new Map();
  for (const d of childrenNamed(amqp, "domain")) domains.set(requireAttr(d, "name"), requireAttr(d, "type"));
  /** Follows a domain to its primitive type (domains may in principle name other domains). */
  const resolve = (name, seen = new Set()) => {
    if (TYPES.includes(name)) return name;
    if (seen.has(name)) throw new Error(`Domain cycle at "${name}"`);
    seen.add(name);
    const t = domains.get(name);
    if (t === undefined) throw new Error(`Unknown domain "${name}"`);
    if (t === name) return name;
    return resolve(t, seen);
  };

  const classes = childrenNamed(amqp, "class").map((cls) => {
    const className = requireAttr(cls, "name");
    const methods = childrenNamed(cls, "method").map((m) => {
      const fields = childrenNamed(m, "field").map((f) => {
        const fname = requireAttr(f, "name");
        const domain = f.attrs.domain;
        const type = f.attrs.type;
        if ((domain === undefined) === (type === undefined)) {
          throw new Error(`${className}.${requireAttr(m, "name")}.${fname}: needs exactly one of domain/type`);
        }
        const resolved = type !== undefined ? resolve(type) : resolve(domain);
        if (!TYPES.includes(resolved)) throw new Error(`${fname}: unknown type ${resolved}`);
        return { name: fname, type: resolved, reserved: flag(f, "reserved") };
      });
      const chassis = childrenNamed(m, "chassis").map((ch) => requireAttr(ch, "name"));
      return {
        className,
        name: requireAttr(m, "name"),
        index: intAttr(m, "index"),
        synchronous: flag(m, "synchronous"),
        content: flag(m, "content"),
        responses: childrenNamed(m, "response").map((r) => requireAttr(r, "name")),
        chassis,
        fields,
      };
    });
    return { name: className, index: intAttr(cls, "index"), methods };
  });

  for (const extra of EXTRA_METHODS) {
    const cls = classes.find((c) => c.name === extra.className);
    if (!cls) throw new Error(`Extra method for unknown class ${extra.className}`);
    if (cls.methods.some((m) => m.name === extra.name || m.index === extra.index)) {
      const which = `${extra.className}.${extra.name}`;
      throw new Error(`Extra method ${which} is already in the XML: drop it from EXTRA_METHODS`);
    }
    cls.methods.push({
      ...extra,
      responses: [...extra.responses],
      chassis: [...extra.chassis],
      fields: extra.fields.map((f) => ({ ...f })),
    });
  }

  const methods = [];
  for (const cls of classes) {
    for (const m of cls.methods) {
      const dotted = `${cls.name}.${m.name}`;
      const fix = ERRATA[dotted];
      const renames = FIELD_RENAMES[dotted] ?? {};
      for (const from of Object.keys(renames)) {
        if (!m.fields.some((f) => f.name === from)) throw new Error(`Rename of unknown field ${dotted}.${from}`);
      }
      for (const side of m.chassis) {
        if (side !== "server" && side !== "client") throw new Error(`${dotted}: unknown chassis "${side}"`);
      }
      if (!m.chassis.length) throw new Error(`${dotted}: no <chassis>, so no peer may send it`);
      methods.push({
        dotted,
        className: cls.name,
        classId: cls.index,
        methodId: m.index,
        synchronous: fix?.synchronous ?? m.synchronous,
        content: m.content,
        // The server implements what the client sends, and the client what the server sends.
        clientSends: m.chassis.includes("server"),
        serverSends: m.chassis.includes("client"),
        responses: (fix?.responses ?? m.responses).map((r) => `${cls.name}.${r}`),
        fields: m.fields.map((f) => ({ ...f, prop: renames[f.name] ?? camel(SPELLINGS[f.name] ?? f.name) })),
      });
    }
  }
  for (const dotted of Object.keys(ERRATA)) {
    if (!methods.some((m) => m.dotted === dotted)) throw new Error(`Erratum for unknown method ${dotted}`);
  }
  for (const spelling of Object.keys(SPELLINGS)) {
    if (!methods.some((m) => m.fields.some((f) => f.name === spelling))) {
      throw new Error(`SPELLINGS lists "${spelling}", which no field uses any more: drop it`);
    }
  }

  // Sanity checks: ids unique, responses name real methods, field names unique per method.
  const seenIds = new Map();
  for (const m of methods) {
    const key = m.classId * 65536 + m.methodId;
    if (seenIds.has(key)) throw new Error(`${m.dotted} and ${seenIds.get(key)} share ids ${m.classId}/${m.methodId}`);
    seenIds.set(key, m.dotted);
    for (const r of m.responses) {
      const reply = methods.find((x) => x.dotted === r);
      if (!reply) throw new Error(`${m.dotted} names unknown response ${r}`);
      // A reply goes back the way the request came: whoever receives the request must be able to send it.
      if ((m.clientSends && !reply.serverSends) || (m.serverSends && !reply.clientSends)) {
        throw new Error(`${m.dotted} is answered by ${r}, which its receiver may not send (check <chassis>)`);
      }
    }
    const names = ["name", "classId", "methodId", ...m.fields.filter((f) => !f.reserved).map((f) => f.prop)];
    if (new Set(names).size !== names.length) {
      throw new Error(`${m.dotted}: a field name collides with another or with name/classId/methodId (see FIELD_RENAMES)`);
    }
  }

  return { constants, classes, methods };
}

// ---------------------------------------------------------------------------------------------------------
// Naming

function camel(s) {
  return s.replace(/-([a-z0-9])/g, (_, ch) => ch.toUpperCase());
}
function pascal(s) {
  const c = camel(s);
  return c[0].toUpperCase() + c.slice(1);
}
function typeName(m) {
  return pascal(m.className) + pascal(m.dotted.slice(m.className.length + 1));
}
function screaming(s) {
  return s.toUpperCase().replace(/-/g, "_");
}
function hex(m) {
  return "0x" + ((m.classId << 16) | m.methodId).toString(16).padStart(6, "0");
}

/** Identifiers a field-named local must not shadow or collide with. */
const RESERVED_LOCALS = new Set(["c", "w", "m", "arguments", "eval"]);
function localName(field) {
  const n = field.prop;
  return RESERVED_LOCALS.has(n) ? `${n}_` : n;
}

const TS_TYPE = {
  bit: "boolean",
  octet: "number",
  short: "number",
  long: "number",
  longlong: "Int64",
  timestamp: "Int64",
  shortstr: "string",
  longstr: "Uint8Array",
  table: "FieldTable",
};

/** Splits a field list into wire steps: single fields, or runs of consecutive bits sharing octets. */
function wireSteps(fields) {
  const steps = [];
  for (const f of fields) {
    const last = steps[steps.length - 1];
    if (f.type === "bit") {
      if (last && last.kind === "bits" && last.fields.length < 8) last.fields.push(f);
      else steps.push({ kind: "bits", fields: [f] });
    } else {
      steps.push({ kind: "field", field: f });
    }
  }
  return steps;
}

// ---------------------------------------------------------------------------------------------------------
// Code generation

function describe(m) {
  const parts = [`\`${m.dotted}\` (class ${m.classId}, method ${m.methodId})`];
  const answers = m.responses.map((r) => `\`${r}\``).join(" or ");
  if (m.synchronous && m.responses.length) parts.push(`synchronous: answered by ${answers}`);
  else if (m.synchronous) parts.push("a synchronous reply");
  else parts.push("asynchronous");
  if (m.content) parts.push("followed by content (header and body frames)");
  return parts.join("; ") + ".";
}

function genInterface(m) {
  const out = [];
  out.push(`/** ${describe(m)} */`);
  out.push(`export interface ${typeName(m)} {`);
  out.push(`  readonly name: "${m.dotted}";`);
  out.push(`  readonly classId: ${m.classId};`);
  out.push(`  readonly methodId: ${m.methodId};`);
  for (const f of m.fields) {
    if (f.reserved) continue;
    if (f.name in SPELLINGS) {
      out.push(`  /** The spec's \`${f.name}\`, named like every other method's \`${SPELLINGS[f.name]}\`. */`);
    } else if (f.prop !== camel(f.name)) {
      out.push(`  /** The spec's \`${f.name}\` (renamed: it would clash with the method's own ids). */`);
    }
    out.push(`  readonly ${f.prop}: ${TS_TYPE[f.type]};`);
  }
  out.push("}");
  return out.join("\n");
}

function genEncoder(m) {
  const T = typeName(m);
  const live = m.fields.some((f) => !f.reserved);
  const out = [];
  out.push(`/** Writes the arguments of \`${m.dotted}\` (not its class and method ids). */`);
  if (!m.fields.length) {
    out.push(`export function encode${T}(_w: Writer, _m: ${T}): void {`);
    out.push("  // No arguments.");
    out.push("}");
    return out.join("\n");
  }
  out.push(`export function encode${T}(w: Writer, ${live ? "m" : "_m"}: ${T}): void {`);
  for (const step of wireSteps(m.fields)) {
    if (step.kind === "bits") {
      const terms = step.fields
        .map((f, i) => (f.reserved ? null : `(m.${f.prop} ? ${1 << i} : 0)`))
        .filter((t) => t !== null);
      const names = step.fields.map((f) => (f.reserved ? `${f.name} (reserved, zero)` : f.name)).join(", ");
      out.push(`  // One octet of bits, least significant first: ${names}.`);
      // A lone term drops its parentheses: `w.u8(m.noWait ? 1 : 0)`.
      const expr = terms.length === 0 ? "0" : terms.length === 1 ? terms[0].slice(1, -1) : terms.join(" | ");
      const line = `  w.u8(${expr});`;
      if (line.length <= 120) out.push(line);
      else {
        out.push("  w.u8(");
        terms.forEach((t, i) => out.push(`    ${t}${i < terms.length - 1 ? " |" : ""}`));
        out.push("  );");
      }
      continue;
    }
    const f = step.field;
    const v = `m.${f.prop}`;
    if (f.reserved) {
      out.push(`  ${zeroWrite(f.type)} // ${f.name}: reserved, written as zero`);
      continue;
    }
    out.push(`  ${valueWrite(f.type, v, `${m.dotted} ${f.prop}`)}`);
  }
  out.push("}");
  return out.join("\n");
}

/** `what` names the argument in a field table's encode errors ("Cannot encode queue.declare arguments: …"). */
function valueWrite(type, v, what) {
  switch (type) {
    case "octet":
      return `w.u8(${v});`;
    case "short":
      return `w.u16(${v});`;
    case "long":
      return `w.u32(${v});`;
    case "longlong":
    case "timestamp":
      return `w.u64(${v});`;
    case "shortstr":
      return `w.shortString(${v});`;
    case "longstr":
      return `w.longBytes(${v});`;
    case "table":
      return `encodeFieldTable(w, ${v}, "${what}");`;
  }
  throw new Error(`valueWrite: ${type}`);
}

function zeroWrite(type) {
  switch (type) {
    case "octet":
    case "shortstr": // an empty shortstr is its zero length octet
      return "w.u8(0);";
    case "short":
      return "w.u16(0);";
    case "long":
    case "longstr": // an empty longstr is its zero 32-bit length
    case "table": // an empty table is its zero 32-bit length
      return "w.u32(0);";
    case "longlong":
    case "timestamp":
      return "w.u64(0);";
  }
  throw new Error(`zeroWrite: ${type}`);
}

/**
 * Fields whose values repeat from frame to frame (the exchange and routing key of every delivery, consumer
 * tags): decoded through the interning cache in src/codec/string-cache.ts, which saves a string per field.
 */
const INTERNED = new Set(["exchange", "routingKey", "consumerTag"]);

function valueRead(type, field) {
  if (type === "shortstr" && field && INTERNED.has(field.prop)) return "shortStringInterned(c)";
  switch (type) {
    case "octet":
      return "u8(c)";
    case "short":
      return "u16(c)";
    case "long":
      return "u32(c)";
    case "longlong":
    case "timestamp":
      return "u64(c)";
    case "shortstr":
      return "shortString(c)";
    case "longstr":
      return "longBytes(c)";
    case "table":
      return "decodeFieldTable(c)";
  }
  throw new Error(`valueRead: ${type}`);
}

function genDecoder(m) {
  const T = typeName(m);
  const out = [];
  out.push(`/** Reads the arguments of \`${m.dotted}\` (after its class and method ids). */`);
  const steps = wireSteps(m.fields);
  out.push(`export function decode${T}(${m.fields.length ? "c" : "_c"}: Cursor): ${T} {`);
  if (!m.fields.length) out.push("  // No arguments.");
  // Each live field's value expression, filled in wire order; the literal below lists them in field order.
  const exprs = new Map();
  let bitOctets = 0;
  for (const step of steps) {
    if (step.kind === "bits") {
      const live = step.fields.filter((f) => !f.reserved);
      const names = step.fields.map((f) => (f.reserved ? `${f.name} (reserved, discarded)` : f.name)).join(", ");
      if (!live.length) {
        out.push(`  u8(c); // One octet of bits: ${names}.`);
        continue;
      }
      const octet = `bits${bitOctets++}`;
      out.push(`  const ${octet} = u8(c); // Bits, least significant first: ${names}.`);
      step.fields.forEach((f, i) => {
        if (!f.reserved) exprs.set(f, `(${octet} & ${1 << i}) !== 0`);
      });
      continue;
    }
    const f = step.field;
    if (f.reserved) {
      out.push(`  ${valueRead(f.type)}; // ${f.name}: reserved, discarded`);
      continue;
    }
    const local = localName(f);
    out.push(`  const ${local} = ${valueRead(f.type, f)};`);
    exprs.set(f, local);
  }
  const props = [`name: "${m.dotted}"`, `classId: ${m.classId}`, `methodId: ${m.methodId}`];
  for (const f of m.fields) {
    if (f.reserved) continue;
    const key = f.prop;
    const e = exprs.get(f);
    props.push(e === key ? key : `${key}: ${e}`);
  }
  const oneLine = `  return { ${props.join(", ")} };`;
  if (oneLine.length <= 120) out.push(oneLine);
  else {
    out.push("  return {");
    for (const p of props) out.push(`    ${p},`);
    out.push("  };");
  }
  out.push("}");
  return out.join("\n");
}

function genMetadata(m) {
  const fields = m.fields.map(
    (f) => `{ name: "${f.prop}", type: "${f.type}", reserved: ${f.reserved} }`,
  );
  const lines = [
    `  {`,
    `    name: "${m.dotted}",`,
    `    classId: ${m.classId},`,
    `    methodId: ${m.methodId},`,
    `    synchronous: ${m.synchronous},`,
    `    content: ${m.content},`,
    `    clientSends: ${m.clientSends},`,
    `    serverSends: ${m.serverSends},`,
    `    responses: [${m.responses.map((r) => `"${r}"`).join(", ")}],`,
  ];
  if (!fields.length) lines.push(`    fields: [],`);
  else {
    lines.push(`    fields: [`);
    for (const f of fields) lines.push(`      ${f},`);
    lines.push(`    ],`);
  }
  lines.push(`  },`);
  return lines.join("\n");
}

function generate(xmlBytes) {
  const xml = new TextDecoder("utf-8", { fatal: true }).decode(xmlBytes);
  const sha = createHash("sha256").update(xmlBytes).digest("hex");
  const { constants, classes, methods } = readSpec(xml);
  const used = new Set(methods.flatMap((m) => m.fields.map((f) => f.type)));
  const reservedUsed = new Set(methods.flatMap((m) => m.fields.filter((f) => f.reserved).map((f) => f.type)));
  const liveUsed = new Set(methods.flatMap((m) => m.fields.filter((f) => !f.reserved).map((f) => f.type)));

  const parsers = [];
  if (used.has("bit") || used.has("octet")) parsers.push("u8");
  if (used.has("short")) parsers.push("u16");
  if (used.has("long")) parsers.push("u32");
  if (used.has("longlong") || used.has("timestamp")) parsers.push("u64");
  if (used.has("shortstr")) parsers.push("shortString");
  if (used.has("longstr")) parsers.push("longBytes");

  const o = [];
  o.push(`// GENERATED by scripts/gen-methods.mjs from ${SPEC_PATH} (sha256 ${sha}) — do not edit.`);
  o.push("//");
  o.push("// The XML is the AMQP Working Group's 0-9-1 specification as extended by RabbitMQ, under the BSD license");
  o.push("// reproduced in its header. Four RabbitMQ methods it lacks are added by the script: connection.blocked,");
  o.push("// connection.unblocked, connection.update-secret and connection.update-secret-ok. The script also marks");
  o.push("// basic.recover synchronous (answered by basic.recover-ok), which the XML omits, and names confirm.select's");
  o.push("// `nowait` noWait like every other method's `no-wait`. Who sends a method comes from the XML's <chassis>.");
  o.push("//");
  o.push("// Per method: an interface discriminated by `name`, and straight-line encode/decode functions for its");
  o.push("// arguments. Decoders build one object literal with every field in a fixed order, so V8 gives all values");
  o.push("// of a method one hidden class. Consecutive bit fields share an octet, least significant bit first");
  o.push("// (spec 4.2.5.2). Reserved fields are absent from the interfaces: encoders write their zero value and");
  o.push("// decoders read and discard them. 64-bit integers decode to a number when safe and a bigint above 2^53-1.");
  o.push("");
  o.push(`import type { Cursor } from "../cursor.ts";`);
  o.push(`import type { Writer } from "../writer.ts";`);
  o.push(`import { DecodeError, EncodeError } from "../errors.ts";`);
  o.push(`import { ${parsers.join(", ")} } from "../parsers.ts";`);
  o.push(`import { shortStringInterned } from "../string-cache.ts";`);
  if (liveUsed.has("longlong") || liveUsed.has("timestamp")) o.push(`import type { Int64 } from "../parsers.ts";`);
  if (used.has("table")) {
    const fns = reservedUsed.has("table") && !liveUsed.has("table") ? [] : ["decodeFieldTable", "encodeFieldTable"];
    if (fns.length) o.push(`import { ${fns.join(", ")} } from "./field-table.ts";`);
    if (liveUsed.has("table")) o.push(`import type { FieldTable } from "./field-table.ts";`);
  }
  o.push("");

  // Constants.
  o.push("/**");
  o.push(" * AMQP class ids.");
  o.push(" * @example ClassId.basic; // 60");
  o.push(" */");
  o.push("export const ClassId = {");
  for (const cls of classes) o.push(`  ${camel(cls.name)}: ${cls.index},`);
  o.push("} as const;");
  o.push("");
  o.push("/**");
  o.push(" * Reply codes for connection.close and channel.close: reply-success and the spec's soft errors (close the");
  o.push(" * channel) and hard errors (close the connection).");
  o.push(" * @example ReplyCode.NOT_FOUND; // 404");
  o.push(" */");
  o.push("export const ReplyCode = {");
  for (const c of constants) {
    if (c.name === "reply-success" || c.class === "soft-error" || c.class === "hard-error") {
      o.push(`  ${screaming(c.name)}: ${c.value},${c.class ? ` // ${c.class}` : ""}`);
    }
  }
  o.push("} as const;");
  o.push("");
  o.push("/**");
  o.push(" * Frame types, the minimum frame size every peer must accept, and the frame-end octet.");
  o.push(" * @example FrameConstant.FRAME_END; // 206 (0xCE)");
  o.push(" */");
  o.push("export const FrameConstant = {");
  for (const c of constants) if (c.name.startsWith("frame-") && !c.class) o.push(`  ${screaming(c.name)}: ${c.value},`);
  o.push("} as const;");
  o.push("");

  // Interfaces.
  for (const m of methods) {
    o.push(genInterface(m));
    o.push("");
  }
  o.push("/** Every method of the protocol, discriminated by `name`. */");
  o.push("export type Method =");
  methods.forEach((m, i) => o.push(`  | ${typeName(m)}${i === methods.length - 1 ? ";" : ""}`));
  o.push("");
  o.push("/** The dotted name of every method, e.g. `\"basic.publish\"`. */");
  o.push(`export type MethodName = Method["name"];`);
  o.push("");
  o.push("/**");
  o.push(" * The method type for a dotted name.");
  o.push(' * @example type P = MethodByName["basic.publish"]; // BasicPublish');
  o.push(" */");
  o.push("export type MethodByName = {");
  for (const m of methods) o.push(`  "${m.dotted}": ${typeName(m)};`);
  o.push("};");
  o.push("");
  const requests = methods.filter((m) => m.responses.length);
  const byDotted = new Map(methods.map((m) => [m.dotted, m]));
  o.push("/**");
  o.push(" * Each synchronous request and the method type(s) that may answer it, from the spec's <response> elements.");
  o.push(' * @example type R = ResponseByName["basic.get"]; // BasicGetOk | BasicGetEmpty');
  o.push(" */");
  o.push("export type ResponseByName = {");
  for (const m of requests) {
    o.push(`  "${m.dotted}": ${m.responses.map((r) => typeName(byDotted.get(r))).join(" | ")};`);
  }
  o.push("};");
  o.push("");
  o.push("/** The dotted name of every method that waits for a reply, e.g. `\"queue.declare\"`. */");
  o.push("export type RequestName = keyof ResponseByName;");
  o.push("");
  o.push("/**");
  o.push(" * The reply type of a request, so a caller can type a reply without narrowing by name at run time;");
  o.push(" * `never` for a method nothing answers.");
  o.push(' * @example type R = ResponseOf<"queue.declare">; // QueueDeclareOk');
  o.push(" */");
  o.push("export type ResponseOf<N extends MethodName> = N extends RequestName ? ResponseByName[N] : never;");
  o.push("");

  // Metadata.
  o.push("/** A primitive AMQP argument type. */");
  o.push("export type MethodFieldType =");
  TYPES.forEach((t, i) => o.push(`  | "${t}"${i === TYPES.length - 1 ? ";" : ""}`));
  o.push("");
  o.push("/** One argument of a method, in wire order. */");
  o.push("export interface MethodFieldInfo {");
  o.push("  /** camelCase, as in the method's interface. */");
  o.push("  readonly name: string;");
  o.push("  readonly type: MethodFieldType;");
  o.push("  /** Reserved fields are on the wire (as zero) but not in the interface. */");
  o.push("  readonly reserved: boolean;");
  o.push("}");
  o.push("");
  o.push("/** What the spec says about a method, for tests and for the state machine. */");
  o.push("export interface MethodInfo {");
  o.push("  readonly name: MethodName;");
  o.push("  readonly classId: number;");
  o.push("  readonly methodId: number;");
  o.push("  /** The sender waits for one of `responses` (reply methods are marked synchronous too). */");
  o.push("  readonly synchronous: boolean;");
  o.push("  /** Followed by a content header and body frames. */");
  o.push("  readonly content: boolean;");
  o.push("  /** The client may send it (the spec's server chassis implements it). */");
  o.push("  readonly clientSends: boolean;");
  o.push("  /** The server may send it (the spec's client chassis implements it). */");
  o.push("  readonly serverSends: boolean;");
  o.push("  /** The methods that may answer this one. */");
  o.push("  readonly responses: readonly MethodName[];");
  o.push("  readonly fields: readonly MethodFieldInfo[];");
  o.push("}");
  o.push("");
  o.push("/**");
  o.push(" * Every method in spec order (the RabbitMQ extras at the end of their class).");
  o.push(' * @example METHODS.find((m) => m.name === "basic.get")?.responses; // ["basic.get-ok", "basic.get-empty"]');
  o.push(" */");
  o.push("export const METHODS: readonly MethodInfo[] = [");
  for (const m of methods) o.push(genMetadata(m));
  o.push("];");
  o.push("");

  // Per-method codecs.
  for (const m of methods) {
    o.push(genEncoder(m));
    o.push("");
    o.push(genDecoder(m));
    o.push("");
  }

  // Dispatch.
  o.push("/**");
  o.push(" * Writes a method frame's payload: class id, method id, then the arguments. An object that is no known");
  o.push(" * method (possible only from untyped callers) is an EncodeError, raised before anything is written.");
  o.push(" * @example");
  o.push(" * const w = new Writer();");
  o.push(' * encodeMethodPayload(w, { name: "channel.close-ok", classId: 20, methodId: 41 });');
  o.push(" * w.finish(); // Uint8Array [0, 20, 0, 41]");
  o.push(" */");
  o.push("export function encodeMethodPayload(w: Writer, m: Method): void {");
  o.push("  // The switch does not narrow `m` on a computed key, hence the casts; the key is checked against name.");
  o.push("  switch ((m.classId << 16) | m.methodId) {");
  for (const m of methods) {
    o.push(`    case ${hex(m)}: // ${m.dotted}`);
    o.push(`      w.u32(${hex(m)});`);
    o.push(`      encode${typeName(m)}(w, m as ${typeName(m)});`);
    o.push("      return;");
  }
  o.push("    default:");
  o.push("      throw new EncodeError(");
  o.push("        `Cannot encode method: unknown class ${String(m.classId)} method ${String(m.methodId)}`,");
  o.push("      );");
  o.push("  }");
  o.push("}");
  o.push("");
  o.push("/**");
  o.push(" * Reads a method frame's payload: class id, method id, then the arguments. An unknown class/method pair is");
  o.push(" * a DecodeError UNKNOWN_METHOD (reply code 540). Trailing bytes are the caller's to check.");
  o.push(" * @example");
  o.push(" * decodeMethodPayload(new Cursor(new Uint8Array([0, 20, 0, 41])));");
  o.push(' * // { name: "channel.close-ok", classId: 20, methodId: 41 }');
  o.push(" */");
  o.push("export function decodeMethodPayload(c: Cursor): Method {");
  o.push("  const classId = u16(c);");
  o.push("  const methodId = u16(c);");
  o.push("  switch ((classId << 16) | methodId) {");
  for (const m of methods) {
    o.push(`    case ${hex(m)}: // ${m.dotted}`);
    o.push(`      return decode${typeName(m)}(c);`);
  }
  o.push("    default:");
  o.push('      throw new DecodeError("UNKNOWN_METHOD", `Cannot decode method: unknown class ${classId} method ${methodId}`);');
  o.push("  }");
  o.push("}");
  o.push("");
  return { text: o.join("\n"), count: methods.length };
}

// ---------------------------------------------------------------------------------------------------------

function main(argv) {
  const check = argv.includes("--check");
  const unknown = argv.filter((a) => a !== "--check");
  if (unknown.length) {
    console.error(`Usage: node scripts/gen-methods.mjs [--check] (unknown: ${unknown.join(" ")})`);
    return 2;
  }
  const { text, count } = generate(readFileSync(join(ROOT, SPEC_PATH)));
  const outFile = join(ROOT, OUT_PATH);
  if (check) {
    let current = null;
    try {
      current = readFileSync(outFile, "utf8");
    } catch {
      // reported below
    }
    if (current === text) {
      console.log(`${OUT_PATH} is up to date (${count} methods).`);
      return 0;
    }
    console.error(
      current === null
        ? `${OUT_PATH} is missing: run \`npm run gen\` and commit the result.`
        : `${OUT_PATH} is out of date with ${SPEC_PATH} or scripts/gen-methods.mjs: ` +
          "run `npm run gen` and commit the result.",
    );
    return 1;
  }
  writeFileSync(outFile, text);
  console.log(`Wrote ${OUT_PATH} (${count} methods).`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
