/**
 * The generated method codecs (src/codec/amqp/methods.generated.ts): every method round-trips, the wire bytes
 * match the spec for hand-checked vectors, bits pack least significant first, reserved fields are zero on the
 * wire and absent from the objects, and the generated file matches what the script produces today.
 */
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Cursor } from "../../src/codec/cursor.ts";
import { Writer } from "../../src/codec/writer.ts";
import { DecodeError, EncodeError, Incomplete } from "../../src/codec/errors.ts";
import {
  ClassId,
  FrameConstant,
  METHODS,
  ReplyCode,
  decodeMethodPayload,
  encodeMethodPayload,
} from "../../src/codec/amqp/methods.generated.ts";
import type {
  BasicGetEmpty,
  BasicGetOk,
  ChannelCloseOk,
  ConnectionUpdateSecretOk,
  Method,
  MethodFieldInfo,
  MethodInfo,
  MethodName,
  QueueDeclareOk,
  RequestName,
  ResponseOf,
} from "../../src/codec/amqp/methods.generated.ts";
import type { FieldTable } from "../../src/codec/amqp/field-table.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const utf8 = new TextEncoder();
const byteLength = (s: string): number => utf8.encode(s).length;

function encode(m: Method): Uint8Array {
  const w = new Writer();
  encodeMethodPayload(w, m);
  return w.finish();
}

/** Decodes a whole payload and checks the decoder used every byte. */
function decodeAll(bytes: Uint8Array): Method {
  const c = new Cursor(bytes);
  const m = decodeMethodPayload(c);
  expect(c.pos).toBe(bytes.length);
  return m;
}

function info(name: MethodName): MethodInfo {
  const i = METHODS.find((m) => m.name === name);
  if (!i) throw new Error(`no METHODS entry for ${name}`);
  return i;
}

/** True when A and B are the same type (not merely assignable one way); checked by tsc, not at run time. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

const ascii = (s: string): number[] => [...s].map((ch) => ch.charCodeAt(0));

// ---------------------------------------------------------------------------------------------------------
// Arbitraries, one per AMQP type

const TWO_53 = 2n ** 53n;
const U64_MAX = 2n ** 64n - 1n;

const shortstr: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 80 }).filter((s) => byteLength(s) <= 255),
  fc.constant(""),
  fc.constant("x".repeat(255)),
  fc.constant("é".repeat(127) + "x"), // 255 bytes of two-byte characters and one ASCII
);

const longlong: fc.Arbitrary<number | bigint> = fc.oneof(
  fc.maxSafeNat(),
  fc.bigInt({ min: TWO_53, max: U64_MAX }),
  fc.constantFrom<number | bigint>(0, Number.MAX_SAFE_INTEGER, TWO_53, U64_MAX),
);

/** Tables whose values decode back to the same JavaScript values (strings, booleans, int32 integers). */
const table: fc.Arbitrary<FieldTable> = fc.dictionary(
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }).filter((k) => byteLength(k) <= 255),
  fc.oneof(fc.string({ unit: "grapheme", maxLength: 40 }), fc.boolean(), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })),
  { maxKeys: 8 },
);

function arbitraryFor(f: MethodFieldInfo): fc.Arbitrary<unknown> {
  switch (f.type) {
    case "bit":
      return fc.boolean();
    case "octet":
      return fc.integer({ min: 0, max: 255 });
    case "short":
      return fc.integer({ min: 0, max: 65535 });
    case "long":
      return fc.bigInt({ min: 0n, max: 0xffff_ffffn }).map(Number);
    case "longlong":
    case "timestamp":
      return longlong;
    case "shortstr":
      return shortstr;
    case "longstr":
      return fc.uint8Array({ maxLength: 300 });
    case "table":
      return table;
  }
}

function arbitraryMethod(i: MethodInfo): fc.Arbitrary<Method> {
  const fields: Record<string, fc.Arbitrary<unknown>> = {
    name: fc.constant(i.name),
    classId: fc.constant(i.classId),
    methodId: fc.constant(i.methodId),
  };
  for (const f of i.fields) if (!f.reserved) fields[f.name] = arbitraryFor(f);
  return fc.record(fields) as unknown as fc.Arbitrary<Method>;
}

