/**
 * Consumers and the rest of the channel-level methods: consume/deliver/cancel (including the broker's own
 * basic.cancel, RabbitMQ's consumer_cancel_notify), get, acks, and every exchange/queue/basic/tx request
 * round-tripping through `call` (with a reply) or `send` (no-wait, or asynchronous).
 */
import { describe, expect, it } from "vitest";
import type { Method } from "../../src/codec/amqp/methods.generated.ts";
import { concat } from "../support/bytes.ts";
import { connected, contentFrames, method, methodFrame, utf8 } from "../support/fake-broker.ts";

describe("basic.consume", () => {
  it("consume-ok settles the request with the consumer tag the broker chose; deliveries for it follow", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const id = broker.machine.call(ch, method("basic.consume", { queue: "q", consumerTag: "" }));
    expect(broker.expectMethod("basic.consume", { channel: ch })).toMatchObject({ queue: "q", consumerTag: "", noWait: false });
    broker.reply(ch, method("basic.consume-ok", { consumerTag: "amq.ctag-xyz" }));
    expect(broker.expectEvent("reply")).toMatchObject({ requestId: id, method: { name: "basic.consume-ok", consumerTag: "amq.ctag-xyz" } });
    broker.deliver(ch, "amq.ctag-xyz", 1, utf8("hello"));
    expect(broker.expectEvent("delivery")).toMatchObject({ channel: ch, consumerTag: "amq.ctag-xyz", deliveryTag: 1 });
  });

  it("a consume-ok giving a tag already in use on the channel is a 503: the request is not settled as a reply", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.machine.call(ch, method("basic.consume", { queue: "q1" }));
    broker.reply(ch, method("basic.consume-ok", { consumerTag: "dup" }));
    broker.expectEvent("reply");
    broker.machine.call(ch, method("basic.consume", { queue: "q2" }));
    broker.reply(ch, method("basic.consume-ok", { consumerTag: "dup" }));
    broker.expectMethod("basic.consume");
    broker.expectMethod("basic.consume");
    expect(broker.expectMethod("connection.close")).toMatchObject({ replyCode: 503, failingClassId: 60, failingMethodId: 21 });
    broker.expectNoEvent();
  });

  it("with no-wait goes out through send, with nothing to wait for", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.machine.send(ch, method("basic.consume", { queue: "q", consumerTag: "mine", noWait: true }));
    expect(broker.expectMethod("basic.consume", { channel: ch })).toMatchObject({ consumerTag: "mine", noWait: true });
    const next = broker.machine.call(ch, method("basic.qos", { prefetchCount: 1 }));
    broker.expectMethod("basic.qos", { channel: ch }); // not held back: nothing is in flight
    broker.reply(ch, method("basic.qos-ok"));
    expect(broker.expectEvent("reply").requestId).toBe(next);
  });
});

describe("deliveries", () => {
  it("carry the consumer tag, delivery tag, redelivered flag, exchange and routing key", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.consume(ch, "q", "c1");
    broker.deliver(ch, "c1", 42, utf8("body"), { contentType: "text/plain" }, { redelivered: true, exchange: "amq.direct", routingKey: "q" });
    const d = broker.expectEvent("delivery");
    expect(d).toMatchObject({ type: "delivery", channel: ch, consumerTag: "c1", deliveryTag: 42, redelivered: true, exchange: "amq.direct", routingKey: "q" });
    expect(new TextDecoder().decode(d.message.body)).toBe("body");
  });

  it("a 64-bit delivery tag 2^64-1 arrives as a bigint and can be acked back exactly", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.consume(ch, "q", "c1");
    const tag = 2n ** 64n - 1n;
    broker.deliver(ch, "c1", tag, utf8("x"));
    const d = broker.expectEvent("delivery");
    expect(d.deliveryTag).toBe(tag);
    broker.machine.send(ch, method("basic.ack", { deliveryTag: d.deliveryTag, multiple: false }));
    expect(broker.expectMethod("basic.ack", { channel: ch }).deliveryTag).toBe(tag);
  });

  it("a delivery tag just past 2^53 stays exact", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.consume(ch, "q", "c1");
    broker.deliver(ch, "c1", 2n ** 53n + 1n, utf8("x"));
    expect(broker.expectEvent("delivery").deliveryTag).toBe(2n ** 53n + 1n);
  });
});

