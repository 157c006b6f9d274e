/**
 * Content: a publish is method + header + body frames written together and split by the negotiated
 * frame_max; deliveries, get-ok and returns are reassembled from any split of frames and bytes; a body over
 * maxBodySize closes its channel with 311 without being buffered.
 */
import { describe, expect, it } from "vitest";
import { FrameDecoder } from "../../src/codec/amqp/frame-decoder.ts";
import type { Frame } from "../../src/codec/amqp/frames.ts";
import type { BasicProperties } from "../../src/codec/amqp/properties.ts";
import { resolveOptions } from "../../src/machine/options.ts";
import { bodyFrame, connected, contentFrames, type FakeBroker, headerFrame, method, methodFrame, utf8 } from "../support/fake-broker.ts";

function filled(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/**
 * Every content-bearing method in `frames` is followed at once by its header and exactly its body frames on
 * the same channel: no other frame slips in between.
 */
function expectNoInterleaving(frames: readonly Frame[]): number {
  let messages = 0;
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i]!;
    if (f.type !== 1 || f.method.name !== "basic.publish") continue;
    messages++;
    const h = frames[++i];
    expect(h).toMatchObject({ type: 2, channel: f.channel });
    let left = Number((h as { bodySize: number }).bodySize);
    while (left > 0) {
      const b = frames[++i];
      expect(b).toMatchObject({ type: 3, channel: f.channel });
      left -= (b as { payload: Uint8Array }).payload.length;
    }
    expect(left).toBe(0);
  }
  return messages;
}

/** Starts consumers with these tags on `ch` (a delivery for a tag the channel does not have is not emitted). */
function consuming(broker: FakeBroker, ch: number, ...tags: string[]): number {
  for (const tag of tags) broker.consume(ch, "q", tag);
  return ch;
}

const PROPS: BasicProperties = { contentType: "application/json", deliveryMode: 2, headers: { "x-trace": "abc" }, messageId: "m-1", priority: 3 };

describe("publish", () => {
  it("writes method, header and body frames in one transmit, bodies split by the negotiated frame_max", () => {
    const broker = connected({}, { frameMax: 8192 });
    const ch = broker.openChannel();
    const body = filled(20_000);
    broker.machine.publish(ch, "amq.topic", "a.b", body, PROPS, true);
    const out = broker.machine.pollTransmit(broker.now)!;
    expect(broker.machine.pollTransmit(broker.now)).toBeUndefined(); // all of it came in one piece
    const d = new FrameDecoder({ frameMax: 8192 }); // every frame fits the negotiated frame_max
    d.push(out);
    const frames: Frame[] = [];
    for (let f = d.next(); f !== undefined; f = d.next()) frames.push(f);
    expect(frames.map((f) => f.type)).toEqual([1, 2, 3, 3, 3]);
    expect(frames.slice(2).map((f) => (f.type === 3 ? f.payload.length : 0))).toEqual([8184, 8184, 3632]);
    const m = frames[0]!;
    expect(m.type === 1 && m.method).toMatchObject({ name: "basic.publish", exchange: "amq.topic", routingKey: "a.b", mandatory: true, immediate: false });
    const h = frames[1]!;
    expect(h.type === 2 && { size: h.bodySize, props: { ...h.properties, headers: { ...h.properties.headers } } }).toEqual({ size: 20_000, props: PROPS });
    expect(frames.every((f) => f.type === "protocol-header" || f.channel === ch)).toBe(true);
  });

  it("reassembles to the same body and properties on the broker side", () => {
    const broker = connected({}, { frameMax: 8192 });
    const ch = broker.openChannel();
    const body = filled(20_000, 7);
    broker.machine.publish(ch, "", "q", body, PROPS);
    const msg = broker.expectContent("basic.publish", { channel: ch });
    expect(msg.body).toEqual(body);
    expect(msg.bodyFrameSizes).toEqual([8184, 8184, 3632]);
    expect(msg.properties.messageId).toBe("m-1");
  });

  it("an empty body is a header with body size 0 and no body frame", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.machine.publish(ch, "", "q", new Uint8Array(0));
    const frames = broker.takeFrames();
    expect(frames.map((f) => f.type)).toEqual([1, 2]);
    expect(frames[1]).toMatchObject({ type: 2, bodySize: 0 });
  });

  it("a body of exactly frame_max - 8 bytes is one body frame", () => {
    const broker = connected({}, { frameMax: 8192 });
    const ch = broker.openChannel();
    broker.machine.publish(ch, "", "q", filled(8184));
    expect(broker.expectContent("basic.publish").bodyFrameSizes).toEqual([8184]);
  });

  it("returns 0 outside confirm mode", () => {
    const broker = connected();
    const ch = broker.openChannel();
    expect(broker.machine.publish(ch, "", "q", utf8("x"))).toBe(0);
  });

  it("publishes on different channels never interleave inside one message", () => {
    const broker = connected({}, { frameMax: 8192 });
    const one = broker.openChannel();
    const two = broker.openChannel();
    const three = broker.openChannel();
    // channel one is busy, so its publishes queue and go out later, in the middle of other traffic
    broker.machine.call(one, method("queue.declare", { queue: "q" }));
    for (let i = 0; i < 3; i++) {
      broker.machine.publish(one, "", "q", filled(20_000, i));
      broker.machine.publish(two, "", "q", filled(17_000, i));
      broker.machine.publish(three, "", "q", filled(9_000, i));
    }
    broker.reply(one, method("queue.declare-ok", { queue: "q" }));
    for (let i = 0; i < 3; i++) broker.machine.publish(two, "", "q", filled(30_000, i));
    const frames = broker.takeFrames();
    expect(expectNoInterleaving(frames)).toBe(12);
  });
});