const anyMethod: fc.Arbitrary<Method> = fc.oneof(...METHODS.map(arbitraryMethod));

// ---------------------------------------------------------------------------------------------------------

describe("METHODS metadata", () => {
  it("has the XML's methods plus the four RabbitMQ extras", () => {
    const xml = readFileSync(`${ROOT}spec/amqp0-9-1.extended.xml`, "utf8");
    const inXml = xml.match(/<method\s/g)?.length ?? 0;
    expect(inXml).toBe(60);
    expect(METHODS).toHaveLength(inXml + 4);
    expect(new Set(METHODS.map((m) => m.name)).size).toBe(METHODS.length);
    expect(new Set(METHODS.map((m) => (m.classId << 16) | m.methodId)).size).toBe(METHODS.length);
  });

  it("names only real methods as responses", () => {
    const names = new Set<string>(METHODS.map((m) => m.name));
    for (const m of METHODS) for (const r of m.responses) expect(names.has(r), `${m.name} → ${r}`).toBe(true);
  });

  it("lists the replies a synchronous request waits for", () => {
    expect(info("basic.get").responses).toEqual(["basic.get-ok", "basic.get-empty"]);
    expect(info("queue.declare")).toMatchObject({ synchronous: true, responses: ["queue.declare-ok"] });
    expect(info("basic.publish")).toMatchObject({ synchronous: false, content: true, responses: [] });
    expect(info("basic.get-ok")).toMatchObject({ content: true });
    // The XML omits it; the server answers basic.recover with recover-ok (erratum in the generator).
    expect(info("basic.recover")).toMatchObject({ synchronous: true, responses: ["basic.recover-ok"] });
  });

  it("keeps reserved fields in the metadata, flagged, in wire order", () => {
    expect(info("basic.publish").fields).toEqual([
      { name: "reserved1", type: "short", reserved: true },
      { name: "exchange", type: "shortstr", reserved: false },
      { name: "routingKey", type: "shortstr", reserved: false },
      { name: "mandatory", type: "bit", reserved: false },
      { name: "immediate", type: "bit", reserved: false },
    ]);
  });

  it("says which peer sends each method, from the spec's <chassis> (the receiver implements it)", () => {
    const sides = (name: MethodName) => {
      const { clientSends, serverSends } = info(name);
      return { clientSends, serverSends };
    };
    expect(sides("basic.deliver")).toEqual({ clientSends: false, serverSends: true });
    expect(sides("basic.return")).toEqual({ clientSends: false, serverSends: true });
    expect(sides("queue.declare")).toEqual({ clientSends: true, serverSends: false });
    expect(sides("queue.declare-ok")).toEqual({ clientSends: false, serverSends: true });
    expect(sides("basic.publish")).toEqual({ clientSends: true, serverSends: false });
    expect(sides("basic.ack")).toEqual({ clientSends: true, serverSends: true });
    expect(sides("basic.nack")).toEqual({ clientSends: true, serverSends: true });
    expect(sides("basic.cancel")).toEqual({ clientSends: true, serverSends: true }); // RabbitMQ's consumer cancel
    expect(sides("channel.close")).toEqual({ clientSends: true, serverSends: true });
    expect(sides("connection.start")).toEqual({ clientSends: false, serverSends: true });
    expect(sides("connection.start-ok")).toEqual({ clientSends: true, serverSends: false });
    // RabbitMQ's additions, in the XML and added by the generator.
    expect(sides("confirm.select")).toEqual({ clientSends: true, serverSends: false });
    expect(sides("confirm.select-ok")).toEqual({ clientSends: false, serverSends: true });
    expect(sides("exchange.bind")).toEqual({ clientSends: true, serverSends: false });
    expect(sides("exchange.unbind-ok")).toEqual({ clientSends: false, serverSends: true });
    expect(sides("connection.blocked")).toEqual({ clientSends: false, serverSends: true });
    expect(sides("connection.unblocked")).toEqual({ clientSends: false, serverSends: true });
    expect(sides("connection.update-secret")).toEqual({ clientSends: true, serverSends: false });
    expect(sides("connection.update-secret-ok")).toEqual({ clientSends: false, serverSends: true });
  });

  it("lets some peer send every method, and a reply go back to whoever sent the request", () => {
    for (const m of METHODS) {
      expect(m.clientSends || m.serverSends, m.name).toBe(true);
      for (const r of m.responses) {
        if (m.clientSends) expect(info(r).serverSends, `${m.name} → ${r}`).toBe(true);
        if (m.serverSends) expect(info(r).clientSends, `${m.name} → ${r}`).toBe(true);
      }
    }
  });

  it("types each request's reply: ResponseOf maps a request name to its response method(s)", () => {
    const declareOk: Equal<ResponseOf<"queue.declare">, QueueDeclareOk> = true;
    const getReply: Equal<ResponseOf<"basic.get">, BasicGetOk | BasicGetEmpty> = true;
    const closeOk: Equal<ResponseOf<"channel.close">, ChannelCloseOk> = true;
    const secretOk: Equal<ResponseOf<"connection.update-secret">, ConnectionUpdateSecretOk> = true;
    const nothing: Equal<ResponseOf<"basic.publish">, never> = true; // asynchronous: nothing answers it
    const notARequest: Equal<Extract<RequestName, "queue.declare-ok" | "basic.deliver">, never> = true;
    expect([declareOk, getReply, closeOk, secretOk, nothing, notARequest]).toEqual([true, true, true, true, true, true]);
    // The run-time metadata agrees: exactly the methods with responses are requests.
    const requests: RequestName[] = ["queue.declare", "basic.get", "channel.close", "connection.update-secret"];
    for (const r of requests) expect(info(r).responses.length).toBeGreaterThan(0);
  });

  it("names confirm.select's flag noWait like every other method's no-wait (the XML spells it nowait)", () => {
    expect(info("confirm.select").fields).toEqual([{ name: "noWait", type: "bit", reserved: false }]);
    const bytes = encode({ name: "confirm.select", classId: 85, methodId: 10, noWait: true });
    expect([...bytes]).toEqual([0, 85, 0, 10, 1]);
    expect(decodeAll(bytes)).toEqual({ name: "confirm.select", classId: 85, methodId: 10, noWait: true });
    const spellings = new Set(METHODS.flatMap((m) => m.fields.map((f) => f.name).filter((n) => /^no-?wait$/i.test(n))));
    expect([...spellings]).toEqual(["noWait"]);
  });

  it("uses RabbitMQ's id for exchange.unbind-ok (51, not 41)", () => {
    expect(info("exchange.unbind-ok")).toMatchObject({ classId: 40, methodId: 51 });
  });

  it("exports class ids, reply codes and frame constants from the spec", () => {
    expect(ClassId).toEqual({ connection: 10, channel: 20, exchange: 40, queue: 50, basic: 60, tx: 90, confirm: 85 });
    expect(ReplyCode).toMatchObject({
      REPLY_SUCCESS: 200,
      CONTENT_TOO_LARGE: 311,
      NOT_FOUND: 404,
      PRECONDITION_FAILED: 406,
      FRAME_ERROR: 501,
      NOT_IMPLEMENTED: 540,
      INTERNAL_ERROR: 541,
    });
    expect(Object.keys(ReplyCode)).toHaveLength(18);
    expect(FrameConstant).toEqual({
      FRAME_METHOD: 1,
      FRAME_HEADER: 2,
      FRAME_BODY: 3,
      FRAME_HEARTBEAT: 8,
      FRAME_MIN_SIZE: 4096,
      FRAME_END: 206,
    });
  });
});

