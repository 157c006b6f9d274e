import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  decodeFrame,
  encodeBodyFrames,
  encodeContent,
  encodeHeaderFrame,
  encodeHeartbeatFrame,
  encodeMethodFrame,
  FrameDecoder,
  PROTOCOL_HEADER,
  type Frame,
  type Method,
} from "../../src/codec/index.ts";
import { basicProperties } from "../support/arbitraries.ts";
import { concat, hex, toHex, written, decodeError } from "../support/bytes.ts";
import { loadTranscript, stream, TRANSCRIPTS } from "../support/transcripts.ts";

/** Decodes a whole stream, fed in the given chunk sizes (cycled). */
function decodeAll(bytes: Uint8Array, chunkSizes: number[] = [bytes.length], frameMax = 0): Frame[] {
  const d = new FrameDecoder({ frameMax });
  const frames: Frame[] = [];
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const n = Math.max(1, chunkSizes[i % chunkSizes.length]!);
    d.push(bytes.subarray(at, at + n));
    at += n;
    for (let f = d.next(); f !== undefined; f = d.next()) frames.push(f);
  }
  expect(d.buffered).toBe(0);
  return frames;
}

/** Frame lists compared with body payloads compared as bytes: far faster than a deep compare. */
function sameFrames(a: Frame[], b: Frame[]): boolean {
  const json = (f: Frame) => JSON.stringify(f, (_, v) => (typeof v === "bigint" ? `${v}n` : v));
  return (
    a.length === b.length &&
    a.every((f, i) => {
      const g = b[i]!;
      if (f.type === 3 && g.type === 3) return f.channel === g.channel && Buffer.compare(f.payload, g.payload) === 0;
      return json(f) === json(g);
    })
  );
}

const names = (frames: Frame[]) => frames.map((f) => (f.type === 1 ? f.method.name : f.type));

