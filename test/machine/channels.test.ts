/**
 * Channels: id allocation, the one-request-in-flight rule with its ordered queue (spec 2.2.2), matching
 * replies to requests, and closing from either side (spec channel.close / close-ok, channel.flow).
 */
import { describe, expect, it } from "vitest";
import { connected, method, utf8 } from "../support/fake-broker.ts";

describe("channel ids", () => {
  it("are allocated from 1 upward; channel.open goes out on the new channel", () => {
    const broker = connected();
    const first = broker.machine.openChannel();
    const second = broker.machine.openChannel();
    expect([first.channel, second.channel]).toEqual([1, 2]);
    expect(first.requestId).not.toBe(second.requestId);
    broker.expectMethod("channel.open", { channel: 1 });
    broker.expectMethod("channel.open", { channel: 2 });
    expect(broker.machine.isChannelOpen(1)).toBe(false); // not before open-ok
  });

  it("can be asked for by number (a recovering client keeps its channel numbers); a number in use or out of range is refused", () => {
    const broker = connected({}, { channelMax: 10 });
    expect(broker.machine.openChannel(7).channel).toBe(7);
    broker.expectMethod("channel.open", { channel: 7 });
    expect(() => broker.machine.openChannel(7)).toThrow(expect.objectContaining({ name: "CommandError", code: "INVALID_ARGUMENT" }));
    expect(() => broker.machine.openChannel(11)).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    expect(() => broker.machine.openChannel(0)).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    broker.expectNothingSent();
    expect(broker.machine.openChannel().channel).toBe(8); // allocation carries on after the asked-for number
  });

  it("channel.open-ok settles the open request and opens the channel", () => {
    const broker = connected();
    const { channel, requestId } = broker.machine.openChannel();
    broker.reply(channel, method("channel.open-ok"));
    expect(broker.expectEvent("reply")).toMatchObject({ channel, requestId, method: { name: "channel.open-ok" }, message: undefined });
    expect(broker.machine.isChannelOpen(channel)).toBe(true);
  });

  it("go up to the negotiated channel_max, then openChannel throws CHANNEL_LIMIT and changes nothing", () => {
    const broker = connected({}, { channelMax: 3 });
    expect([broker.openChannel(), broker.openChannel(), broker.openChannel()]).toEqual([1, 2, 3]);
    expect(() => broker.machine.openChannel()).toThrow(expect.objectContaining({ name: "CommandError", code: "CHANNEL_LIMIT" }));
    broker.expectNothingSent();
    broker.expectNoEvent();
  });

  it("are freed when the channel closes and reused", () => {
    const broker = connected({}, { channelMax: 3 });
    broker.openChannel();
    broker.openChannel();
    broker.openChannel();
    broker.closeChannel(2, 406, "PRECONDITION_FAILED");
    broker.expectMethod("channel.close-ok", { channel: 2 });
    expect(broker.machine.openChannel().channel).toBe(2);
    broker.expectMethod("channel.open", { channel: 2 });
  });

  it("a channel closed by the client is reusable after close-ok, not before", () => {
    const broker = connected({}, { channelMax: 1 });
    broker.openChannel();
    broker.machine.closeChannel(1);
    broker.expectMethod("channel.close", { channel: 1 });
    expect(() => broker.machine.openChannel()).toThrow(expect.objectContaining({ code: "CHANNEL_LIMIT" }));
    broker.reply(1, method("channel.close-ok"));
    expect(broker.machine.openChannel().channel).toBe(1);
  });

  it("a channel_max of 65535 (broker and client 0) allows channel 65535", () => {
    const broker = connected({ channelMax: 0 }, { channelMax: 0 });
    for (let i = 1; i < 65535; i++) broker.machine.openChannel();
    expect(broker.machine.openChannel().channel).toBe(65535);
    expect(() => broker.machine.openChannel()).toThrow(expect.objectContaining({ code: "CHANNEL_LIMIT" }));
  });
});

