/**
 * exchange.declare / delete / bind / unbind against RabbitMQ: what the broker ends up with, checked by
 * passive declares and by where published messages land.
 */
import { describe, expect, it } from "vitest";
import { type Connection, MessageReturnedError, NotFoundError, PreconditionFailedError, AccessRefusedError, type WarrenError } from "../../src/index.ts";
import { recordUnhandledRejections, uniqueName, useConnections } from "../support/broker.ts";

recordUnhandledRejections();
const broker = useConnections();

async function exchangeExists(conn: Connection, name: string): Promise<boolean> {
  // A passive declare of a missing exchange closes the channel, so ask on a throw-away one.
  const probe = await conn.openChannel();
  try {
    await probe.exchangeDeclare(name, "direct", { passive: true });
    await probe.close();
    return true;
  } catch (e) {
    if (e instanceof NotFoundError) return false;
    throw e;
  }
}

describe("exchange.declare", () => {
  it("creates an exchange that a passive declare then finds", async () => {
    const { ch } = await broker.channel();
    const name = uniqueName();
    broker.cleanup("exchange", name);
    await ch.exchangeDeclare(name, "topic", { durable: false, autoDelete: false });
    await ch.exchangeDeclare(name, "topic", { passive: true });
    // Redeclaring with the same attributes is fine.
    await ch.exchangeDeclare(name, "topic");
    expect(ch.closed).toBe(false);
  });

  it("passive on a missing exchange rejects with NotFoundError (404, exchange.declare) and closes the channel", async () => {
    const { conn, ch } = await broker.channel();
    const closeEvents: (WarrenError | undefined)[] = [];
    ch.on("close", (e) => closeEvents.push(e));
    const err = await ch.exchangeDeclare(uniqueName(), "direct", { passive: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toMatchObject({ code: "NOT_FOUND", replyCode: 404, classId: 40, methodId: 10 });
    expect(ch.closed).toBe(true);
    expect(closeEvents).toHaveLength(1);
    expect(closeEvents[0]).toBeInstanceOf(NotFoundError);
    // Further calls on the closed channel fail the same way; the connection is fine.
    await expect(ch.exchangeDeclare("amq.direct", "direct", { passive: true })).rejects.toBeInstanceOf(NotFoundError);
    expect(conn.closed).toBe(false);
    const ch2 = await conn.openChannel();
    await ch2.exchangeDeclare("amq.direct", "direct", { passive: true });
  });

  it("redeclaring with another type fails with PreconditionFailedError 406", async () => {
    const { ch, conn } = await broker.channel();
    const name = uniqueName();
    broker.cleanup("exchange", name);
    await ch.exchangeDeclare(name, "direct");
    const err = await ch.exchangeDeclare(name, "fanout").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PreconditionFailedError);
    expect(err).toMatchObject({ replyCode: 406, classId: 40, methodId: 10 });
    expect(ch.closed).toBe(true);
    expect(conn.closed).toBe(false);
  });

  it("an internal exchange cannot be published to directly (403 on the channel)", async () => {
    const { ch, conn } = await broker.channel();
    const name = uniqueName();
    broker.cleanup("exchange", name);
    await ch.exchangeDeclare(name, "fanout", { internal: true });
    await ch.confirmSelect();
    const err = await ch.basicPublish(name, "", "x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AccessRefusedError);
    expect(err).toMatchObject({ replyCode: 403 });
    expect(conn.closed).toBe(false);
  });

  it("noWait declare and delete take effect, in order with later requests", async () => {
    const { conn, ch } = await broker.channel();
    const name = uniqueName();
    broker.cleanup("exchange", name);
    await expect(ch.exchangeDeclare(name, "fanout", { noWait: true })).resolves.toBeUndefined();
    await ch.exchangeDeclare(name, "fanout", { passive: true });
    await ch.exchangeDelete(name, { noWait: true });
    // A round trip on the same channel: the broker handles a channel's methods in order.
    await ch.exchangeDeclare("amq.direct", "direct", { passive: true });
    expect(await exchangeExists(conn, name)).toBe(false);
  });
});

describe("exchange.delete", () => {
  it("removes the exchange", async () => {
    const { conn, ch } = await broker.channel();
    const name = uniqueName();
    broker.cleanup("exchange", name);
    await ch.exchangeDeclare(name, "direct");
    expect(await exchangeExists(conn, name)).toBe(true);
    await ch.exchangeDelete(name);
    expect(await exchangeExists(conn, name)).toBe(false);
  });

  it("ifUnused refuses to delete an exchange with bindings (406)", async () => {
    const { ch } = await broker.channel();
    const name = uniqueName();
    broker.cleanup("exchange", name);
    await ch.exchangeDeclare(name, "direct");
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.queueBind(queue, name, "k");
    const err = await ch.exchangeDelete(name, { ifUnused: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PreconditionFailedError);
    expect(err).toMatchObject({ replyCode: 406, classId: 40, methodId: 20 });
    const conn2 = await broker.open();
    expect(await exchangeExists(conn2, name)).toBe(true);
  });
});

describe("exchange.bind / exchange.unbind", () => {
  async function setup(noWait: boolean) {
    const { ch } = await broker.channel();
    const source = uniqueName();
    const destination = uniqueName();
    broker.cleanup("exchange", source);
    broker.cleanup("exchange", destination);
    await ch.exchangeDeclare(source, "topic");
    await ch.exchangeDeclare(destination, "fanout");
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.queueBind(queue, destination);
    await ch.exchangeBind(destination, source, "orders.*", {}, { noWait });
    await ch.confirmSelect();
    return { ch, source, destination, queue };
  }

  for (const noWait of [false, true]) {
    it(`routes messages from the source exchange to the destination (noWait: ${noWait}), and unbind stops it`, async () => {
      const { ch, source, destination, queue } = await setup(noWait);
      await ch.basicPublish(source, "orders.new", "routed", {}, { mandatory: true });
      const m = await ch.basicGet(queue, { noAck: true });
      expect(m?.bodyText()).toBe("routed");
      expect(m?.exchange).toBe(source);
      expect(m?.routingKey).toBe("orders.new");
      // A key the binding does not match is not routed.
      await expect(ch.basicPublish(source, "invoices.new", "x", {}, { mandatory: true })).rejects.toBeInstanceOf(MessageReturnedError);

      await ch.exchangeUnbind(destination, source, "orders.*", {}, { noWait });
      const err = await ch.basicPublish(source, "orders.new", "after unbind", {}, { mandatory: true }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MessageReturnedError);
      expect(err).toMatchObject({ replyCode: 312 });
      expect(await ch.basicGet(queue)).toBeNull();
    });
  }
});
