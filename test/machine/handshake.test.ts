/**
 * The opening handshake (spec 2.2.4, connection class): protocol header, start/start-ok with SASL, secure,
 * tune negotiation, open/open-ok — and every way it can fail.
 */
import { describe, expect, it } from "vitest";
import { PROTOCOL_HEADER } from "../../src/codec/amqp/frames.ts";
import { ConnectionMachine, CommandError, WARREN_VERSION } from "../../src/machine/index.ts";
import { decodeAmqplain, FakeBroker, method, rabbitServerProperties, utf8 } from "../support/fake-broker.ts";

function start(mechanisms: string) {
  return method("connection.start", {
    versionMajor: 0,
    versionMinor: 9,
    serverProperties: rabbitServerProperties(),
    mechanisms: utf8(mechanisms),
    locales: utf8("en_US"),
  });
}

/** Plays start and returns the client's start-ok. */
function startOk(broker: FakeBroker, mechanisms = "PLAIN AMQPLAIN") {
  broker.send(0, start(mechanisms));
  return broker.expectMethod("connection.start-ok", { channel: 0 });
}

/** Plays start and tune with the broker's values; returns the client's tune-ok. */
function tuneOk(broker: FakeBroker, tune: { channelMax: number; frameMax: number; heartbeat: number }) {
  startOk(broker);
  broker.send(0, method("connection.tune", tune));
  return broker.expectMethod("connection.tune-ok", { channel: 0 });
}

describe("protocol header", () => {
  it("is the first thing the machine transmits, before any input", () => {
    const m = new ConnectionMachine({}, 0);
    expect(Array.from(m.pollTransmit(0)!)).toEqual(Array.from(PROTOCOL_HEADER));
    expect(m.pollTransmit(0)).toBeUndefined();
  });

  it("is followed by nothing until the broker speaks", () => {
    const broker = new FakeBroker();
    broker.pump();
    expect(broker.headerReceived).toBe(true);
    broker.expectNothingSent();
    broker.expectNoEvent();
  });
});

describe("connection.start → start-ok", () => {
  it("announces warren and every capability it implements", () => {
    const broker = new FakeBroker({ clientProperties: { connection_name: "orders" } });
    const ok = startOk(broker);
    expect(ok.clientProperties).toMatchObject({ product: "warren", version: WARREN_VERSION, connection_name: "orders" });
    expect({ ...(ok.clientProperties["capabilities"] as object) }).toEqual({
      publisher_confirms: true,
      exchange_exchange_bindings: true,
      "basic.nack": true,
      consumer_cancel_notify: true,
      "connection.blocked": true,
      authentication_failure_close: true,
      per_consumer_qos: true,
      direct_reply_to: true,
    });
    expect(ok.locale).toBe("en_US");
  });

  it("answers PLAIN with \\0user\\0pass", () => {
    const broker = new FakeBroker({ username: "user", password: "pass" });
    const ok = startOk(broker, "PLAIN AMQPLAIN");
    expect(ok.mechanism).toBe("PLAIN");
    expect(new TextDecoder().decode(ok.response)).toBe("\u0000user\u0000pass");
  });

  it("prefers PLAIN whatever order the broker lists mechanisms in", () => {
    const broker = new FakeBroker();
    expect(startOk(broker, "AMQPLAIN PLAIN").mechanism).toBe("PLAIN");
  });

  it("chooses AMQPLAIN when it is the only one offered: LOGIN and PASSWORD table entries without a length prefix", () => {
    const broker = new FakeBroker({ username: "user", password: "pass" });
    const ok = startOk(broker, "AMQPLAIN");
    expect(ok.mechanism).toBe("AMQPLAIN");
    expect(ok.response[0]).toBe("LOGIN".length); // the first entry's key, not a 4-byte table length
    expect({ ...decodeAmqplain(ok.response) }).toEqual({ LOGIN: "user", PASSWORD: "pass" });
  });

  it("uses EXTERNAL, with an empty response, when asked to", () => {
    const broker = new FakeBroker({ mechanism: "EXTERNAL" });
    const ok = startOk(broker, "PLAIN AMQPLAIN EXTERNAL");
    expect(ok.mechanism).toBe("EXTERNAL");
    expect(ok.response.length).toBe(0);
  });

  it("never picks EXTERNAL unasked: closes with a text naming what was offered", () => {
    const broker = new FakeBroker();
    broker.send(0, start("EXTERNAL"));
    broker.expectNothingSent();
    const closed = broker.expectEvent("connectionClosed");
    expect(closed.reason.initiator).toBe("protocol");
    expect(closed.reason.replyText).toMatch(/PLAIN or AMQPLAIN/);
    expect(closed.reason.replyText).toMatch(/offers EXTERNAL/);
    expect(broker.machine.isClosed).toBe(true);
  });

  it("closes when the mechanism asked for is not offered, naming both", () => {
    const broker = new FakeBroker({ mechanism: "EXTERNAL" });
    broker.send(0, start("PLAIN AMQPLAIN"));
    broker.expectNothingSent();
    const closed = broker.expectEvent("connectionClosed");
    expect(closed.reason.replyText).toMatch(/EXTERNAL/);
    expect(closed.reason.replyText).toMatch(/PLAIN, AMQPLAIN/);
  });

  it("closes when the broker speaks another version in connection.start", () => {
    const broker = new FakeBroker();
    broker.send(0, method("connection.start", { versionMajor: 1, versionMinor: 0, mechanisms: utf8("PLAIN") }));
    broker.expectNothingSent();
    expect(broker.expectEvent("connectionClosed").reason.replyText).toMatch(/1-0/);
  });
});