describe("basic.cancel from the broker", () => {
  it("is answered with cancel-ok when its no-wait is off, and reported as consumerCancelled", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.consume(ch, "q", "c1");
    broker.send(ch, method("basic.cancel", { consumerTag: "c1", noWait: false }));
    expect(broker.expectMethod("basic.cancel-ok", { channel: ch }).consumerTag).toBe("c1");
    expect(broker.expectEvent("consumerCancelled")).toEqual({ type: "consumerCancelled", channel: ch, consumerTag: "c1" });
  });

  it("is not answered when its no-wait is on (RabbitMQ's consumer cancel notification)", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.consume(ch, "q", "c1");
    broker.send(ch, method("basic.cancel", { consumerTag: "c1", noWait: true }));
    broker.expectNothingSent();
    expect(broker.expectEvent("consumerCancelled")).toEqual({ type: "consumerCancelled", channel: ch, consumerTag: "c1" });
  });

  it("does not disturb a request in flight on the channel", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.consume(ch, "q", "c1");
    const id = broker.machine.call(ch, method("queue.declare", { queue: "q2" }));
    broker.expectMethod("queue.declare");
    broker.send(ch, method("basic.cancel", { consumerTag: "c1", noWait: true }));
    broker.reply(ch, method("queue.declare-ok", { queue: "q2" }));
    expect(broker.takeEvents().map((e) => e.type)).toEqual(["consumerCancelled", "reply"]);
    expect(id).toBeGreaterThan(0);
  });
});

describe("basic.cancel from the client", () => {
  it("is a request settled by cancel-ok", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.consume(ch, "q", "c1");
    const id = broker.machine.call(ch, method("basic.cancel", { consumerTag: "c1" }));
    expect(broker.expectMethod("basic.cancel", { channel: ch })).toMatchObject({ consumerTag: "c1", noWait: false });
    broker.reply(ch, method("basic.cancel-ok", { consumerTag: "c1" }));
    expect(broker.expectEvent("reply")).toMatchObject({ requestId: id, method: { name: "basic.cancel-ok", consumerTag: "c1" } });
  });
});

describe("basic.get", () => {
  it("get-ok with a message, then get-empty", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const first = broker.machine.call(ch, method("basic.get", { queue: "q" }));
    const second = broker.machine.call(ch, method("basic.get", { queue: "q" }));
    broker.expectMethod("basic.get", { channel: ch });
    broker.expectNothingSent();
    broker.getOk(ch, 1, utf8("only one"), {}, 0);
    const r1 = broker.expectEvent("reply");
    expect(r1.requestId).toBe(first);
    expect(new TextDecoder().decode(r1.message!.body)).toBe("only one");
    broker.expectMethod("basic.get", { channel: ch });
    broker.reply(ch, method("basic.get-empty"));
    expect(broker.expectEvent("reply")).toMatchObject({ requestId: second, method: { name: "basic.get-empty" }, message: undefined });
  });
});

describe("acknowledgements from the client", () => {
  it("basic.ack, basic.nack, basic.reject and basic.recover-async go out as they are, with no reply", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const m = broker.machine;
    m.send(ch, method("basic.ack", { deliveryTag: 5, multiple: true }));
    m.send(ch, method("basic.nack", { deliveryTag: 6, multiple: false, requeue: true }));
    m.send(ch, method("basic.reject", { deliveryTag: 7, requeue: false }));
    m.send(ch, method("basic.recover-async", { requeue: true }));
    expect(broker.expectMethod("basic.ack", { channel: ch })).toMatchObject({ deliveryTag: 5, multiple: true });
    expect(broker.expectMethod("basic.nack", { channel: ch })).toMatchObject({ deliveryTag: 6, multiple: false, requeue: true });
    expect(broker.expectMethod("basic.reject", { channel: ch })).toMatchObject({ deliveryTag: 7, requeue: false });
    expect(broker.expectMethod("basic.recover-async", { channel: ch })).toMatchObject({ requeue: true });
    broker.expectNoEvent();
  });
});

