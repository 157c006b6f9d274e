/**
 * queue.declare / bind / unbind / purge / delete against RabbitMQ. Publishes use confirm mode, so a resolved
 * basicPublish means the message is in its queue and counts can be compared exactly.
 */
import { describe, expect, it } from "vitest";
import { type Channel, type Connection, MessageReturnedError, NotFoundError, PreconditionFailedError, ResourceLockedError } from "../../src/index.ts";
import { recordUnhandledRejections, uniqueName, useConnections, waitFor } from "../support/broker.ts";

recordUnhandledRejections();
const broker = useConnections();

async function publishAll(ch: Channel, queue: string, bodies: string[]): Promise<void> {
  await Promise.all(bodies.map((b) => ch.basicPublish("", queue, b)));
}

/** Passive declare on a throw-away channel: the counts, or undefined when the queue does not exist. */
async function peek(conn: Connection, queue: string): Promise<{ messageCount: number; consumerCount: number } | undefined> {
  const probe = await conn.openChannel();
  try {
    const r = await probe.queueDeclare(queue, { passive: true });
    await probe.close();
    return { messageCount: r.messageCount, consumerCount: r.consumerCount };
  } catch (e) {
    if (e instanceof NotFoundError) return undefined;
    throw e;
  }
}

describe("queue.declare", () => {
  it("lets the broker name the queue when the name is empty", async () => {
    const { ch } = await broker.channel();
    const r = await ch.queueDeclare("", { exclusive: true });
    expect(r.queue).toMatch(/^amq\.gen-/);
    expect(r).toMatchObject({ messageCount: 0, consumerCount: 0 });
    const again = await ch.queueDeclare(r.queue, { passive: true });
    expect(again.queue).toBe(r.queue);
  });

  it("passive reports message and consumer counts", async () => {
    const { ch } = await broker.channel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    await publishAll(ch, queue, ["a", "b", "c"]);
    expect(await ch.queueDeclare(queue, { passive: true })).toEqual({ queue, messageCount: 3, consumerCount: 0 });
    const consumer = await ch.basicConsume(queue, { noAck: false });
    await ch.basicQos(1); // irrelevant for the count, and a round trip after consume-ok
    const r = await ch.queueDeclare(queue, { passive: true });
    expect(r.consumerCount).toBe(1);
    await consumer.cancel();
    expect((await ch.queueDeclare(queue, { passive: true })).consumerCount).toBe(0);
  });

  it("passive on a missing queue rejects with NotFoundError (404, queue.declare)", async () => {
    const { ch, conn } = await broker.channel();
    const err = await ch.queueDeclare(uniqueName(), { passive: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toMatchObject({ replyCode: 404, classId: 50, methodId: 10 });
    expect(ch.closed).toBe(true);
    expect(conn.closed).toBe(false);
  });

  it("exclusive queues are locked to their connection (405 for another)", async () => {
    const { ch } = await broker.channel();
    const name = uniqueName();
    await ch.queueDeclare(name, { exclusive: true });
    const { ch: other } = await broker.channel();
    const err = await other.queueDeclare(name, { passive: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceLockedError);
    expect(err).toMatchObject({ replyCode: 405 });
  });

  it("exclusive queues go away with their connection", async () => {
    const conn = await broker.open();
    const ch = await conn.openChannel();
    const name = uniqueName();
    await ch.queueDeclare(name, { exclusive: true });
    const observer = await broker.open();
    // Another connection sees the queue, locked.
    await expect(peek(observer, name)).rejects.toBeInstanceOf(ResourceLockedError);
    await conn.close();
    expect(await waitFor(async () => (await peek(observer, name)) === undefined, 5000, 50)).toBe(true);
  });

  it("autoDelete queues are deleted when their last consumer goes", async () => {
    const { conn, ch } = await broker.channel();
    const name = uniqueName();
    broker.cleanup("queue", name);
    await ch.queueDeclare(name, { autoDelete: true });
    const consumer = await ch.basicConsume(name);
    expect(await peek(conn, name)).toEqual({ messageCount: 0, consumerCount: 1 });
    await consumer.cancel();
    expect(await waitFor(async () => (await peek(conn, name)) === undefined, 5000, 50)).toBe(true);
  });

  it("durable is remembered: redeclaring as non-durable fails with 406", async () => {
    const { conn, ch } = await broker.channel();
    const name = uniqueName();
    broker.cleanup("queue", name);
    await ch.queueDeclare(name, { durable: true });
    await ch.queueDeclare(name, { durable: true });
    const err = await ch.queueDeclare(name, { durable: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PreconditionFailedError);
    expect((err as Error).message).toMatch(/durable/);
    const ch2 = await conn.openChannel();
    await ch2.queueDelete(name);
  });

  it("passes arguments: x-max-length keeps only the newest messages", async () => {
    const { ch } = await broker.channel();
    const { queue } = await ch.queueDeclare("", { exclusive: true, arguments: { "x-max-length": 2 } });
    await ch.confirmSelect();
    for (const b of ["1", "2", "3", "4", "5"]) await ch.basicPublish("", queue, b);
    expect((await ch.queueDeclare(queue, { passive: true })).messageCount).toBe(2);
    expect((await ch.basicGet(queue, { noAck: true }))?.bodyText()).toBe("4");
    expect((await ch.basicGet(queue, { noAck: true }))?.bodyText()).toBe("5");
    expect(await ch.basicGet(queue)).toBeNull();
  });

  it("noWait declare creates the queue before later requests on the channel", async () => {
    const { ch } = await broker.channel();
    const name = uniqueName();
    broker.cleanup("queue", name);
    expect(await ch.queueDeclare(name, { exclusive: true, noWait: true })).toEqual({ queue: name, messageCount: 0, consumerCount: 0 });
    expect((await ch.queueDeclare(name, { passive: true })).queue).toBe(name);
  });
});

describe("queue.bind / queue.unbind", () => {
  for (const noWait of [false, true]) {
    it(`bind routes matching messages (noWait: ${noWait}); unbind stops the routing`, async () => {
      const { ch } = await broker.channel();
      const exchange = uniqueName();
      broker.cleanup("exchange", exchange);
      await ch.exchangeDeclare(exchange, "direct");
      const { queue } = await ch.queueDeclare("", { exclusive: true });
      await ch.queueBind(queue, exchange, "red", {}, { noWait });
      await ch.confirmSelect();
      await ch.basicPublish(exchange, "red", "r1", {}, { mandatory: true });
      await expect(ch.basicPublish(exchange, "blue", "b1", {}, { mandatory: true })).rejects.toBeInstanceOf(MessageReturnedError);
      expect((await ch.basicGet(queue, { noAck: true }))?.bodyText()).toBe("r1");

      await ch.queueUnbind(queue, exchange, "red");
      await expect(ch.basicPublish(exchange, "red", "r2", {}, { mandatory: true })).rejects.toMatchObject({ replyCode: 312 });
      expect(await ch.basicGet(queue)).toBeNull();
    });
  }

  it("binding to a missing exchange fails with NotFoundError (queue.bind)", async () => {
    const { ch } = await broker.channel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await expect(ch.queueBind(queue, uniqueName(), "k")).rejects.toMatchObject({ name: "NotFoundError", replyCode: 404, classId: 50, methodId: 20 });
  });
});

describe("queue.purge", () => {
  it("removes ready messages and reports how many", async () => {
    const { ch } = await broker.channel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    await publishAll(ch, queue, ["a", "b", "c"]);
    expect(await ch.queuePurge(queue)).toEqual({ messageCount: 3 });
    expect(await ch.basicGet(queue)).toBeNull();
    expect(await ch.queuePurge(queue)).toEqual({ messageCount: 0 });
  });

  it("noWait purge takes effect before later requests", async () => {
    const { ch } = await broker.channel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    await publishAll(ch, queue, ["a", "b"]);
    expect(await ch.queuePurge(queue, { noWait: true })).toEqual({ messageCount: 0 });
    expect((await ch.queueDeclare(queue, { passive: true })).messageCount).toBe(0);
  });
});

describe("queue.delete", () => {
  it("deletes the queue and reports the messages it held", async () => {
    const { conn, ch } = await broker.channel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    await publishAll(ch, queue, ["a", "b", "c", "d"]);
    expect(await ch.queueDelete(queue)).toEqual({ messageCount: 4 });
    expect(await peek(conn, queue)).toBeUndefined();
  });

  it("ifEmpty refuses to delete a queue holding messages (406, queue.delete)", async () => {
    const { conn, ch } = await broker.channel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    await ch.basicPublish("", queue, "x");
    const err = await ch.queueDelete(queue, { ifEmpty: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PreconditionFailedError);
    expect(err).toMatchObject({ replyCode: 406, classId: 50, methodId: 40 });
    expect(await peek(conn, queue)).toEqual({ messageCount: 1, consumerCount: 0 });
  });

  it("ifUnused refuses to delete a queue with consumers (406)", async () => {
    const { conn, ch } = await broker.channel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.basicConsume(queue);
    const ch2 = await conn.openChannel();
    await expect(ch2.queueDelete(queue, { ifUnused: true })).rejects.toMatchObject({ name: "PreconditionFailedError", replyCode: 406 });
    expect(await peek(conn, queue)).toEqual({ messageCount: 0, consumerCount: 1 });
  });

  it("ifEmpty and ifUnused succeed on an empty, unused queue", async () => {
    const { conn, ch } = await broker.channel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    expect(await ch.queueDelete(queue, { ifEmpty: true, ifUnused: true })).toEqual({ messageCount: 0 });
    expect(await peek(conn, queue)).toBeUndefined();
  });

  it("noWait delete takes effect before later requests", async () => {
    const { conn, ch } = await broker.channel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    expect(await ch.queueDelete(queue, { noWait: true })).toEqual({ messageCount: 0 });
    await ch.basicQos(10); // a round trip on the same channel
    expect(await peek(conn, queue)).toBeUndefined();
  });
});