describe("synchronous requests", () => {
  it("a reply settles its request: the reply event carries the request id and the method", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const id = broker.machine.call(ch, method("queue.declare", { queue: "", exclusive: true }));
    expect(broker.expectMethod("queue.declare", { channel: ch })).toMatchObject({ queue: "", exclusive: true, noWait: false });
    broker.reply(ch, { name: "queue.declare-ok", classId: 50, methodId: 11, queue: "amq.gen-1", messageCount: 3, consumerCount: 1 });
    expect(broker.expectEvent("reply")).toEqual({
      type: "reply",
      channel: ch,
      requestId: id,
      method: { name: "queue.declare-ok", classId: 50, methodId: 11, queue: "amq.gen-1", messageCount: 3, consumerCount: 1 },
      message: undefined,
    });
  });

  it("one request in flight per channel; the rest wait in order, sends and publishes keeping their place", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const m = broker.machine;
    const a = m.call(ch, method("exchange.declare", { exchange: "x", type: "topic" }));
    const b = m.call(ch, method("queue.declare", { queue: "q" }));
    m.send(ch, method("basic.ack", { deliveryTag: 7 }));
    m.publish(ch, "x", "k", utf8("one"));
    m.send(ch, method("queue.bind", { queue: "q", exchange: "x", routingKey: "k", noWait: true }));
    const c = m.call(ch, method("basic.qos", { prefetchCount: 10 }));
    m.publish(ch, "x", "k", utf8("two"));
    expect(new Set([a, b, c]).size).toBe(3);

    expect(broker.takeMethodNames()).toEqual([`exchange.declare@${ch}`]);
    broker.reply(ch, method("exchange.declare-ok"));
    expect(broker.expectEvent("reply").requestId).toBe(a);
    expect(broker.takeMethodNames()).toEqual([`queue.declare@${ch}`]);
    broker.reply(ch, method("queue.declare-ok", { queue: "q" }));
    expect(broker.expectEvent("reply").requestId).toBe(b);
    broker.expectMethod("basic.ack", { channel: ch });
    expect(new TextDecoder().decode(broker.expectContent("basic.publish", { channel: ch }).body)).toBe("one");
    broker.expectMethod("queue.bind", { channel: ch });
    broker.expectMethod("basic.qos", { channel: ch });
    broker.expectNothingSent(); // "two" waits behind basic.qos
    broker.reply(ch, method("basic.qos-ok"));
    expect(broker.expectEvent("reply").requestId).toBe(c);
    expect(new TextDecoder().decode(broker.expectContent("basic.publish", { channel: ch }).body)).toBe("two");
    broker.expectNothingSent();
    broker.expectNoEvent();
  });

  it("requests made before channel.open-ok wait for it", () => {
    const broker = connected();
    const { channel } = broker.machine.openChannel();
    const id = broker.machine.call(channel, method("basic.qos", { prefetchCount: 1 }));
    broker.machine.publish(channel, "", "q", utf8("early"));
    expect(broker.takeMethodNames()).toEqual([`channel.open@${channel}`]);
    broker.reply(channel, method("channel.open-ok"));
    broker.expectMethod("basic.qos", { channel });
    broker.expectNothingSent();
    broker.reply(channel, method("basic.qos-ok"));
    expect(broker.takeEvents().map((e) => (e.type === "reply" ? e.requestId : 0))).toEqual([expect.any(Number), id]);
    broker.expectContent("basic.publish", { channel });
  });

  it("requests on different channels are independent", () => {
    const broker = connected();
    const one = broker.openChannel();
    const two = broker.openChannel();
    const a = broker.machine.call(one, method("queue.declare", { queue: "a" }));
    const b = broker.machine.call(two, method("queue.declare", { queue: "b" }));
    broker.expectMethod("queue.declare", { channel: one });
    broker.expectMethod("queue.declare", { channel: two });
    broker.reply(two, method("queue.declare-ok", { queue: "b" }));
    broker.reply(one, method("queue.declare-ok", { queue: "a" }));
    expect(broker.takeEvents().map((e) => (e.type === "reply" ? [e.channel, e.requestId] : []))).toEqual([
      [two, b],
      [one, a],
    ]);
  });

  it("basic.get settles with get-empty", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const id = broker.machine.call(ch, method("basic.get", { queue: "q" }));
    broker.expectMethod("basic.get", { channel: ch });
    broker.reply(ch, method("basic.get-empty"));
    expect(broker.expectEvent("reply")).toMatchObject({ requestId: id, method: { name: "basic.get-empty" }, message: undefined });
  });
});