describe("connection.secure", () => {
  it("is answered with secure-ok carrying the mechanism's response", () => {
    const broker = new FakeBroker({ username: "u", password: "p" });
    startOk(broker);
    broker.send(0, method("connection.secure", { challenge: utf8("more?") }));
    const ok = broker.expectMethod("connection.secure-ok", { channel: 0 });
    expect(new TextDecoder().decode(ok.response)).toBe("\u0000u\u0000p");
  });

  it("fits into the whole handshake", () => {
    const broker = new FakeBroker();
    expect(broker.handshake({ secure: utf8("x") }).frameMax).toBe(131072);
  });
});

describe("connection.tune negotiation", () => {
  it("asks frame_max 131072 by default", () => {
    expect(tuneOk(new FakeBroker(), { channelMax: 2047, frameMax: 131072, heartbeat: 60 }).frameMax).toBe(131072);
  });

  it("takes the broker's frame_max when it is smaller", () => {
    expect(tuneOk(new FakeBroker(), { channelMax: 0, frameMax: 8192, heartbeat: 0 }).frameMax).toBe(8192);
  });

  it("keeps its own frame_max when the broker says 0 (no limit)", () => {
    expect(tuneOk(new FakeBroker(), { channelMax: 0, frameMax: 0, heartbeat: 0 }).frameMax).toBe(131072);
  });

  it("a frameMax option below 8192 (0 included) is refused with CommandError INVALID_ARGUMENT, not silently raised", () => {
    for (const frameMax of [0, 4096, 8191]) {
      expect(() => new FakeBroker({ frameMax })).toThrow(expect.objectContaining({ name: "CommandError", code: "INVALID_ARGUMENT", message: expect.stringMatching(/frameMax must be from 8192 to 4294967295/) }));
    }
    expect(tuneOk(new FakeBroker({ frameMax: 8192 }), { channelMax: 0, frameMax: 131072, heartbeat: 0 }).frameMax).toBe(8192);
  });

  it("accepts a broker frame_max between the spec minimum 4096 and 8192", () => {
    expect(tuneOk(new FakeBroker(), { channelMax: 0, frameMax: 4096, heartbeat: 0 }).frameMax).toBe(4096);
  });

  it("refuses a broker frame_max below 4096 at once: connection.close 503, then connectionClosed as a handshake failure (replyCode 0)", () => {
    const broker = new FakeBroker();
    startOk(broker);
    broker.send(0, method("connection.tune", { channelMax: 0, frameMax: 4095, heartbeat: 0 }));
    const close = broker.expectMethod("connection.close", { channel: 0 });
    expect(close.replyCode).toBe(503);
    expect(close.replyText).toMatch(/frame_max 4095/);
    expect([close.failingClassId, close.failingMethodId]).toEqual([10, 30]);
    broker.expectNothingSent(); // no tune-ok, no open
    // no waiting for close-ok (and no 530 that reads like a vhost permission problem)
    const closed = broker.expectEvent("connectionClosed");
    expect(closed.reason).toEqual({ initiator: "protocol", replyCode: 0, replyText: "broker offered frame_max 4095, below the protocol minimum 4096", classId: 10, methodId: 30 });
    expect(broker.machine.isClosed).toBe(true);
    expect(broker.machine.pollTimeout()).toBeUndefined();
  });

  it("channel_max: 0 means 65535, and the smaller side wins", () => {
    expect(tuneOk(new FakeBroker(), { channelMax: 0, frameMax: 0, heartbeat: 0 }).channelMax).toBe(2047);
    expect(tuneOk(new FakeBroker(), { channelMax: 100, frameMax: 0, heartbeat: 0 }).channelMax).toBe(100);
    expect(tuneOk(new FakeBroker({ channelMax: 0 }), { channelMax: 0, frameMax: 0, heartbeat: 0 }).channelMax).toBe(65535);
    expect(tuneOk(new FakeBroker({ channelMax: 0 }), { channelMax: 10, frameMax: 0, heartbeat: 0 }).channelMax).toBe(10);
    expect(tuneOk(new FakeBroker({ channelMax: 5 }), { channelMax: 0, frameMax: 0, heartbeat: 0 }).channelMax).toBe(5);
  });

  it("heartbeat: the smaller of two non-zero values", () => {
    expect(tuneOk(new FakeBroker(), { channelMax: 0, frameMax: 0, heartbeat: 30 }).heartbeat).toBe(30);
    expect(tuneOk(new FakeBroker({ heartbeat: 10 }), { channelMax: 0, frameMax: 0, heartbeat: 60 }).heartbeat).toBe(10);
  });

  it("heartbeat: when the broker says 0, the client's value", () => {
    expect(tuneOk(new FakeBroker({ heartbeat: 15 }), { channelMax: 0, frameMax: 0, heartbeat: 0 }).heartbeat).toBe(15);
  });

  it("heartbeat: a client value of 0 turns heartbeats off whatever the broker says", () => {
    const broker = new FakeBroker({ heartbeat: 0 });
    expect(tuneOk(broker, { channelMax: 0, frameMax: 0, heartbeat: 60 }).heartbeat).toBe(0);
    broker.expectMethod("connection.open");
    broker.send(0, method("connection.open-ok"));
    expect(broker.expectEvent("handshakeDone").heartbeat).toBe(0);
    expect(broker.machine.pollTimeout()).toBeUndefined();
  });

  it("tune-ok is followed by connection.open for the configured virtual host", () => {
    const broker = new FakeBroker({ vhost: "orders/eu" });
    tuneOk(broker, { channelMax: 0, frameMax: 0, heartbeat: 0 });
    expect(broker.expectMethod("connection.open", { channel: 0 }).virtualHost).toBe("orders/eu");
  });

  it("opens the default virtual host / unless told", () => {
    const broker = new FakeBroker();
    tuneOk(broker, { channelMax: 0, frameMax: 0, heartbeat: 0 });
    expect(broker.expectMethod("connection.open", { channel: 0 }).virtualHost).toBe("/");
  });
});

