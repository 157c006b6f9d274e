/**
 * The basic class against RabbitMQ: publish and get with bodies and properties, ack / nack / reject /
 * recover and their requeue semantics, qos, consume and cancel, no-ack consumers.
 */
import { describe, expect, it } from "vitest";
import { type Message, PreconditionFailedError, type WarrenError } from "../../src/index.ts";
import { confirmChannelWithQueue, messageCount, recordUnhandledRejections, useConnections, waitFor, within } from "../support/broker.ts";

recordUnhandledRejections();
const broker = useConnections();

const setup = () => confirmChannelWithQueue(broker);
const count = messageCount;

describe("basic.publish and basic.get", () => {
  it("basicGet resolves null on an empty queue", async () => {
    const { ch, queue } = await setup();
    expect(await ch.basicGet(queue)).toBeNull();
    expect(await ch.basicGet(queue, { noAck: true })).toBeNull();
    expect(ch.closed).toBe(false);
  });

  it("carries string, binary and empty bodies intact", async () => {
    const { ch, queue } = await setup();
    const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
    const text = "héllo wörld ✓ 😀";
    await ch.basicPublish("", queue, text);
    await ch.basicPublish("", queue, binary);
    await ch.basicPublish("", queue, "");
    await ch.basicPublish("", queue, new Uint8Array(0));
    const a = await ch.basicGet(queue, { noAck: true });
    expect(a?.bodyText()).toBe(text);
    expect(a?.body).toEqual(new TextEncoder().encode(text));
    const b = await ch.basicGet(queue, { noAck: true });
    expect(b?.body).toEqual(binary);
    expect((await ch.basicGet(queue, { noAck: true }))?.body.length).toBe(0);
    expect((await ch.basicGet(queue, { noAck: true }))?.body.length).toBe(0);
  });

  it("a Uint8Array view into a larger buffer sends only its own bytes", async () => {
    const { ch, queue } = await setup();
    const backing = Uint8Array.from({ length: 100 }, (_, i) => i);
    await ch.basicPublish("", queue, backing.subarray(10, 20));
    expect((await ch.basicGet(queue, { noAck: true }))?.body).toEqual(backing.slice(10, 20));
  });

  it("reports delivery details: exchange, routing key, redelivered, messageCount", async () => {
    const { ch, queue } = await setup();
    await ch.basicPublish("", queue, "one");
    await ch.basicPublish("", queue, "two");
    const m = await ch.basicGet(queue);
    expect(m).toMatchObject({ exchange: "", routingKey: queue, redelivered: false, consumerTag: "", messageCount: 1 });
    m!.ack();
    const m2 = await ch.basicGet(queue);
    expect(m2?.messageCount).toBe(0);
    m2!.ack();
  });

  it("round-trips every message property RabbitMQ passes through", async () => {
    const { ch, queue } = await setup();
    const properties = {
      contentType: "application/json",
      contentEncoding: "utf-8",
      headers: {
        str: "text",
        int: 42,
        neg: -7,
        big: 2n ** 40n,
        float: 1.5,
        bool: true,
        nil: null,
        bytes: Uint8Array.of(1, 2, 3),
        nested: { a: "b", list: [1, "two", false] },
        when: new Date(1_700_000_000_000),
      },
      deliveryMode: 2,
      priority: 5,
      correlationId: "corr-1",
      replyTo: "reply.queue",
      expiration: "60000",
      messageId: "msg-1",
      timestamp: 1_700_000_000,
      type: "order.created",
      userId: "guest",
      appId: "warren-tests",
    };
    await ch.basicPublish("", queue, JSON.stringify({ n: 1 }), properties);
    const m = await ch.basicGet(queue, { noAck: true });
    expect(m?.json()).toEqual({ n: 1 });
    const p = m!.properties;
    expect({ ...p, headers: undefined }).toEqual({ ...properties, headers: undefined });
    const h = p.headers!;
    expect(h.str).toBe("text");
    expect(h.int).toBe(42);
    expect(h.neg).toBe(-7);
    expect(Number(h.big)).toBe(2 ** 40);
    expect(h.float).toBe(1.5);
    expect(h.bool).toBe(true);
    expect(h.nil).toBeNull();
    expect(h.bytes).toEqual(Uint8Array.of(1, 2, 3));
    expect({ ...(h.nested as object) }).toEqual({ a: "b", list: [1, "two", false] });
    expect(h.when).toEqual(new Date(1_700_000_000_000));
  });

  it("a userId other than the connection's user is refused (406 on the channel)", async () => {
    const { ch } = await setup();
    await expect(ch.basicPublish("", "whatever", "x", { userId: "someone-else" })).rejects.toMatchObject({ name: "PreconditionFailedError", replyCode: 406 });
    expect(ch.closed).toBe(true);
  });
});