describe("channel.close from the broker", () => {
  it("fails the request in flight and every queued one, answers close-ok and reports channelClosed with the reason", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const inFlight = broker.machine.call(ch, method("queue.declare", { queue: "q", passive: true }));
    const queued1 = broker.machine.call(ch, method("queue.bind", { queue: "q", exchange: "x" }));
    broker.machine.publish(ch, "", "q", utf8("never sent"));
    const queued2 = broker.machine.call(ch, method("basic.qos", { prefetchCount: 1 }));
    broker.takeFrames();
    broker.closeChannel(ch, 404, "NOT_FOUND - no queue 'q' in vhost '/'", 50, 10);
    expect(broker.takeMethodNames()).toEqual([`channel.close-ok@${ch}`]);
    const why = { initiator: "broker", replyCode: 404, replyText: "NOT_FOUND - no queue 'q' in vhost '/'", classId: 50, methodId: 10 };
    const events = broker.takeEvents();
    expect(events.filter((e) => e.type === "requestFailed").map((e) => (e.type === "requestFailed" ? e.requestId : 0)).sort()).toEqual(
      [inFlight, queued1, queued2].sort(),
    );
    for (const e of events) if (e.type === "requestFailed") expect(e.reason).toEqual(why);
    expect(events.at(-1)).toEqual({ type: "channelClosed", channel: ch, reason: why, scope: "channel" });
    expect(broker.machine.isChannelOpen(ch)).toBe(false);
  });

  it("leaves the other channels working", () => {
    const broker = connected();
    const bad = broker.openChannel();
    const good = broker.openChannel();
    const pending = broker.machine.call(good, method("queue.declare", { queue: "g" }));
    broker.machine.call(bad, method("queue.declare", { queue: "b" }));
    broker.takeFrames();
    broker.closeChannel(bad, 406, "PRECONDITION_FAILED");
    expect(broker.takeMethodNames()).toEqual([`channel.close-ok@${bad}`]);
    expect(broker.takeEvents().every((e) => "channel" in e && e.channel === bad)).toBe(true);
    broker.reply(good, method("queue.declare-ok", { queue: "g" }));
    expect(broker.expectEvent("reply").requestId).toBe(pending);
    const next = broker.machine.call(good, method("basic.qos", { prefetchCount: 5 }));
    broker.expectMethod("basic.qos", { channel: good });
    broker.reply(good, method("basic.qos-ok"));
    expect(broker.expectEvent("reply").requestId).toBe(next);
    expect(broker.machine.isOpen).toBe(true);
  });

  it("in answer to channel.open, fails the open request and everything queued behind it", () => {
    const broker = connected();
    const { channel, requestId } = broker.machine.openChannel();
    const queued = broker.machine.call(channel, method("basic.qos", { prefetchCount: 1 }));
    broker.expectMethod("channel.open", { channel });
    broker.closeChannel(channel, 504, "CHANNEL_ERROR - second 'channel.open' seen", 20, 10);
    broker.expectMethod("channel.close-ok", { channel });
    const failed = broker.takeEvents().flatMap((e) => (e.type === "requestFailed" ? [e.requestId] : []));
    expect(failed.sort()).toEqual([requestId, queued].sort());
    broker.expectNothingSent(); // basic.qos never went out
  });

  it("makes later commands on that channel throw CHANNEL_CLOSED", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.closeChannel(ch, 406, "PRECONDITION_FAILED");
    broker.takeFrames();
    expect(() => broker.machine.call(ch, method("basic.qos"))).toThrow(expect.objectContaining({ code: "CHANNEL_CLOSED" }));
    expect(() => broker.machine.publish(ch, "", "q", utf8("x"))).toThrow(expect.objectContaining({ code: "CHANNEL_CLOSED" }));
    broker.expectNothingSent();
  });
});

