/**
 * A broker that breaks the protocol gets the connection.close the spec prescribes — 501 frame error, 503
 * command invalid, 504 channel error, 505 unexpected frame — and the application gets events. Nothing a
 * broker sends makes the machine throw.
 */
import { describe, expect, it } from "vitest";
import { bodyFrame, connected, FakeBroker, headerFrame, heartbeatFrame, method, methodFrame, utf8 } from "../support/fake-broker.ts";

/** The machine sent connection.close with `code`; close-ok then ends the connection with a protocol reason. */
function expectProtocolClose(broker: FakeBroker, code: number, classId = 0, methodId = 0) {
  const close = broker.expectMethod("connection.close", { channel: 0 });
  expect(close).toMatchObject({ replyCode: code, failingClassId: classId, failingMethodId: methodId });
  expect(broker.machine.isOpen).toBe(false);
  broker.expectNoEvent(); // the reason is reported when the close completes
  broker.send(0, method("connection.close-ok"));
  const events = broker.takeEvents();
  const closed = events.at(-1)!;
  if (closed.type !== "connectionClosed") throw new Error(`expected connectionClosed last, got ${closed.type}`);
  for (const e of events.slice(0, -1)) expect(["channelClosed", "requestFailed", "publishFailed"]).toContain(e.type);
  expect(closed.reason).toMatchObject({ initiator: "protocol", replyCode: code, classId, methodId });
  expect(closed.reason.replyText).toBe(close.replyText);
  return closed;
}

describe("bad frames → 501, and the machine stops at once", () => {
  it("a bad frame-end octet", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const id = broker.machine.call(ch, method("basic.qos"));
    broker.takeFrames();
    const frame = methodFrame(ch, method("basic.qos-ok"));
    frame[frame.length - 1] = 0x00;
    broker.sendBytes(frame);
    const close = broker.expectMethod("connection.close", { channel: 0 });
    expect(close.replyCode).toBe(501);
    expect(close.replyText).toMatch(/frame-end/);
    // no close handshake: the stream has lost its framing
    const events = broker.takeEvents();
    expect(events.map((e) => e.type)).toEqual(["requestFailed", "channelClosed", "connectionClosed"]);
    expect(events[0]).toMatchObject({ requestId: id });
    expect(events.at(-1)).toMatchObject({ reason: { initiator: "protocol", replyCode: 501 } });
    expect(broker.machine.isClosed).toBe(true);
    expect(broker.machine.pollTimeout()).toBeUndefined();
    // later input is ignored
    broker.send(0, method("connection.close-ok"));
    broker.send(ch, method("basic.qos-ok"));
    broker.expectNothingSent();
    broker.expectNoEvent();
  });

  it("frames after the bad one in the same read are not looked at", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const bad = heartbeatFrame();
    bad[7] = 0xcd;
    const after = methodFrame(ch, method("channel.flow", { active: false }));
    broker.sendBytes(new Uint8Array([...bad, ...after]));
    expect(broker.takeMethodNames()).toEqual(["connection.close@0"]);
    expect(broker.takeEvents().filter((e) => e.type === "channelFlow")).toEqual([]);
  });

  it("an unknown frame type", () => {
    const broker = connected();
    broker.sendBytes(Uint8Array.of(9, 0, 0, 0, 0, 0, 0, 0xce));
    expect(broker.expectMethod("connection.close").replyCode).toBe(501);
    expect(broker.machine.isClosed).toBe(true);
  });

  it("a frame larger than the negotiated frame_max", () => {
    const broker = connected({}, { frameMax: 8192 });
    const ch = broker.openChannel();
    broker.sendBytes(bodyFrame(ch, new Uint8Array(8192)));
    expect(broker.expectMethod("connection.close").replyCode).toBe(501);
    expect(broker.expectEvent("channelClosed").channel).toBe(ch);
    expect(broker.expectEvent("connectionClosed").reason.replyCode).toBe(501);
  });

  it("a heartbeat on a channel other than 0", () => {
    const broker = connected();
    broker.sendBytes(Uint8Array.of(8, 0, 1, 0, 0, 0, 0, 0xce));
    expect(broker.expectMethod("connection.close").replyCode).toBe(501);
  });

  it("a method frame whose arguments run past its end", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.machine.call(ch, method("queue.declare", { queue: "q" }));
    broker.takeFrames();
    const f = methodFrame(ch, method("queue.declare-ok", { queue: "q" }));
    f[11] = 200; // the queue name's length, now longer than the frame
    broker.sendBytes(f);
    expect(broker.expectMethod("connection.close").replyCode).toBeGreaterThanOrEqual(500);
    expect(broker.machine.isClosed).toBe(true);
  });

  it("bad bytes before the handshake end it without a connection.close", () => {
    const broker = new FakeBroker();
    broker.sendBytes(utf8("HTTP/1.1 400 Bad Request\r\n\r\n"));
    broker.expectNothingSent();
    expect(broker.expectEvent("connectionClosed").reason.initiator).toBe("protocol");
  });
});

