/**
 * Closing the connection in both directions (spec connection.close / close-ok), the close timeout, what a
 * close settles, and the other connection-level methods: blocked/unblocked and update-secret.
 */
import { describe, expect, it } from "vitest";
import { concat } from "../support/bytes.ts";
import { connected, FakeBroker, method, methodFrame, utf8 } from "../support/fake-broker.ts";

describe("client close", () => {
  it("sends connection.close (200) and reports connectionClosed only when close-ok arrives", () => {
    const broker = connected();
    broker.machine.close();
    const close = broker.expectMethod("connection.close", { channel: 0 });
    expect(close).toMatchObject({ replyCode: 200, replyText: "Goodbye", failingClassId: 0, failingMethodId: 0 });
    expect(broker.machine.isOpen).toBe(false);
    expect(broker.machine.isClosed).toBe(false);
    broker.expectNoEvent();
    broker.send(0, method("connection.close-ok"));
    expect(broker.expectEvent("connectionClosed").reason).toEqual({ initiator: "client", replyCode: 200, replyText: "Goodbye", classId: 0, methodId: 0 });
    expect(broker.machine.isClosed).toBe(true);
    expect(broker.machine.pollTimeout()).toBeUndefined();
  });

  it("carries the caller's reply code and text", () => {
    const broker = connected();
    broker.machine.close(320, "shutting down");
    expect(broker.expectMethod("connection.close")).toMatchObject({ replyCode: 320, replyText: "shutting down" });
    broker.send(0, method("connection.close-ok"));
    expect(broker.expectEvent("connectionClosed").reason).toMatchObject({ initiator: "client", replyCode: 320, replyText: "shutting down" });
  });

  it("truncates a reply text over 255 bytes — counted in UTF-8 bytes — instead of throwing", () => {
    const broker = connected();
    expect(() => broker.machine.close(200, "é".repeat(200))).not.toThrow(); // 400 bytes of UTF-8
    const close = broker.expectMethod("connection.close");
    expect(new TextEncoder().encode(close.replyText).length).toBeLessThanOrEqual(255);
    expect("é".repeat(200).startsWith(close.replyText)).toBe(true);
  });

  it("closing twice is a no-op", () => {
    const broker = connected();
    broker.machine.close();
    broker.machine.close();
    broker.expectMethod("connection.close");
    broker.expectNothingSent();
  });

  it("times out after closeTimeout without close-ok, and still reports connectionClosed", () => {
    const broker = connected({ closeTimeout: 2_000, heartbeat: 0 });
    broker.advanceTo(1_000);
    broker.machine.close();
    broker.expectMethod("connection.close");
    expect(broker.machine.pollTimeout()).toBe(3_000);
    broker.advanceTo(2_999);
    broker.expectNoEvent();
    broker.advanceTo(3_000);
    expect(broker.expectEvent("connectionClosed").reason).toMatchObject({ initiator: "client", replyCode: 200 });
    expect(broker.machine.isClosed).toBe(true);
  });

  it("the close timeout counts from the close, not from the last input (an idle connection's clock is stale)", () => {
    const broker = connected({ closeTimeout: 5_000, heartbeat: 0 });
    broker.clock.advance(100_000); // an idle connection: no input, no timer, for 100 s
    broker.machine.close();
    broker.pump(); // the adapter drains pollTransmit(now) right after the command
    broker.expectMethod("connection.close");
    expect(broker.machine.pollTimeout()).toBeGreaterThanOrEqual(105_000);
    broker.advance(0); // the adapter arms its timer and it fires at once if the deadline is in the past
    broker.expectNoEvent();
    expect(broker.machine.isClosed).toBe(false);
  });

  it("ignores channel traffic after connection.close was sent (only close/close-ok count)", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.machine.close();
    broker.expectMethod("connection.close");
    broker.deliver(ch, "ctag", 1, utf8("late"));
    broker.send(ch, method("queue.declare-ok")); // would be unexpected otherwise
    broker.send(9, method("channel.open-ok")); // would be a 504 otherwise
    broker.expectNothingSent();
    broker.expectNoEvent();
    broker.send(0, method("connection.close-ok"));
    expect(broker.takeEvents().map((e) => e.type)).toEqual(["channelClosed", "connectionClosed"]);
  });

  it("the end of the stream while waiting for close-ok finishes the close", () => {
    const broker = connected();
    broker.machine.close();
    broker.expectMethod("connection.close");
    broker.end();
    expect(broker.expectEvent("connectionClosed").reason).toMatchObject({ initiator: "client", replyCode: 200 });
  });

  it("a broker connection.close crossing ours is answered with close-ok and ends the connection", () => {
    const broker = connected();
    broker.machine.close();
    broker.expectMethod("connection.close");
    broker.closeConnection(320, "CONNECTION_FORCED - shutdown");
    broker.expectMethod("connection.close-ok");
    expect(broker.expectEvent("connectionClosed").reason).toMatchObject({ initiator: "broker", replyCode: 320 });
  });

  it("commands throw CONNECTION_CLOSED while closing and after", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.machine.close();
    expect(() => broker.machine.openChannel()).toThrow(expect.objectContaining({ code: "CONNECTION_CLOSED" }));
    expect(() => broker.machine.call(ch, method("basic.qos", { prefetchCount: 1 }))).toThrow(expect.objectContaining({ code: "CONNECTION_CLOSED" }));
    expect(() => broker.machine.publish(ch, "", "q", utf8("x"))).toThrow(expect.objectContaining({ code: "CONNECTION_CLOSED" }));
    broker.finishClose();
    expect(() => broker.machine.send(ch, method("basic.ack", { deliveryTag: 1 }))).toThrow(expect.objectContaining({ code: "CONNECTION_CLOSED" }));
    expect(() => broker.machine.updateSecret(utf8("t"), "r")).toThrow(expect.objectContaining({ code: "CONNECTION_CLOSED" }));
  });
});