const ROUND_TRIPS: [Method, Method][] = [
  [method("basic.qos", { prefetchCount: 10, global: true }), method("basic.qos-ok")],
  [method("basic.recover", { requeue: true }), method("basic.recover-ok")],
  [method("exchange.declare", { exchange: "x", type: "topic", durable: true, arguments: { "alternate-exchange": "ae" } }), method("exchange.declare-ok")],
  [method("exchange.delete", { exchange: "x", ifUnused: true }), method("exchange.delete-ok")],
  [method("exchange.bind", { destination: "d", source: "s", routingKey: "k" }), method("exchange.bind-ok")],
  [method("exchange.unbind", { destination: "d", source: "s", routingKey: "k" }), method("exchange.unbind-ok")],
  [method("queue.declare", { queue: "q", durable: true, arguments: { "x-queue-type": "quorum" } }), method("queue.declare-ok", { queue: "q", messageCount: 1, consumerCount: 2 })],
  [method("queue.bind", { queue: "q", exchange: "x", routingKey: "k" }), method("queue.bind-ok")],
  [method("queue.unbind", { queue: "q", exchange: "x", routingKey: "k" }), method("queue.unbind-ok")],
  [method("queue.purge", { queue: "q" }), method("queue.purge-ok", { messageCount: 12 })],
  [method("queue.delete", { queue: "q", ifEmpty: true }), method("queue.delete-ok", { messageCount: 0 })],
  [method("tx.select"), method("tx.select-ok")],
  [method("tx.commit"), method("tx.commit-ok")],
  [method("tx.rollback"), method("tx.rollback-ok")],
];

describe("requests round-trip through call", () => {
  it.each(ROUND_TRIPS.map(([req, ok]) => [req.name, req, ok] as const))("%s", (_, req, ok) => {
    const broker = connected();
    const ch = broker.openChannel();
    const id = broker.machine.call(ch, req);
    const sent = broker.expectMethod(req.name, { channel: ch });
    expect(sent).toEqual(req);
    broker.expectNoEvent();
    broker.reply(ch, ok);
    expect(broker.expectEvent("reply")).toEqual({ type: "reply", channel: ch, requestId: id, method: ok, message: undefined });
  });

  it("a reply that answers another request is a 505", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.machine.call(ch, method("queue.declare", { queue: "q" }));
    broker.expectMethod("queue.declare");
    broker.reply(ch, method("exchange.declare-ok"));
    const close = broker.expectMethod("connection.close", { channel: 0 });
    expect(close).toMatchObject({ replyCode: 505, failingClassId: 40, failingMethodId: 11 });
  });
});

describe("requests with no-wait round-trip through send", () => {
  const NO_WAIT: Method[] = [
    method("exchange.declare", { exchange: "x", type: "fanout", noWait: true }),
    method("exchange.delete", { exchange: "x", noWait: true }),
    method("exchange.bind", { destination: "d", source: "s", noWait: true }),
    method("exchange.unbind", { destination: "d", source: "s", noWait: true }),
    method("queue.declare", { queue: "q", noWait: true }),
    method("queue.bind", { queue: "q", exchange: "x", noWait: true }),
    method("queue.purge", { queue: "q", noWait: true }),
    method("queue.delete", { queue: "q", noWait: true }),
    method("basic.cancel", { consumerTag: "c", noWait: true }),
  ];
  it.each(NO_WAIT.map((m) => [m.name, m] as const))("%s", (_, m) => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.machine.send(ch, m);
    expect(broker.expectMethod(m.name, { channel: ch })).toMatchObject({ name: m.name });
    // nothing is in flight: a following request goes out at once
    broker.machine.call(ch, method("basic.qos"));
    broker.expectMethod("basic.qos", { channel: ch });
    broker.expectNoEvent();
  });
});