describe("golden vectors recorded from RabbitMQ 3.10", () => {
  it("decodes the handshake both ways", () => {
    const t = loadTranscript("handshake");
    const client = stream(t, "c2s");
    expect(toHex(client.subarray(0, 8))).toBe(toHex(PROTOCOL_HEADER));
    expect(names(decodeAll(client.subarray(8)))).toEqual(["connection.start-ok", "connection.tune-ok", "connection.open", "connection.close"]);

    const server = decodeAll(stream(t, "s2c"));
    expect(names(server)).toEqual(["connection.start", "connection.tune", "connection.open-ok", "connection.close-ok"]);
    const start = (server[0] as Extract<Frame, { type: 1 }>).method;
    if (start.name !== "connection.start") throw new Error("unreachable");
    expect(start.versionMajor).toBe(0);
    expect(start.versionMinor).toBe(9);
    expect(new TextDecoder().decode(start.mechanisms).split(" ")).toContain("PLAIN");
    expect(start.serverProperties.product).toBe("RabbitMQ");
    expect(start.serverProperties.version).toBe("3.10.8");
    const caps = start.serverProperties.capabilities as Record<string, unknown>;
    expect(caps.publisher_confirms).toBe(true);
    expect(caps.authentication_failure_close).toBe(true);
    const tune = (server[1] as Extract<Frame, { type: 1 }>).method;
    expect(tune).toEqual({ name: "connection.tune", classId: 10, methodId: 30, channelMax: 2047, frameMax: 131072, heartbeat: 60 });
  });

  it("decodes a publish with every property and a headers table, and its delivery", () => {
    const t = loadTranscript("publish-consume");
    const expected = {
      contentType: "text/plain",
      contentEncoding: "utf-8",
      headers: { "x-int": 42, "x-str": "abc", "x-bool": true, "x-nested": { k: 1 } },
      deliveryMode: 2,
      priority: 3,
      correlationId: "corr-1",
      replyTo: "reply.q",
      expiration: "60000",
      messageId: "msg-1",
      timestamp: 1700000000,
      type: "greeting",
      userId: undefined,
      appId: "warren-golden",
      clusterId: undefined,
    };
    const client = decodeAll(stream(t, "c2s").subarray(8));
    const pub = client.findIndex((f) => f.type === 1 && f.method.name === "basic.publish");
    expect(client[pub]).toMatchObject({ channel: 1, method: { exchange: "", routingKey: "warren.golden.pc", mandatory: false } });
    expect(client[pub + 1]).toEqual({ type: 2, channel: 1, classId: 60, bodySize: 12, properties: expected });
    expect(client[pub + 2]).toMatchObject({ type: 3, channel: 1 });
    expect(new TextDecoder().decode((client[pub + 2] as Extract<Frame, { type: 3 }>).payload)).toBe("hello warren");

    const server = decodeAll(stream(t, "s2c"));
    const del = server.findIndex((f) => f.type === 1 && f.method.name === "basic.deliver");
    expect(server[del]).toMatchObject({
      channel: 1,
      method: { consumerTag: "warren.golden.pc.ctag", deliveryTag: 1, redelivered: false, exchange: "", routingKey: "warren.golden.pc" },
    });
    expect(server[del + 1]).toEqual({ type: 2, channel: 1, classId: 60, bodySize: 12, properties: expected });
    const ack = server.find((f) => f.type === 1 && f.method.name === "basic.ack");
    expect(ack).toMatchObject({ channel: 1, method: { deliveryTag: 1, multiple: false } });
  });

  it("decodes a broker channel.close with its reply code and the failing method", () => {
    const server = decodeAll(stream(loadTranscript("channel-error"), "s2c"));
    const close = server.find((f) => f.type === 1 && f.method.name === "channel.close");
    expect(close).toMatchObject({ channel: 2, method: { replyCode: 406, failingClassId: 50, failingMethodId: 10 } });
    expect((close as Extract<Frame, { type: 1 }>).method).toHaveProperty("replyText", expect.stringMatching(/^PRECONDITION_FAILED/));
  });

  it("re-encodes every recorded frame to the exact bytes on the wire", () => {
    // Header frames whose headers table holds integers are the exception: amqplib wrote 42 as int8 ('b'),
    // warren writes a plain number as int32 ('I'); those must still decode to equal values.
    let compared = 0;
    for (const name of TRANSCRIPTS) {
      const t = loadTranscript(name);
      for (const dir of ["c2s", "s2c"] as const) {
        let bytes = stream(t, dir);
        if (dir === "c2s") bytes = bytes.subarray(8);
        const d = new FrameDecoder();
        d.push(bytes);
        let at = 0;
        for (let f = d.next(); f !== undefined; f = d.next()) {
          const size = bytes.length - at - d.buffered;
          const original = bytes.subarray(at, at + size);
          at += size;
          const again = written((w) => {
            if (f.type === 1) encodeMethodFrame(w, f.channel, f.method);
            else if (f.type === 2) encodeHeaderFrame(w, f.channel, f.classId, f.bodySize, f.properties);
            else if (f.type === 3) encodeBodyFrames(w, f.channel, f.payload, 131072);
            else if (f.type === 8) encodeHeartbeatFrame(w);
          });
          if (f.type === 2 && f.properties.headers) expect(decodeFrame(again)).toEqual(f);
          else expect(toHex(again)).toBe(toHex(original));
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(50);
  });
});

describe("chunking invariance", () => {
  for (const name of ["handshake", "publish-consume", "channel-error"] as const) {
    it(`${name}: one byte at a time, and split at every offset, decodes the same as whole`, () => {
      const bytes = stream(loadTranscript(name), "s2c");
      const whole = decodeAll(bytes);
      expect(decodeAll(bytes, [1])).toEqual(whole);
      for (let split = 1; split < bytes.length; split++) {
        expect(decodeAll(bytes, [split, bytes.length])).toEqual(whole);
      }
    });
  }

  it("large-body: any random chunking decodes the same as whole", () => {
    const bytes = stream(loadTranscript("large-body"), "s2c");
    const whole = decodeAll(bytes);
    expect(whole.filter((f) => f.type === 3).map((f) => (f as Extract<Frame, { type: 3 }>).payload.length)).toEqual([131064, 131064, 37872]);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 70000 }), { minLength: 1, maxLength: 20 }), (sizes) => {
        expect(sameFrames(decodeAll(bytes, sizes), whole)).toBe(true);
      }),
      { numRuns: 30 },
    );
  });
});

describe("encoding frames", () => {
  const publish: Method = { name: "basic.publish", classId: 60, methodId: 40, exchange: "ex", routingKey: "rk", mandatory: true, immediate: false };

  it("a publish is method, header and body frames, body split by frame_max", () => {
    fc.assert(
      fc.property(basicProperties, fc.integer({ min: 0, max: 20000 }), fc.integer({ min: 4096, max: 9000 }), (props, size, frameMax) => {
        const body = new Uint8Array(size).map((_, i) => i % 251);
        const bytes = written((w) => encodeContent(w, 7, publish, props, body, frameMax));
        const frames = decodeAll(bytes, [bytes.length], frameMax);
        expect(frames[0]).toEqual({ type: 1, channel: 7, method: publish });
        expect(frames[1]).toMatchObject({ type: 2, channel: 7, classId: 60, bodySize: size });
        const bodies = frames.slice(2) as Extract<Frame, { type: 3 }>[];
        expect(bodies.length).toBe(Math.ceil(size / (frameMax - 8)));
        for (const b of bodies) expect(b.payload.length + 8).toBeLessThanOrEqual(frameMax);
        expect(toHex(concat(bodies.map((b) => b.payload)))).toBe(toHex(body));
      }),
      { numRuns: 100 },
    );
  });

  it("an empty body sends no body frame", () => {
    const bytes = written((w) => encodeBodyFrames(w, 1, new Uint8Array(0), 4096));
    expect(bytes.length).toBe(0);
  });

  it("heartbeat and close-ok have their exact bytes", () => {
    expect(toHex(written((w) => encodeHeartbeatFrame(w)))).toBe("08000000000000ce");
    expect(toHex(written((w) => encodeMethodFrame(w, 0, { name: "connection.close-ok", classId: 10, methodId: 51 })))).toBe(
      "01000000000004000a0033ce",
    );
  });

  it("a content encode that fails leaves nothing half-written", () => {
    const bytes = written((w) => {
      w.u8(0xaa);
      expect(() => encodeContent(w, 1, publish, { contentType: "x".repeat(300) }, new Uint8Array(3), 4096)).toThrow();
    });
    expect(toHex(bytes)).toBe("aa");
  });
});