describe("connection.open-ok", () => {
  it("emits handshakeDone with the negotiated values and the server properties", () => {
    const broker = new FakeBroker({ heartbeat: 20, channelMax: 100 });
    const done = broker.handshake({ channelMax: 2047, frameMax: 65536, heartbeat: 60 });
    expect(done).toMatchObject({ type: "handshakeDone", channelMax: 100, frameMax: 65536, heartbeat: 20 });
    expect(done.serverProperties).toMatchObject({ product: "RabbitMQ" });
    expect(broker.machine.isOpen).toBe(true);
    expect(broker.machine.negotiatedFrameMax).toBe(65536);
  });

  it("is the only event of the handshake, and comes only after open-ok", () => {
    const broker = new FakeBroker();
    tuneOk(broker, { channelMax: 0, frameMax: 0, heartbeat: 0 });
    expect(broker.machine.isOpen).toBe(false);
    broker.expectNoEvent();
    expect(() => broker.machine.openChannel()).toThrow(CommandError);
    broker.send(0, method("connection.open-ok"));
    expect(broker.takeEvents().map((e) => e.type)).toEqual(["handshakeDone"]);
  });
});

describe("handshake failures", () => {
  it("a broker connection.close (403 ACCESS_REFUSED) ends it: close-ok sent, connectionClosed with code and text", () => {
    const broker = new FakeBroker();
    startOk(broker);
    broker.send(
      0,
      method("connection.close", { replyCode: 403, replyText: "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN", failingClassId: 10, failingMethodId: 11 }),
    );
    broker.expectMethod("connection.close-ok", { channel: 0 });
    const closed = broker.expectEvent("connectionClosed");
    expect(closed.reason).toEqual({
      initiator: "broker",
      replyCode: 403,
      replyText: "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN",
      classId: 10,
      methodId: 11,
    });
    expect(broker.machine.isClosed).toBe(true);
  });

  it("a broker connection.close while opening the vhost (530 NOT_ALLOWED) ends it", () => {
    const broker = new FakeBroker({ vhost: "nope" });
    tuneOk(broker, { channelMax: 0, frameMax: 0, heartbeat: 0 });
    broker.expectMethod("connection.open");
    broker.send(0, method("connection.close", { replyCode: 530, replyText: "NOT_ALLOWED - vhost nope not found", failingClassId: 10, failingMethodId: 40 }));
    broker.expectMethod("connection.close-ok");
    expect(broker.expectEvent("connectionClosed").reason).toMatchObject({ initiator: "broker", replyCode: 530 });
  });

  it("end of stream before connection.start: transport, asking whether the peer speaks AMQP", () => {
    const broker = new FakeBroker();
    broker.end();
    const closed = broker.expectEvent("connectionClosed");
    expect(closed.reason.initiator).toBe("transport");
    expect(closed.reason.replyText).toMatch(/before the AMQP handshake/);
  });

  it("end of stream after start-ok: transport, pointing at credentials", () => {
    const broker = new FakeBroker();
    startOk(broker);
    broker.end();
    const closed = broker.expectEvent("connectionClosed");
    expect(closed.reason.initiator).toBe("transport");
    expect(closed.reason.replyText).toMatch(/authentication|credentials/);
  });

  it("end of stream after connection.open: transport, naming the virtual host", () => {
    const broker = new FakeBroker();
    tuneOk(broker, { channelMax: 0, frameMax: 0, heartbeat: 0 });
    broker.end();
    const closed = broker.expectEvent("connectionClosed");
    expect(closed.reason.initiator).toBe("transport");
    expect(closed.reason.replyText).toMatch(/virtual host/);
  });

  it("a server answering with its own protocol header (version mismatch) ends it", () => {
    const broker = new FakeBroker();
    broker.sendBytes(Uint8Array.of(0x41, 0x4d, 0x51, 0x50, 0, 0, 8, 0));
    broker.expectNothingSent();
    const closed = broker.expectEvent("connectionClosed");
    expect(closed.reason.initiator).toBe("protocol");
    expect(closed.reason.replyText).toMatch(/0-8-0/);
    expect(broker.machine.isClosed).toBe(true);
  });

  it("a protocol header split across reads is still recognised", () => {
    const broker = new FakeBroker();
    broker.sendBytes(Uint8Array.of(0x41, 0x4d, 0x51, 0x50, 1, 1, 0, 10), 1);
    expect(broker.expectEvent("connectionClosed").reason.replyText).toMatch(/1-0-10/);
  });

  it("times out when the handshake does not finish within handshakeTimeout", () => {
    const broker = new FakeBroker({ handshakeTimeout: 10_000 });
    startOk(broker);
    expect(broker.machine.pollTimeout()).toBe(10_000);
    broker.advanceTo(9_999);
    broker.expectNoEvent();
    broker.advanceTo(10_000);
    const closed = broker.expectEvent("connectionClosed");
    expect(closed.reason.initiator).toBe("transport");
    expect(closed.reason.replyText).toMatch(/handshake did not finish within 10000 ms/);
    expect(broker.machine.pollTimeout()).toBeUndefined();
  });

  it("the handshake timeout is disarmed once the connection is open", () => {
    const broker = new FakeBroker({ handshakeTimeout: 10_000, heartbeat: 0 });
    broker.handshake();
    expect(broker.machine.pollTimeout()).toBeUndefined();
    broker.advance(60_000);
    broker.expectNoEvent();
    expect(broker.machine.isOpen).toBe(true);
  });

  it("an unexpected method during the handshake is a 505", () => {
    const broker = new FakeBroker();
    startOk(broker);
    broker.send(0, method("connection.open-ok"));
    const close = broker.expectMethod("connection.close");
    expect(close.replyCode).toBe(505);
    expect([close.failingClassId, close.failingMethodId]).toEqual([10, 41]);
  });

  it("a channel frame before the connection is open is a 505", () => {
    const broker = new FakeBroker();
    startOk(broker);
    broker.send(1, method("channel.open-ok"));
    expect(broker.expectMethod("connection.close").replyCode).toBe(505);
  });

  it("closing before the handshake is done ends at once, with nothing sent", () => {
    const broker = new FakeBroker();
    startOk(broker);
    broker.machine.close();
    broker.expectNothingSent();
    expect(broker.expectEvent("connectionClosed").reason).toMatchObject({ initiator: "client", replyCode: 200 });
  });
});