describe("method payload round trip", () => {
  for (const i of METHODS) {
    it(`${i.name} decodes to what was encoded, using every byte`, () => {
      fc.assert(
        fc.property(arbitraryMethod(i), (m) => {
          const bytes = encode(m);
          expect(decodeAll(bytes)).toEqual(m);
        }),
        { numRuns: 60 },
      );
    });
  }

  it("decodes every method with its keys in one fixed order (name, classId, methodId, fields)", () => {
    fc.assert(
      fc.property(anyMethod, (m) => {
        const i = info(m.name);
        const expected = ["name", "classId", "methodId", ...i.fields.filter((f) => !f.reserved).map((f) => f.name)];
        expect(Object.keys(decodeAll(encode(m)))).toEqual(expected);
      }),
    );
  });

  it("never decodes a strict prefix: it runs out of input (Incomplete), or a table is cut (TRUNCATED)", () => {
    fc.assert(
      fc.property(anyMethod, fc.nat(), (m, cut) => {
        const bytes = encode(m);
        const prefix = bytes.subarray(0, cut % bytes.length);
        try {
          decodeMethodPayload(new Cursor(prefix));
        } catch (e) {
          if (e instanceof Incomplete) return;
          expect(e).toBeInstanceOf(DecodeError);
          expect((e as DecodeError).code).toBe("TRUNCATED");
          return;
        }
        throw new Error(`a ${prefix.length}-byte prefix of ${m.name} decoded`);
      }),
    );
  });
});