describe.each([
  ["whole", 0],
  ["byte by byte", 1],
  ["in 7-byte chunks", 7],
])("incoming content, fed %s", (_, chunking) => {
  it("a delivery split over several body frames is reassembled into one message with its properties", () => {
    const broker = connected({}, { frameMax: 4096 });
    broker.chunking = chunking;
    const ch = consuming(broker, broker.openChannel(), "ctag");
    const body = filled(10_000, 3);
    broker.deliver(ch, "ctag", 1, body, PROPS, { redelivered: true, exchange: "ex", routingKey: "rk" });
    const d = broker.expectEvent("delivery");
    expect(d).toMatchObject({ channel: ch, consumerTag: "ctag", deliveryTag: 1, redelivered: true, exchange: "ex", routingKey: "rk" });
    expect(d.message.body).toEqual(body);
    expect({ ...d.message.properties, headers: { ...d.message.properties.headers } }).toEqual(PROPS);
    broker.expectNoEvent();
  });

  it("body frames of uneven sizes, including an empty one, are joined in order", () => {
    const broker = connected();
    broker.chunking = chunking;
    const ch = consuming(broker, broker.openChannel(), "c");
    const body = filled(5_000, 9);
    broker.sendBytes(methodFrame(ch, method("basic.deliver", { consumerTag: "c", deliveryTag: 2 })));
    broker.sendBytes(headerFrame(ch, body.length, { contentType: "text/plain" }));
    broker.expectNoEvent();
    broker.sendBytes(bodyFrame(ch, body.subarray(0, 1)));
    broker.sendBytes(bodyFrame(ch, body.subarray(1, 1)));
    broker.sendBytes(bodyFrame(ch, body.subarray(1, 4_000)));
    broker.expectNoEvent();
    broker.sendBytes(bodyFrame(ch, body.subarray(4_000)));
    const d = broker.expectEvent("delivery");
    expect(d.message.body).toEqual(body);
    expect(d.message.properties.contentType).toBe("text/plain");
  });

  it("a zero-length body is delivered at the header, with no body frame", () => {
    const broker = connected();
    broker.chunking = chunking;
    const ch = consuming(broker, broker.openChannel(), "ctag");
    broker.deliver(ch, "ctag", 5, new Uint8Array(0), { type: "ping" });
    const d = broker.expectEvent("delivery");
    expect(d.message.body.length).toBe(0);
    expect(d.message.properties.type).toBe("ping");
  });

  it("basic.get-ok settles the get request with the reassembled message", () => {
    const broker = connected({}, { frameMax: 4096 });
    broker.chunking = chunking;
    const ch = broker.openChannel();
    const id = broker.machine.call(ch, method("basic.get", { queue: "q", noAck: true }));
    broker.expectMethod("basic.get", { channel: ch });
    const body = filled(9_000);
    broker.getOk(ch, 77, body, { correlationId: "c-1" }, 4);
    const r = broker.expectEvent("reply");
    expect(r).toMatchObject({ channel: ch, requestId: id, method: { name: "basic.get-ok", deliveryTag: 77, messageCount: 4 } });
    expect(r.message?.body).toEqual(body);
    expect(r.message?.properties.correlationId).toBe("c-1");
  });

  it("a get-ok with an empty body settles at its header", () => {
    const broker = connected();
    broker.chunking = chunking;
    const ch = broker.openChannel();
    const id = broker.machine.call(ch, method("basic.get", { queue: "q" }));
    broker.getOk(ch, 1, new Uint8Array(0));
    const r = broker.expectEvent("reply");
    expect(r.requestId).toBe(id);
    expect(r.message?.body.length).toBe(0);
  });

  it("basic.return is reassembled into a return event with its message", () => {
    const broker = connected({}, { frameMax: 4096 });
    broker.chunking = chunking;
    const ch = broker.openChannel();
    broker.machine.publish(ch, "ex", "nowhere", filled(6_000), {}, true);
    broker.returnMessage(ch, "ex", "nowhere", filled(6_000), { appId: "app" });
    const r = broker.expectEvent("return");
    expect(r).toMatchObject({ channel: ch, replyCode: 312, replyText: "NO_ROUTE", exchange: "ex", routingKey: "nowhere", publishSeq: undefined });
    expect(r.message.body).toEqual(filled(6_000));
    expect(r.message.properties.appId).toBe("app");
  });

  it("content on one channel does not disturb content on another", () => {
    const broker = connected();
    broker.chunking = chunking;
    const one = consuming(broker, broker.openChannel(), "a");
    const two = consuming(broker, broker.openChannel(), "b");
    // two messages whose frames alternate between channels: legal, frames of one channel stay in order
    broker.sendBytes(methodFrame(one, method("basic.deliver", { consumerTag: "a", deliveryTag: 1 })));
    broker.sendBytes(methodFrame(two, method("basic.deliver", { consumerTag: "b", deliveryTag: 1 })));
    broker.sendBytes(headerFrame(two, 3));
    broker.sendBytes(headerFrame(one, 4));
    broker.sendBytes(bodyFrame(one, utf8("on")));
    broker.sendBytes(bodyFrame(two, utf8("two")));
    broker.sendBytes(bodyFrame(one, utf8("e!")));
    const events = broker.takeEvents();
    expect(events.map((e) => (e.type === "delivery" ? [e.channel, new TextDecoder().decode(e.message.body)] : e.type))).toEqual([
      [two, "two"],
      [one, "one!"],
    ]);
  });
});