describe("deliveries for a consumer tag the channel does not have", () => {
  it("a tag never consumed: the machine answers basic.reject (requeue) itself and emits no delivery", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.deliver(ch, "stranger", 9, utf8("x"));
    expect(broker.expectMethod("basic.reject", { channel: ch })).toMatchObject({ deliveryTag: 9, requeue: true });
    broker.expectNoEvent();
    expect(broker.machine.isOpen).toBe(true);
  });

  it("after basic.cancel-ok the tag is unknown: its late deliveries are rejected with requeue", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.consume(ch, "q", "c1");
    broker.machine.call(ch, method("basic.cancel", { consumerTag: "c1" }));
    broker.expectMethod("basic.cancel");
    broker.deliver(ch, "c1", 1, utf8("before cancel-ok")); // still ours: delivered
    expect(broker.expectEvent("delivery").deliveryTag).toBe(1);
    broker.reply(ch, method("basic.cancel-ok", { consumerTag: "c1" }));
    broker.expectEvent("reply");
    broker.deliver(ch, "c1", 2, utf8("after cancel-ok"));
    expect(broker.expectMethod("basic.reject", { channel: ch })).toMatchObject({ deliveryTag: 2, requeue: true });
    broker.expectNoEvent();
  });

  it("after the broker's basic.cancel the tag is unknown too", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.consume(ch, "q", "c1");
    broker.send(ch, method("basic.cancel", { consumerTag: "c1", noWait: true }));
    broker.expectEvent("consumerCancelled");
    broker.deliver(ch, "c1", 4, utf8("late"));
    expect(broker.expectMethod("basic.reject", { channel: ch })).toMatchObject({ deliveryTag: 4, requeue: true });
    broker.expectNoEvent();
  });

  it("a tag cancelled with no-wait: an ack-mode consumer's in-flight deliveries are rejected with requeue", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.consume(ch, "q", "c1");
    broker.machine.send(ch, method("basic.cancel", { consumerTag: "c1", noWait: true }));
    broker.expectMethod("basic.cancel");
    broker.deliver(ch, "c1", 5, utf8("in flight"));
    expect(broker.expectMethod("basic.reject", { channel: ch })).toMatchObject({ deliveryTag: 5, requeue: true });
    broker.expectNoEvent();
  });

  it("a tag cancelled with no-wait: a no-ack consumer's in-flight deliveries are dropped (the broker already forgot them)", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const id = broker.machine.call(ch, method("basic.consume", { queue: "q", consumerTag: "", noAck: true }));
    broker.expectMethod("basic.consume");
    broker.reply(ch, method("basic.consume-ok", { consumerTag: "amq.ctag-1" })); // the tag the broker chose
    expect(broker.expectEvent("reply").requestId).toBe(id);
    broker.machine.send(ch, method("basic.cancel", { consumerTag: "amq.ctag-1", noWait: true }));
    broker.expectMethod("basic.cancel");
    broker.deliver(ch, "amq.ctag-1", 6, utf8("in flight"));
    broker.expectNothingSent();
    broker.expectNoEvent();
  });

  it("a consumer started with no-wait is known at once", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.machine.send(ch, method("basic.consume", { queue: "q", consumerTag: "mine", noWait: true }));
    broker.expectMethod("basic.consume");
    broker.deliver(ch, "mine", 1, utf8("x"));
    expect(broker.expectEvent("delivery").consumerTag).toBe("mine");
  });

  it("an unknown-tag delivery followed by connection.close in the same read: no throw, the reject is written, the close settles all", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const bytes = concat([
      contentFrames(ch, method("basic.deliver", { consumerTag: "stranger", deliveryTag: 1, exchange: "", routingKey: "q" }), utf8("x"), {}, 131072),
      methodFrame(0, method("connection.close", { replyCode: 320, replyText: "CONNECTION_FORCED" })),
    ]);
    expect(() => broker.sendBytes(bytes)).not.toThrow();
    expect(broker.takeMethodNames()).toEqual([`basic.reject@${ch}`, "connection.close-ok@0"]);
    expect(broker.takeEvents().map((e) => e.type)).toEqual(["channelClosed", "connectionClosed"]);
  });
});