describe("wire format", () => {
  it("encodes basic.publish as the spec lays it out", () => {
    const bytes = encode({
      name: "basic.publish",
      classId: 60,
      methodId: 40,
      exchange: "ex",
      routingKey: "rk",
      mandatory: true,
      immediate: false,
    });
    expect([...bytes]).toEqual([
      0, 60, // class basic
      0, 40, // method publish
      0, 0, // reserved-1 (ticket)
      2, ...ascii("ex"), // exchange
      2, ...ascii("rk"), // routing-key
      0b01, // mandatory = bit 0, immediate = bit 1
    ]);
  });

  it("packs consecutive bits into one octet, least significant first", () => {
    const bytes = encode({
      name: "queue.declare",
      classId: 50,
      methodId: 10,
      queue: "q",
      passive: false,
      durable: true,
      exclusive: false,
      autoDelete: true,
      noWait: false,
      arguments: {},
    });
    // durable = bit 1, auto-delete = bit 3; then an empty table.
    expect([...bytes]).toEqual([0, 50, 0, 10, 0, 0, 1, ...ascii("q"), 0b1010, 0, 0, 0, 0]);
  });

  it("ends a bit run at any other field: basic.deliver's redelivered gets its own octet", () => {
    const bytes = encode({
      name: "basic.deliver",
      classId: 60,
      methodId: 60,
      consumerTag: "c",
      deliveryTag: 1,
      redelivered: true,
      exchange: "",
      routingKey: "",
    });
    expect([...bytes]).toEqual([0, 60, 0, 60, 1, ...ascii("c"), 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0]);
  });

  it("writes reserved fields as zero and skips whatever the peer put in them", () => {
    expect([...encode({ name: "connection.open", classId: 10, methodId: 40, virtualHost: "/" })]).toEqual([
      0, 10, 0, 40, 1, ...ascii("/"), 0, 0,
    ]);
    expect([...encode({ name: "channel.open-ok", classId: 20, methodId: 11 })]).toEqual([0, 20, 0, 11, 0, 0, 0, 0]);
    // Old brokers sent known-hosts in connection.open-ok's reserved shortstr.
    expect(decodeAll(new Uint8Array([0, 10, 0, 41, 3, ...ascii("a:1")]))).toEqual({
      name: "connection.open-ok",
      classId: 10,
      methodId: 41,
    });
  });

  it("decodes a 64-bit delivery tag as a number when safe and a bigint above 2^53-1", () => {
    const deliver = (tag: number[]): Method =>
      decodeAll(new Uint8Array([0, 60, 0, 60, 0, ...tag, 0, 0, 0]));
    expect(deliver([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])).toMatchObject({
      deliveryTag: 18446744073709551615n,
    });
    const small = deliver([0, 0, 0, 0, 0, 0, 0, 5]);
    expect(small).toMatchObject({ deliveryTag: 5 });
    expect(typeof (small as { deliveryTag: unknown }).deliveryTag).toBe("number");
  });

  it("names the failing method of a close failingClassId/failingMethodId (classId is the close's own)", () => {
    const m = decodeAll(new Uint8Array([0, 20, 0, 40, 1, 0x94, 2, ...ascii("no"), 0, 50, 0, 10]));
    expect(m).toEqual({
      name: "channel.close",
      classId: 20,
      methodId: 40,
      replyCode: 404,
      replyText: "no",
      failingClassId: 50,
      failingMethodId: 10,
    });
  });
});