describe("malformed streams", () => {
  const heartbeat = hex("08 0000 00000000 ce");

  it("a bad frame-end octet is a frame error (501)", () => {
    const err = decodeError(() => decodeAll(hex("08 0000 00000000 cf")));
    expect(err.code).toBe("FRAME_END");
    expect(err.replyCode).toBe(501);
  });

  it("a frame over frame_max is refused as soon as its header arrives, before its payload is buffered", () => {
    const d = new FrameDecoder({ frameMax: 4096 });
    d.push(hex("01 0001 ffffffff"));
    const err = decodeError(() => d.next());
    expect(err.code).toBe("FRAME_TOO_LARGE");
    expect(err.replyCode).toBe(501);
    expect(err.message).toMatch(/frame_max 4096/);
    expect(() => d.next()).toThrow(err); // it stays failed
  });

  it("a payload shorter than its fields is truncated", () => {
    // connection.tune with its heartbeat short missing: size 10 instead of 12
    const err = decodeError(() => decodeAll(hex("01 0000 0000000a 000a001e 07ff 00020000 ce")));
    expect(err.code).toBe("TRUNCATED");
    expect(err.replyCode).toBe(501);
  });

  it("a payload longer than its fields has trailing bytes", () => {
    expect(decodeError(() => decodeAll(hex("01 0000 00000005 000a0033 00 ce"))).code).toBe("TRAILING_BYTES");
  });

  it("a short string whose length runs past the payload is truncated", () => {
    // channel.close-ok is fine; basic.cancel-ok (60/31) with consumer tag length 200 but 1 byte present
    expect(decodeError(() => decodeAll(hex("01 0001 00000006 003c001f c8 61 ce"))).code).toBe("TRUNCATED");
  });

  it("an unknown class or method is not implemented (540)", () => {
    const err = decodeError(() => decodeAll(hex("01 0000 00000004 0063 0001 ce")));
    expect(err.code).toBe("UNKNOWN_METHOD");
    expect(err.replyCode).toBe(540);
    expect(err.message).toMatch(/class 99 method 1/);
  });

  it("an unknown frame type is a frame error", () => {
    expect(decodeError(() => decodeAll(hex("05 0000 00000000 ce"))).code).toBe("FRAME_TYPE");
    // an HTTP server answering "HTTP/1.1 400"
    expect(decodeError(() => decodeAll(new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n"))).code).toBe("FRAME_TYPE");
  });

  it("bad UTF-8 in a short string is a syntax error (502)", () => {
    // basic.cancel-ok with consumer tag bytes c3 28
    const err = decodeError(() => decodeAll(hex("01 0001 00000007 003c001f 02 c328 ce")));
    expect(err.code).toBe("BAD_UTF8");
    expect(err.replyCode).toBe(502);
  });

  it("a heartbeat on a channel other than 0, or with a payload, is a frame error", () => {
    expect(decodeError(() => decodeAll(hex("08 0001 00000000 ce"))).code).toBe("FRAME_INVALID");
    expect(decodeError(() => decodeAll(hex("08 0000 00000001 00 ce"))).code).toBe("FRAME_INVALID");
  });

  it("a content header for a class without content is refused", () => {
    expect(decodeError(() => decodeAll(hex("02 0001 0000000e 0014 0000 0000000000000000 0000 ce"))).code).toBe("BAD_VALUE");
  });

  it("a header declaring a 2^63-byte body decodes (the machine enforces its own limit) without allocating", () => {
    const frames = decodeAll(hex("02 0001 0000000e 003c 0000 8000000000000000 0000 ce"));
    expect(frames[0]).toMatchObject({ type: 2, bodySize: 2n ** 63n });
  });

  it("a server protocol header (version mismatch) is reported as such", () => {
    expect(decodeAll(hex("414d5150 00 00 09 01"))).toEqual([{ type: "protocol-header", major: 0, minor: 9, revision: 1 }]);
  });

  it("decodeFrame decodes exactly one frame", () => {
    expect(decodeFrame(heartbeat)).toEqual({ type: 8, channel: 0 });
    expect(decodeError(() => decodeFrame(heartbeat.subarray(0, 7))).code).toBe("TRUNCATED");
  });
});