describe("closeChannel from the client", () => {
  it("sends channel.close at once; queued requests fail at once, the in-flight one at close-ok; close-ok → reply + channelClosed", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const inFlight = broker.machine.call(ch, method("queue.declare", { queue: "q" }));
    const queued = broker.machine.call(ch, method("basic.qos", { prefetchCount: 1 }));
    broker.expectMethod("queue.declare", { channel: ch });
    const closeId = broker.machine.closeChannel(ch);
    expect(broker.expectMethod("channel.close", { channel: ch })).toMatchObject({ replyCode: 200, replyText: "Goodbye" });
    const early = broker.takeEvents();
    expect(early).toEqual([{ type: "requestFailed", channel: ch, requestId: queued, reason: expect.objectContaining({ initiator: "client", replyCode: 200 }), scope: "channel" }]);
    expect(broker.machine.isChannelOpen(ch)).toBe(false);

    broker.reply(ch, method("queue.declare-ok", { queue: "q" })); // crossed the close: dropped
    broker.reply(ch, method("channel.close-ok"));
    const events = broker.takeEvents();
    expect(events.map((e) => e.type)).toEqual(["reply", "requestFailed", "channelClosed"]);
    expect(events[0]).toMatchObject({ requestId: closeId, method: { name: "channel.close-ok" } });
    expect(events[1]).toMatchObject({ requestId: inFlight, reason: { initiator: "client" } });
    expect(events[2]).toMatchObject({ channel: ch, reason: { initiator: "client", replyCode: 200, replyText: "Goodbye" } });
    broker.expectNothingSent();
  });

  it("carries the caller's reply code and text", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.machine.closeChannel(ch, 320, "done here");
    expect(broker.expectMethod("channel.close", { channel: ch })).toMatchObject({ replyCode: 320, replyText: "done here", failingClassId: 0, failingMethodId: 0 });
  });

  it("a broker channel.close crossing ours is answered with close-ok; ours completes with the broker's close-ok", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const closeId = broker.machine.closeChannel(ch);
    broker.expectMethod("channel.close", { channel: ch });
    broker.closeChannel(ch, 406, "PRECONDITION_FAILED");
    broker.expectMethod("channel.close-ok", { channel: ch });
    broker.expectNoEvent();
    broker.reply(ch, method("channel.close-ok"));
    expect(broker.takeEvents().map((e) => e.type)).toEqual(["reply", "channelClosed"]);
    expect(broker.machine.openChannel().channel).toBeGreaterThan(0);
    expect(closeId).toBeGreaterThan(0);
  });

  it("closing a channel that is still opening fails the open request when close-ok arrives", () => {
    const broker = connected();
    const { channel, requestId } = broker.machine.openChannel();
    broker.machine.closeChannel(channel);
    expect(broker.takeMethodNames()).toEqual([`channel.open@${channel}`, `channel.close@${channel}`]);
    broker.reply(channel, method("channel.open-ok"));
    broker.expectNoEvent();
    broker.reply(channel, method("channel.close-ok"));
    const events = broker.takeEvents();
    expect(events.map((e) => e.type)).toEqual(["reply", "requestFailed", "channelClosed"]);
    expect(events[1]).toMatchObject({ requestId });
  });

  it("closing twice throws CHANNEL_CLOSED", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.machine.closeChannel(ch);
    expect(() => broker.machine.closeChannel(ch)).toThrow(expect.objectContaining({ code: "CHANNEL_CLOSED" }));
  });
});

describe("channel.flow from the broker", () => {
  it("is answered with flow-ok carrying the same flag and reported as an event", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.send(ch, method("channel.flow", { active: false }));
    expect(broker.expectMethod("channel.flow-ok", { channel: ch }).active).toBe(false);
    expect(broker.expectEvent("channelFlow")).toEqual({ type: "channelFlow", channel: ch, active: false });
    broker.send(ch, method("channel.flow", { active: true }));
    expect(broker.expectMethod("channel.flow-ok", { channel: ch }).active).toBe(true);
    expect(broker.expectEvent("channelFlow")).toEqual({ type: "channelFlow", channel: ch, active: true });
  });
});

describe("channel.flow from the client", () => {
  it("is a request answered by flow-ok", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const id = broker.machine.call(ch, method("channel.flow", { active: false }));
    expect(broker.expectMethod("channel.flow", { channel: ch }).active).toBe(false);
    broker.reply(ch, method("channel.flow-ok", { active: false }));
    expect(broker.expectEvent("reply")).toMatchObject({ requestId: id, method: { name: "channel.flow-ok", active: false } });
  });
});