describe("ack / nack / reject / recover", () => {
  it("ack removes a message; unacked ones are requeued (redelivered) when the channel closes", async () => {
    const { conn, ch } = await broker.channel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    await ch.basicPublish("", queue, "acked");
    await ch.basicPublish("", queue, "unacked");
    const a = await ch.basicGet(queue);
    const b = await ch.basicGet(queue);
    expect([a?.bodyText(), b?.bodyText()]).toEqual(["acked", "unacked"]);
    a!.ack();
    await ch.close();
    const ch2 = await conn.openChannel();
    expect(await count(ch2, queue)).toBe(1);
    const again = await ch2.basicGet(queue, { noAck: true });
    expect(again?.bodyText()).toBe("unacked");
    expect(again?.redelivered).toBe(true);
  });

  it("ack with multiple settles every earlier delivery", async () => {
    const { conn, ch } = await broker.channel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    for (const b of ["1", "2", "3"]) await ch.basicPublish("", queue, b);
    await ch.basicGet(queue);
    await ch.basicGet(queue);
    const third = await ch.basicGet(queue);
    third!.ack(true);
    await ch.close();
    const ch2 = await conn.openChannel();
    expect(await count(ch2, queue)).toBe(0);
  });

  it("nack with requeue puts the message back, flagged redelivered; without requeue drops it", async () => {
    const { ch, queue } = await setup();
    await ch.basicPublish("", queue, "n");
    const first = await ch.basicGet(queue);
    expect(first?.redelivered).toBe(false);
    first!.nack(true);
    const second = await ch.basicGet(queue);
    expect(second?.bodyText()).toBe("n");
    expect(second?.redelivered).toBe(true);
    second!.nack(false);
    expect(await ch.basicGet(queue)).toBeNull();
    expect(await count(ch, queue)).toBe(0);
  });

  it("nack with multiple requeues every earlier delivery", async () => {
    const { ch, queue } = await setup();
    for (const b of ["1", "2", "3"]) await ch.basicPublish("", queue, b);
    const got: Message[] = [];
    for (let i = 0; i < 3; i++) got.push((await ch.basicGet(queue))!);
    got[2]!.nack(true, true);
    // The requeue happens in the queue process, after the nack: wait for it.
    expect(await waitFor(async () => (await count(ch, queue)) === 3, 5000, 20)).toBe(true);
    const bodies: string[] = [];
    for (let i = 0; i < 3; i++) {
      const m = await ch.basicGet(queue, { noAck: true });
      expect(m?.redelivered).toBe(true);
      bodies.push(m!.bodyText());
    }
    expect(bodies.sort()).toEqual(["1", "2", "3"]);
  });

  it("reject with requeue puts the message back, flagged redelivered; without requeue drops it", async () => {
    const { ch, queue } = await setup();
    await ch.basicPublish("", queue, "r");
    (await ch.basicGet(queue))!.reject(true);
    const again = await ch.basicGet(queue);
    expect(again?.redelivered).toBe(true);
    again!.reject(false);
    expect(await ch.basicGet(queue)).toBeNull();
  });

  it("basicNack / basicReject by delivery tag behave like the Message helpers", async () => {
    const { ch, queue } = await setup();
    await ch.basicPublish("", queue, "x");
    const m = await ch.basicGet(queue);
    ch.basicNack(m!.deliveryTag, { requeue: true });
    const m2 = await ch.basicGet(queue);
    expect(m2?.redelivered).toBe(true);
    ch.basicReject(m2!.deliveryTag, false);
    expect(await count(ch, queue)).toBe(0);
  });

  it("basicRecover(true) redelivers unacked messages", async () => {
    const { ch, queue } = await setup();
    await ch.basicPublish("", queue, "recover me");
    const m = await ch.basicGet(queue);
    expect(m?.redelivered).toBe(false);
    expect(await count(ch, queue)).toBe(0);
    await ch.basicRecover(true);
    const again = await ch.basicGet(queue, { noAck: true });
    expect(again?.bodyText()).toBe("recover me");
    expect(again?.redelivered).toBe(true);
  });

  it("acking an unknown delivery tag closes the channel with PreconditionFailedError (406)", async () => {
    const { conn, ch } = await broker.channel();
    const closed = new Promise<WarrenError | undefined>((resolve) => ch.once("close", resolve));
    ch.basicAck(999);
    const err = await within(5000, closed, "channel close");
    expect(err).toBeInstanceOf(PreconditionFailedError);
    expect(err).toMatchObject({ replyCode: 406, classId: 60, methodId: 80 });
    expect(() => ch.basicAck(1)).toThrow(PreconditionFailedError);
    expect(conn.closed).toBe(false);
  });
});