describe("maxBodySize", () => {
  it("a message of exactly maxBodySize is accepted", () => {
    const broker = connected({ maxBodySize: 1000 });
    const ch = consuming(broker, broker.openChannel(), "c");
    broker.deliver(ch, "c", 1, filled(1000));
    expect(broker.expectEvent("delivery").message.body.length).toBe(1000);
  });

  it("a larger body closes the channel with 311, is not delivered, and its frames are then ignored", () => {
    const broker = connected({ maxBodySize: 1000 }, { frameMax: 4096 });
    const ch = consuming(broker, broker.openChannel(), "c");
    const other = consuming(broker, broker.openChannel(), "c2");
    broker.sendBytes(methodFrame(ch, method("basic.deliver", { consumerTag: "c", deliveryTag: 1 })));
    broker.sendBytes(headerFrame(ch, 5000));
    const close = broker.expectMethod("channel.close", { channel: ch });
    expect(close).toMatchObject({ replyCode: 311, failingClassId: 60, failingMethodId: 60 });
    expect(close.replyText).toMatch(/5000 bytes.*1000-byte limit/);
    broker.sendBytes(bodyFrame(ch, filled(4088)));
    broker.sendBytes(bodyFrame(ch, filled(912)));
    broker.expectNothingSent(); // no connection.close: the frames were expected
    expect(broker.unreadEvents().filter((e) => e.type === "delivery")).toEqual([]);
    // the connection and the other channels carry on
    broker.deliver(other, "c2", 1, utf8("fine"));
    expect(broker.expectEvent("delivery").channel).toBe(other);
    broker.reply(ch, method("channel.close-ok"));
    expect(broker.expectEvent("channelClosed")).toMatchObject({
      channel: ch,
      reason: { initiator: "protocol", replyCode: 311, classId: 60, methodId: 60 },
    });
    expect(broker.machine.isOpen).toBe(true);
  });

  it("is refused at the header, whatever size it claims: nothing is allocated for it", () => {
    const broker = connected();
    const ch = consuming(broker, broker.openChannel(), "c");
    broker.sendBytes(methodFrame(ch, method("basic.deliver", { consumerTag: "c", deliveryTag: 1 })));
    expect(() => broker.sendBytes(headerFrame(ch, 2 ** 50))).not.toThrow(); // allocating this would throw RangeError
    expect(() => broker.sendBytes(bodyFrame(ch, filled(100)))).not.toThrow();
    expect(broker.expectMethod("channel.close", { channel: ch }).replyCode).toBe(311);
    broker.expectNothingSent();
  });

  it("a body size beyond 2^53 (a bigint) is refused the same way", () => {
    const broker = connected();
    const ch = consuming(broker, broker.openChannel(), "c");
    broker.sendBytes(methodFrame(ch, method("basic.deliver", { consumerTag: "c", deliveryTag: 1 })));
    broker.sendBytes(headerFrame(ch, 2n ** 64n - 1n));
    broker.sendBytes(bodyFrame(ch, filled(10)));
    expect(broker.expectMethod("channel.close", { channel: ch }).replyCode).toBe(311);
    broker.expectNothingSent();
    broker.expectNoEvent();
  });

  it("an oversize get-ok fails the get request with 311 when the channel has closed", () => {
    const broker = connected({ maxBodySize: 10 });
    const ch = broker.openChannel();
    const id = broker.machine.call(ch, method("basic.get", { queue: "q" }));
    broker.expectMethod("basic.get");
    broker.getOk(ch, 1, filled(11));
    expect(broker.expectMethod("channel.close", { channel: ch }).replyCode).toBe(311);
    broker.expectNoEvent();
    broker.reply(ch, method("channel.close-ok"));
    expect(broker.takeEvents()).toEqual([
      expect.objectContaining({ type: "requestFailed", requestId: id, reason: expect.objectContaining({ replyCode: 311 }) }),
      expect.objectContaining({ type: "channelClosed", channel: ch }),
    ]);
  });

  it("content already in flight on a channel the client is closing is dropped quietly", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.machine.closeChannel(ch);
    broker.expectMethod("channel.close");
    broker.sendBytes(contentFrames(ch, method("basic.deliver", { consumerTag: "c", deliveryTag: 1 }), filled(300), {}, 100));
    broker.expectNothingSent();
    broker.expectNoEvent();
    broker.reply(ch, method("channel.close-ok"));
    expect(broker.takeEvents().map((e) => e.type)).toEqual(["reply", "channelClosed"]);
  });
});