describe("options", () => {
  it("out-of-range options throw CommandError INVALID_ARGUMENT", () => {
    for (const bad of [{ heartbeat: -1 }, { channelMax: 70000 }, { frameMax: 1.5 }, { maxBodySize: -1 }, { closeTimeout: Number.NaN }]) {
      expect(() => new ConnectionMachine(bad, 0)).toThrow(expect.objectContaining({ name: "CommandError", code: "INVALID_ARGUMENT" }));
    }
  });

  it("timeouts go up to 2^31-1 ms, the longest delay setTimeout honours (2^31 would fire at once)", () => {
    for (const bad of [{ handshakeTimeout: 2 ** 31 }, { closeTimeout: 2 ** 31 }]) {
      expect(() => new ConnectionMachine(bad, 0)).toThrow(expect.objectContaining({ name: "CommandError", code: "INVALID_ARGUMENT", message: expect.stringMatching(/2147483647/) }));
    }
    expect(() => new ConnectionMachine({ handshakeTimeout: 2 ** 31 - 1, closeTimeout: 2 ** 31 - 1 }, 0)).not.toThrow();
  });
});

describe("the password does not linger (issue 8, defect 16)", () => {
  const PASSWORD = "s3cret-Pa55word-xyzzy";

  /** Whether `needle` occurs anywhere in `hay`. */
  function contains(hay: Uint8Array, needle: Uint8Array): boolean {
    outer: for (let i = 0; i + needle.length <= hay.length; i++) {
      for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
      return true;
    }
    return false;
  }

  /** Every byte buffer the machine's output path keeps: the writer's slab and any piece not yet handed out. */
  function machineBuffers(m: unknown): Uint8Array[] {
    const transmit = (m as { transmit: { out: { bytes: Uint8Array }; pieces: { bytes: Uint8Array }[] } }).transmit;
    return [transmit.out.bytes, ...transmit.pieces.map((p) => new Uint8Array(p.bytes.buffer))];
  }

  it.each([["PLAIN"], ["AMQPLAIN"]])("%s: after the handshake the password's bytes are nowhere in the machine's output buffers", (mechanisms) => {
    const broker = new FakeBroker({ username: "user", password: PASSWORD });
    broker.handshake({ mechanisms, secure: utf8("challenge") }); // start-ok and secure-ok both carry it
    const needle = utf8(PASSWORD);
    // it did go out, to the caller, in buffers the caller owns
    expect(broker.transmits.some((t) => contains(t, needle))).toBe(true);
    for (const b of machineBuffers(broker.machine)) expect(contains(b, needle)).toBe(false);
  });

  it("the bytes handed out before and after the secret frame are intact (nothing the caller owns is zeroed)", () => {
    const broker = new FakeBroker({ username: "user", password: PASSWORD });
    const done = broker.handshake();
    expect(done.type).toBe("handshakeDone");
    const ch = broker.openChannel();
    broker.machine.publish(ch, "", "q", utf8("after the handshake"));
    expect(new TextDecoder().decode(broker.expectContent().body)).toBe("after the handshake");
  });
});