describe("broker close", () => {
  it("is answered with close-ok and reported with reply code, text, class and method", () => {
    const broker = connected();
    broker.closeConnection(541, "INTERNAL_ERROR - oops", 60, 40);
    broker.expectMethod("connection.close-ok", { channel: 0 });
    expect(broker.expectEvent("connectionClosed").reason).toEqual({
      initiator: "broker",
      replyCode: 541,
      replyText: "INTERNAL_ERROR - oops",
      classId: 60,
      methodId: 40,
    });
    expect(broker.machine.isClosed).toBe(true);
    expect(broker.machine.pollTimeout()).toBeUndefined();
  });

  it("fails every pending request and publish, closes every channel, and reports connectionClosed last", () => {
    const broker = connected();
    const a = broker.openChannel();
    const b = broker.openChannel();
    broker.confirmSelect(a);
    const seq = broker.machine.publish(a, "", "q", utf8("m"));
    const inFlight = broker.machine.call(b, method("queue.declare", { queue: "q" }));
    const queued = broker.machine.call(b, method("queue.bind", { queue: "q", exchange: "x" }));
    const opening = broker.machine.openChannel();
    const secret = broker.machine.updateSecret(utf8("token"), "refresh");
    broker.takeFrames();
    broker.closeConnection(320, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'");
    const events = broker.takeEvents();
    expect(events.at(-1)).toMatchObject({ type: "connectionClosed", reason: { initiator: "broker", replyCode: 320 } });
    expect(events.filter((e) => e.type === "connectionClosed")).toHaveLength(1);
    const failed = events.flatMap((e) => (e.type === "requestFailed" ? [e.requestId] : []));
    expect(failed.sort((x, y) => x - y)).toEqual([inFlight, queued, opening.requestId, secret].sort((x, y) => x - y));
    expect(events).toContainEqual(expect.objectContaining({ type: "publishFailed", channel: a, seq, reason: expect.objectContaining({ replyCode: 320 }) }));
    const closedChannels = events.flatMap((e) => (e.type === "channelClosed" ? [e.channel] : []));
    expect(closedChannels.sort()).toEqual([a, b, opening.channel].sort());
    for (const e of events) if (e.type === "requestFailed" || e.type === "channelClosed") expect(e.reason.initiator).toBe("broker");
  });

  it("after it, input, timeouts and the end of the stream are ignored", () => {
    const broker = connected();
    broker.closeConnection(320, "bye");
    broker.takeFrames();
    broker.takeEvents();
    broker.closeConnection(320, "again");
    broker.sendBytes(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9));
    broker.advance(1_000_000);
    broker.end();
    broker.expectNothingSent();
    broker.expectNoEvent();
  });
});

describe("connection.blocked / unblocked", () => {
  it("are reported as events, with the reason", () => {
    const broker = connected();
    broker.send(0, method("connection.blocked", { reason: "low on memory" }));
    expect(broker.expectEvent("blocked")).toEqual({ type: "blocked", reason: "low on memory" });
    broker.send(0, method("connection.unblocked"));
    expect(broker.expectEvent("unblocked")).toEqual({ type: "unblocked" });
    broker.expectNothingSent();
  });
});