describe("basic.qos / basic.consume / basic.cancel", () => {
  it("consumes in publish order with a custom consumer tag, and cancel ends the iterator", async () => {
    const { ch, queue } = await setup();
    for (let i = 0; i < 10; i++) await ch.basicPublish("", queue, `m${i}`);
    const consumer = await ch.basicConsume(queue, { consumerTag: "warren-tag-1" });
    expect(consumer.consumerTag).toBe("warren-tag-1");
    const got: string[] = [];
    const loop = (async () => {
      for await (const m of consumer) {
        expect(m.consumerTag).toBe("warren-tag-1");
        // First deliveries often share a read with consume-ok: they must reach the consumer, not bounce.
        expect(m.redelivered).toBe(false);
        got.push(m.bodyText());
        m.ack();
        if (got.length === 10) await ch.basicCancel("warren-tag-1");
      }
    })();
    await within(5000, loop, "consumer loop");
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
    expect(consumer.closed).toBe(true);
    expect((await ch.queueDeclare(queue, { passive: true })).consumerCount).toBe(0);
  });

  it("a broker-generated consumer tag is reported", async () => {
    const { ch, queue } = await setup();
    const consumer = await ch.basicConsume(queue);
    expect(consumer.consumerTag).toMatch(/^amq\.ctag-/);
    await consumer.cancel();
  });

  it("noAck consumers get messages already settled: nothing returns when the channel closes", async () => {
    const { conn, ch } = await broker.channel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    for (let i = 0; i < 5; i++) await ch.basicPublish("", queue, `m${i}`);
    const got: string[] = [];
    const consumer = await ch.basicConsume(queue, { noAck: true }, (m) => got.push(m.bodyText()));
    expect(await waitFor(() => got.length === 5, 5000)).toBe(true);
    await consumer.cancel();
    await ch.close();
    const ch2 = await conn.openChannel();
    expect(await count(ch2, queue)).toBe(0);
    expect(got).toEqual(["m0", "m1", "m2", "m3", "m4"]);
  });

  it("messages already waiting reach a new consumer first time, in order (consume-ok and deliveries in one read)", async () => {
    const { ch, queue } = await setup();
    await Promise.all(Array.from({ length: 50 }, (_, i) => ch.basicPublish("", queue, `m${i}`)));
    for (const noAck of [false, true]) {
      const got: Message[] = [];
      const consumer = await ch.basicConsume(queue, { noAck }, (m) => got.push(m));
      expect(await waitFor(() => got.length === 50, 5000)).toBe(true);
      await consumer.cancel();
      expect(got.map((m) => m.bodyText())).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
      // First round: first deliveries. Second round: the same messages, requeued below.
      expect(got.every((m) => m.redelivered === noAck)).toBe(true);
      if (!noAck) {
        got[49]!.nack(true, true);
        expect(await waitFor(async () => (await count(ch, queue)) === 50, 5000)).toBe(true);
      }
    }
    expect(await count(ch, queue)).toBe(0);
  });

  it("qos limits unacked deliveries per consumer; acking lets more through", async () => {
    const { ch, queue } = await setup();
    for (let i = 0; i < 10; i++) await ch.basicPublish("", queue, `m${i}`);
    await ch.basicQos(3);
    const got: Message[] = [];
    const consumer = await ch.basicConsume(queue, {}, (m) => got.push(m));
    expect(await waitFor(() => got.length === 3, 5000)).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(got.length).toBe(3);
    got[2]!.ack(true);
    expect(await waitFor(() => got.length === 6, 5000)).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(got.length).toBe(6);
    await consumer.cancel();
  });

  it("global qos limits the whole channel", async () => {
    const { ch, queue } = await setup();
    for (let i = 0; i < 6; i++) await ch.basicPublish("", queue, `m${i}`);
    await ch.basicQos(2, { global: true });
    let n = 0;
    const c1 = await ch.basicConsume(queue, {}, () => n++);
    const c2 = await ch.basicConsume(queue, {}, () => n++);
    expect(await waitFor(() => n === 2, 5000)).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(n).toBe(2);
    await c1.cancel();
    await c2.cancel();
  });
});