describe("unexpected frames → 505", () => {
  it("a reply with nothing in flight", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.send(ch, method("queue.declare-ok", { queue: "q" }));
    const closed = expectProtocolClose(broker, 505, 50, 11);
    expect(closed.reason.replyText).toMatch(/queue\.declare-ok/);
  });

  it("a content header without a method", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.sendBytes(headerFrame(ch, 3));
    expectProtocolClose(broker, 505);
  });

  it("a body frame without a header", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.consume(ch, "q", "c");
    broker.sendBytes(methodFrame(ch, method("basic.deliver", { consumerTag: "c", deliveryTag: 1 })));
    broker.sendBytes(bodyFrame(ch, utf8("abc")));
    expectProtocolClose(broker, 505);
  });

  it("a body frame with no message at all", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.sendBytes(bodyFrame(ch, utf8("abc")));
    expectProtocolClose(broker, 505);
  });

  it("a second header for the same message", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.consume(ch, "q", "c");
    broker.sendBytes(methodFrame(ch, method("basic.deliver", { consumerTag: "c", deliveryTag: 1 })));
    broker.sendBytes(headerFrame(ch, 3));
    broker.sendBytes(headerFrame(ch, 3));
    expectProtocolClose(broker, 505);
  });

  it("a method while a message's content is still arriving", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.consume(ch, "q", "c");
    broker.sendBytes(methodFrame(ch, method("basic.deliver", { consumerTag: "c", deliveryTag: 1 })));
    broker.sendBytes(headerFrame(ch, 10));
    broker.sendBytes(bodyFrame(ch, utf8("abc")));
    broker.send(ch, method("basic.ack", { deliveryTag: 1 }));
    expectProtocolClose(broker, 505, 60, 80);
    expect(broker.events.filter((e) => e.type === "delivery")).toEqual([]);
  });

  it("a content frame on channel 0", () => {
    const broker = connected();
    broker.sendBytes(headerFrame(0, 3));
    expectProtocolClose(broker, 505);
  });

  it("a connection method out of turn (a second connection.start)", () => {
    const broker = connected();
    broker.send(0, method("connection.start", { versionMajor: 0, versionMinor: 9, mechanisms: utf8("PLAIN") }));
    expectProtocolClose(broker, 505, 10, 10);
  });

  it("a connection.close-ok nobody asked for", () => {
    const broker = connected();
    broker.send(0, method("connection.close-ok"));
    expect(broker.expectMethod("connection.close").replyCode).toBe(505);
  });

  it("fails every pending request when the close completes, not before", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const id = broker.machine.call(ch, method("basic.qos"));
    broker.takeFrames();
    broker.send(ch, method("queue.declare-ok", { queue: "q" }));
    broker.expectMethod("connection.close");
    broker.expectNoEvent();
    broker.send(0, method("connection.close-ok"));
    const events = broker.takeEvents();
    expect(events.map((e) => e.type)).toEqual(["requestFailed", "channelClosed", "connectionClosed"]);
    expect(events[0]).toMatchObject({ requestId: id, reason: { initiator: "protocol", replyCode: 505 } });
  });

  it("without a close-ok, the close timeout ends it", () => {
    const broker = connected({ closeTimeout: 1_000, heartbeat: 0 });
    broker.send(1, method("channel.open-ok"));
    broker.expectMethod("connection.close");
    broker.advance(1_000);
    expect(broker.expectEvent("connectionClosed").reason).toMatchObject({ initiator: "protocol", replyCode: 504 });
  });
});

describe("a frame on a channel that is not open → 504", () => {
  it("a channel never opened", () => {
    const broker = connected();
    broker.send(7, method("basic.ack", { deliveryTag: 1 }));
    const closed = expectProtocolClose(broker, 504);
    expect(closed.reason.replyText).toMatch(/channel 7/);
  });

  it("a channel already closed", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.closeChannel(ch, 406, "PRECONDITION_FAILED");
    broker.expectMethod("channel.close-ok");
    broker.takeEvents();
    broker.deliver(ch, "c", 1, utf8("late"));
    expectProtocolClose(broker, 504);
  });

  it("a content header on a channel never opened", () => {
    const broker = connected();
    broker.sendBytes(headerFrame(3, 1));
    expectProtocolClose(broker, 504);
  });
});

describe("a method not valid on channel 0 → 503", () => {
  it.each([
    ["basic.deliver", method("basic.deliver", { consumerTag: "c", deliveryTag: 1 }), 60, 60],
    ["channel.open-ok", method("channel.open-ok"), 20, 11],
    ["queue.declare-ok", method("queue.declare-ok"), 50, 11],
    ["basic.ack", method("basic.ack", { deliveryTag: 1 }), 60, 80],
  ] as const)("%s", (_, m, classId, methodId) => {
    const broker = connected();
    broker.send(0, m);
    expectProtocolClose(broker, 503, classId, methodId);
  });
});

describe("after a violation", () => {
  it("commands throw CONNECTION_CLOSED, and a crossing broker close is answered", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.send(9, method("channel.open-ok"));
    broker.expectMethod("connection.close");
    expect(() => broker.machine.call(ch, method("basic.qos"))).toThrow(expect.objectContaining({ code: "CONNECTION_CLOSED" }));
    broker.closeConnection(505, "UNEXPECTED_FRAME");
    broker.expectMethod("connection.close-ok");
    expect(broker.takeEvents().at(-1)?.type).toBe("connectionClosed");
  });

  it("channel frames that follow in the same read are ignored", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const bytes = new Uint8Array([
      ...methodFrame(ch, method("queue.declare-ok", { queue: "q" })), // unexpected
      ...methodFrame(ch, method("channel.flow", { active: false })), // would be answered otherwise
      ...methodFrame(0, method("connection.blocked", { reason: "x" })), // would be reported otherwise
    ]);
    broker.sendBytes(bytes);
    expect(broker.takeMethodNames()).toEqual(["connection.close@0"]);
    broker.expectNoEvent();
  });
});