describe("RabbitMQ extensions", () => {
  it("has connection.blocked, unblocked, update-secret and update-secret-ok with RabbitMQ's ids", () => {
    expect(info("connection.blocked")).toMatchObject({ classId: 10, methodId: 60, synchronous: false });
    expect(info("connection.unblocked")).toMatchObject({ classId: 10, methodId: 61, synchronous: false, fields: [] });
    expect(info("connection.update-secret")).toMatchObject({
      classId: 10,
      methodId: 70,
      synchronous: true,
      responses: ["connection.update-secret-ok"],
      fields: [
        { name: "newSecret", type: "longstr", reserved: false },
        { name: "reason", type: "shortstr", reserved: false },
      ],
    });
    expect(info("connection.update-secret-ok")).toMatchObject({ classId: 10, methodId: 71, fields: [] });
  });

  it("round-trips them byte for byte", () => {
    const blocked = encode({ name: "connection.blocked", classId: 10, methodId: 60, reason: "low on memory" });
    expect([...blocked]).toEqual([0, 10, 0, 60, 13, ...ascii("low on memory")]);
    expect(decodeAll(blocked)).toEqual({ name: "connection.blocked", classId: 10, methodId: 60, reason: "low on memory" });

    const unblocked = encode({ name: "connection.unblocked", classId: 10, methodId: 61 });
    expect([...unblocked]).toEqual([0, 10, 0, 61]);
    expect(decodeAll(unblocked)).toEqual({ name: "connection.unblocked", classId: 10, methodId: 61 });

    const secret = new Uint8Array([1, 2, 3]);
    const update = encode({ name: "connection.update-secret", classId: 10, methodId: 70, newSecret: secret, reason: "r" });
    expect([...update]).toEqual([0, 10, 0, 70, 0, 0, 0, 3, 1, 2, 3, 1, ...ascii("r")]);
    expect(decodeAll(update)).toEqual({
      name: "connection.update-secret",
      classId: 10,
      methodId: 70,
      newSecret: secret,
      reason: "r",
    });

    const ok = encode({ name: "connection.update-secret-ok", classId: 10, methodId: 71 });
    expect([...ok]).toEqual([0, 10, 0, 71]);
    expect(decodeAll(ok)).toEqual({ name: "connection.update-secret-ok", classId: 10, methodId: 71 });
  });
});

describe("unknown methods", () => {
  it("refuses to decode an unknown class/method pair with UNKNOWN_METHOD (reply code 540)", () => {
    for (const [bytes, text] of [
      [[0, 99, 0, 1], "unknown class 99 method 1"],
      [[0, 60, 0, 41], "unknown class 60 method 41"],
      [[0xff, 0xff, 0xff, 0xff], "unknown class 65535 method 65535"],
    ] as const) {
      let caught: unknown;
      try {
        decodeMethodPayload(new Cursor(new Uint8Array(bytes)));
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(DecodeError);
      expect(caught).toMatchObject({ code: "UNKNOWN_METHOD", replyCode: 540, message: `Cannot decode method: ${text}` });
    }
  });

  it("names the method and argument whose field table cannot be encoded", () => {
    const declare = {
      name: "queue.declare",
      classId: 50,
      methodId: 10,
      queue: "q",
      passive: false,
      durable: false,
      exclusive: false,
      autoDelete: false,
      noWait: false,
      arguments: { "x-message-ttl": Number.NaN },
    } as const;
    expect(() => encode(declare)).toThrow(/^Cannot encode queue\.declare arguments: "x-message-ttl" is NaN, which RabbitMQ cannot parse/);
  });

  it("refuses to encode an object that is no method, before writing anything", () => {
    const w = new Writer();
    const bogus = { name: "basic.frobnicate", classId: 60, methodId: 999 } as unknown as Method;
    expect(() => encodeMethodPayload(w, bogus)).toThrow(EncodeError);
    expect(w.length).toBe(0);
  });
});

describe("generated file", () => {
  it("is what scripts/gen-methods.mjs generates from the vendored XML", () => {
    const r = spawnSync(process.execPath, ["scripts/gen-methods.mjs", "--check"], { cwd: ROOT, encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});