describe("connection.update-secret", () => {
  it("sends update-secret on channel 0 and settles the request with update-secret-ok", () => {
    const broker = connected();
    const id = broker.machine.updateSecret(utf8("new-token"), "token refresh");
    const m = broker.expectMethod("connection.update-secret", { channel: 0 });
    expect(new TextDecoder().decode(m.newSecret)).toBe("new-token");
    expect(m.reason).toBe("token refresh");
    broker.expectNoEvent();
    broker.send(0, method("connection.update-secret-ok"));
    expect(broker.expectEvent("reply")).toMatchObject({ channel: 0, requestId: id, method: { name: "connection.update-secret-ok" } });
  });

  it("settles several requests in order", () => {
    const broker = connected();
    const first = broker.machine.updateSecret(utf8("a"), "1");
    const second = broker.machine.updateSecret(utf8("b"), "2");
    broker.send(0, method("connection.update-secret-ok"));
    broker.send(0, method("connection.update-secret-ok"));
    expect(broker.takeEvents().map((e) => (e.type === "reply" ? e.requestId : -1))).toEqual([first, second]);
  });

  it("an update-secret-ok nobody asked for is a 505", () => {
    const broker = connected();
    broker.send(0, method("connection.update-secret-ok"));
    expect(broker.expectMethod("connection.close").replyCode).toBe(505);
  });

  it("is refused before the handshake is done", () => {
    const broker = new FakeBroker();
    expect(() => broker.machine.updateSecret(utf8("t"), "r")).toThrow(expect.objectContaining({ code: "NOT_OPEN" }));
  });
});

describe("close events carry their scope", () => {
  it("channel.close 404 then connection.close 320 in ONE read: the channel's request says channel/404, the others connection/320", () => {
    const broker = connected();
    const one = broker.openChannel();
    const two = broker.openChannel();
    broker.confirmSelect(two);
    const declare = broker.machine.call(one, method("queue.declare", { queue: "missing", passive: true }));
    const other = broker.machine.call(two, method("queue.declare", { queue: "q" }));
    const seq = broker.machine.publish(two, "", "q", utf8("x")); // queued behind the declare on two
    broker.takeFrames();
    broker.sendBytes(
      concat([
        methodFrame(one, method("channel.close", { replyCode: 404, replyText: "NOT_FOUND - no queue 'missing'", failingClassId: 50, failingMethodId: 10 })),
        methodFrame(0, method("connection.close", { replyCode: 320, replyText: "CONNECTION_FORCED - shutdown" })),
      ]),
    );
    const events = broker.takeEvents();
    const failed = (id: number) => events.find((e) => e.type === "requestFailed" && e.requestId === id);
    expect(failed(declare)).toMatchObject({ channel: one, scope: "channel", reason: { initiator: "broker", replyCode: 404 } });
    expect(failed(other)).toMatchObject({ channel: two, scope: "connection", reason: { initiator: "broker", replyCode: 320 } });
    expect(events.find((e) => e.type === "publishFailed")).toMatchObject({ channel: two, seq, scope: "connection", reason: { replyCode: 320 } });
    const closed = events.filter((e) => e.type === "channelClosed");
    expect(closed).toEqual([
      expect.objectContaining({ channel: one, scope: "channel", reason: expect.objectContaining({ replyCode: 404 }) }),
      expect.objectContaining({ channel: two, scope: "connection", reason: expect.objectContaining({ replyCode: 320 }) }),
    ]);
    expect(events.at(-1)).toMatchObject({ type: "connectionClosed", reason: { replyCode: 320 } });
  });

  it("a client closeChannel fails the queued requests with scope channel; a transport end fails the rest with scope connection", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const inFlight = broker.machine.call(ch, method("queue.declare", { queue: "a" }));
    const queued = broker.machine.call(ch, method("queue.declare", { queue: "b" }));
    broker.machine.closeChannel(ch);
    expect(broker.takeEvents()).toEqual([expect.objectContaining({ type: "requestFailed", requestId: queued, scope: "channel" })]);
    const secret = broker.machine.updateSecret(utf8("token"), "refresh");
    broker.end();
    const events = broker.takeEvents();
    expect(events.filter((e) => e.type === "requestFailed").map((e) => e.type === "requestFailed" && [e.requestId, e.scope])).toEqual([
      [inFlight, "connection"],
      [expect.any(Number), "connection"], // the channel.close request
      [secret, "connection"],
    ]);
  });
});