describe("allocate what has arrived, not what a header announces (issue 8, defect 13)", () => {
  it("16 channels each announcing a 128 MiB body (header + a first body byte) allocate next to nothing", () => {
    const broker = connected();
    const channels = Array.from({ length: 16 }, () => consuming(broker, broker.openChannel(), "c"));
    const before = process.memoryUsage().arrayBuffers;
    for (const ch of channels) {
      broker.sendBytes(methodFrame(ch, method("basic.deliver", { consumerTag: "c", deliveryTag: 1 })));
      broker.sendBytes(headerFrame(ch, 128 * 1024 * 1024));
      broker.sendBytes(bodyFrame(ch, filled(1)));
    }
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(grown).toBeLessThan(4 * 1024 * 1024); // was 2 GiB
    expect(broker.machine.isOpen).toBe(true);
    broker.expectNoEvent();
  });

  it("with maxBodySize raised to 2^40, a header announcing 2^40 bytes does not throw from handleInput", () => {
    const broker = connected({ maxBodySize: 2 ** 40 }, { frameMax: 4096 });
    const ch = consuming(broker, broker.openChannel(), "c");
    expect(() => {
      broker.sendBytes(methodFrame(ch, method("basic.deliver", { consumerTag: "c", deliveryTag: 1 })));
      broker.sendBytes(headerFrame(ch, 2 ** 40));
      broker.sendBytes(bodyFrame(ch, filled(4088)));
    }).not.toThrow();
    expect(broker.machine.isOpen).toBe(true);
  });

  it("a body in many frames grows as it arrives and is delivered whole", () => {
    const broker = connected({}, { frameMax: 4096 });
    const ch = consuming(broker, broker.openChannel(), "c");
    const body = filled(300_000, 5);
    broker.deliver(ch, "c", 1, body);
    expect(broker.expectEvent("delivery").message.body).toEqual(body);
  });

  it("past maxPartialContent across channels the connection is closed with 506 and a clear reason, not a RangeError", () => {
    const broker = connected({ maxBodySize: 1_000_000, maxPartialContent: 100_000 }, { frameMax: 8192 });
    const one = consuming(broker, broker.openChannel(), "a");
    const two = consuming(broker, broker.openChannel(), "b");
    for (const [ch, tag] of [[one, "a"], [two, "b"]] as const) {
      broker.sendBytes(methodFrame(ch, method("basic.deliver", { consumerTag: tag, deliveryTag: 1 })));
      broker.sendBytes(headerFrame(ch, 900_000));
      broker.sendBytes(bodyFrame(ch, filled(8000)));
    }
    const close = broker.expectMethod("connection.close", { channel: 0 });
    expect(close.replyCode).toBe(506);
    expect(close.replyText).toMatch(/maxPartialContent/);
    broker.sendBytes(bodyFrame(one, filled(8000))); // ignored while closing
    broker.send(0, method("connection.close-ok"));
    expect(broker.takeEvents().at(-1)).toMatchObject({ type: "connectionClosed", reason: { initiator: "protocol", replyCode: 506 } });
  });

  it("maxPartialContent defaults to the larger of 256 MiB and maxBodySize", () => {
    expect(resolveOptions({}).maxPartialContent).toBe(256 * 1024 * 1024);
    expect(resolveOptions({ maxBodySize: 2 ** 30 }).maxPartialContent).toBe(2 ** 30);
  });
});
