/**
 * Broker-side errors: a channel error closes that channel only (and settles everything pending on it); a
 * connection error closes everything on the connection. Either way every promise settles with an error of the
 * right family.
 */
import { describe, expect, it } from "vitest";
import {
  ChannelClosedError,
  ConnectionClosedError,
  PreconditionFailedError,
  ProtocolError,
  type WarrenError,
} from "../../src/index.ts";
import { recordUnhandledRejections, uniqueName, useConnections, within } from "../support/broker.ts";

recordUnhandledRejections();
const broker = useConnections();

describe("a channel error", () => {
  it("rejects with PreconditionFailedError 406 (queue.declare) and leaves the connection and other channels usable", async () => {
    const { conn, ch } = await broker.channel();
    const other = await conn.openChannel();
    const queue = uniqueName(); // a server-named queue cannot be redeclared at all (403): name it
    await other.queueDeclare(queue, { exclusive: true, arguments: { "x-max-length": 10 } });
    const closeEvents: (WarrenError | undefined)[] = [];
    ch.on("close", (e) => closeEvents.push(e));
    let connClosed = false;
    conn.on("close", () => (connClosed = true));

    const err = await ch.queueDeclare(queue, { exclusive: true, arguments: { "x-max-length": 20 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PreconditionFailedError);
    expect(err).toMatchObject({ code: "PRECONDITION_FAILED", replyCode: 406, classId: 50, methodId: 10 });
    expect((err as Error).message).toMatch(/x-max-length/);
    expect(ch.closed).toBe(true);
    expect(closeEvents).toHaveLength(1);
    expect(closeEvents[0]).toBeInstanceOf(PreconditionFailedError);

    // The other channel and the connection carry on.
    expect(conn.closed).toBe(false);
    expect(connClosed).toBe(false);
    await other.confirmSelect();
    await other.basicPublish("", queue, "still works");
    expect((await other.basicGet(queue, { noAck: true }))?.bodyText()).toBe("still works");
    const fresh = await conn.openChannel();
    expect((await fresh.queueDeclare(queue, { passive: true })).queue).toBe(queue);
  });

  it("makes later calls on the failed channel reject with the same error family", async () => {
    const { conn, ch } = await broker.channel();
    const queue = uniqueName();
    await ch.queueDeclare(queue, { exclusive: true });
    await expect(ch.queueDeclare(queue, { exclusive: true, arguments: { "x-max-priority": 3 } })).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(ch.closed).toBe(true);
    const attempts: Promise<unknown>[] = [
      ch.queueDeclare(queue, { passive: true }),
      ch.exchangeDeclare("amq.direct", "direct", { passive: true }),
      ch.basicGet(queue),
      ch.basicConsume(queue),
      ch.basicPublish("", queue, "x"),
      ch.basicQos(1),
      ch.confirmSelect(),
    ];
    for (const r of await Promise.allSettled(attempts)) {
      expect(r.status).toBe("rejected");
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(PreconditionFailedError);
      expect((r as PromiseRejectedResult).reason).toMatchObject({ replyCode: 406 });
    }
    expect(() => ch.basicAck(1)).toThrow(PreconditionFailedError);
    expect(() => ch.tryPublish("", queue, "x")).toThrow(PreconditionFailedError);
    // Closing an already-closed channel is a no-op.
    await expect(ch.close()).resolves.toBeUndefined();
    expect(conn.closed).toBe(false);
  });

  it("rejects every request and confirm still pending on the channel", async () => {
    const { conn, ch } = await broker.channel();
    const helper = await conn.openChannel();
    const queue = uniqueName();
    await helper.queueDeclare(queue, { exclusive: true });
    await ch.confirmSelect();
    // All sent in one turn: the failing declare is in flight, the rest wait behind it (or behind its reply).
    const failing = ch.queueDeclare(queue, { exclusive: true, arguments: { "x-message-ttl": 1 } });
    const pending: Promise<unknown>[] = [
      ch.queueDeclare("", { exclusive: true }),
      ch.basicGet(queue),
      ch.exchangeDeclare("amq.fanout", "fanout", { passive: true }),
      ch.basicPublish("", queue, "a"),
      ch.basicPublish("", queue, "b"),
      ch.basicQos(10),
    ];
    const results = await within(5000, Promise.allSettled([failing, ...pending]), "requests on the failed channel");
    for (const r of results) {
      expect(r.status).toBe("rejected");
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(PreconditionFailedError);
    }
    // Nothing queued behind the failure reached the broker.
    expect((await helper.queueDeclare(queue, { passive: true })).messageCount).toBe(0);
    expect(conn.closed).toBe(false);
  });

  it("new channels open and work after a channel error", async () => {
    const { conn, ch } = await broker.channel();
    await ch.exchangeDeclare("amq.nonexistent.x", "direct", { passive: true }).catch(() => undefined);
    expect(ch.closed).toBe(true);
    const again = await conn.openChannel();
    expect(again.id).not.toBe(0);
    await again.queueDeclare("", { exclusive: true });
    // The old Channel object stays closed.
    await expect(ch.basicQos(1)).rejects.toBeInstanceOf(Error);
  });

  it("closing a channel normally rejects what is pending with ChannelClosedError", async () => {
    const { ch } = await broker.channel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    const closing = ch.close();
    const after = ch.basicGet(queue).catch((e: unknown) => e);
    await closing;
    const err = await after;
    expect(err).toBeInstanceOf(ChannelClosedError);
    expect(ch.closed).toBe(true);
    await expect(ch.queueDeclare(queue, { passive: true })).rejects.toBeInstanceOf(ChannelClosedError);
  });
});

describe("a connection error", () => {
  // Recovery off: these pin what a connection error does to everything on the connection.
  it("channel.flow active=false is answered by RabbitMQ with 540 NOT_IMPLEMENTED, closing the connection", async () => {
    const { conn, ch } = await broker.channel({ recovery: false });
    const other = await conn.openChannel();
    // active=true is accepted.
    expect(await ch.channelFlow(true)).toBe(true);
    expect(ch.flowActive).toBe(true);

    const connClose = new Promise<WarrenError | undefined>((resolve) => conn.once("close", resolve));
    const otherClose = new Promise<WarrenError | undefined>((resolve) => other.once("close", resolve));
    const err = await ch.channelFlow(false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err).toMatchObject({ replyCode: 540, classId: 20, methodId: 20 });
    const connErr = await within(5000, connClose, "connection close");
    expect(connErr).toBeInstanceOf(ProtocolError);
    expect(connErr).toMatchObject({ replyCode: 540 });
    expect(await within(1000, otherClose, "other channel close")).toBeInstanceOf(ProtocolError);
    expect(conn.closed).toBe(true);
    expect(other.closed).toBe(true);
    // Everything afterwards fails the same way.
    await expect(conn.openChannel()).rejects.toMatchObject({ replyCode: 540 });
    await expect(other.queueDeclare("")).rejects.toBeInstanceOf(ProtocolError);
    await expect(conn.close()).resolves.toBeUndefined();
  });

  it("basic.recover requeue=false is answered with 540, and pending work on every channel rejects", async () => {
    const { conn, ch } = await broker.channel({ recovery: false });
    const other = await conn.openChannel();
    const { queue } = await other.queueDeclare("", { exclusive: true });
    const consumer = await other.basicConsume(queue);
    const loop = (async () => {
      for await (const m of consumer) m.ack();
    })();
    const results = await within(5000, Promise.allSettled([ch.basicRecover(false), loop]), "everything");
    expect(results[0].status).toBe("rejected");
    expect((results[0] as PromiseRejectedResult).reason).toMatchObject({ name: "ProtocolError", replyCode: 540, classId: 60, methodId: 110 });
    expect(results[1].status).toBe("rejected");
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(ProtocolError);
    expect(conn.closed).toBe(true);
  });

  it("after close() every call rejects with ConnectionClosedError", async () => {
    const { conn, ch } = await broker.channel();
    await conn.close();
    expect(conn.closed).toBe(true);
    expect(ch.closed).toBe(true);
    await expect(conn.openChannel()).rejects.toBeInstanceOf(ConnectionClosedError);
    await expect(conn.updateSecret("x")).rejects.toBeInstanceOf(ConnectionClosedError);
    await expect(ch.queueDeclare("")).rejects.toBeInstanceOf(ConnectionClosedError);
    await expect(ch.basicPublish("", "q", "x")).rejects.toBeInstanceOf(ConnectionClosedError);
    await expect(conn.close()).resolves.toBeUndefined();
  });
});
