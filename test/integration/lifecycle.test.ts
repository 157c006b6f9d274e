/**
 * Every promise settles: AbortSignals reject what they abort (and leave the channel usable, with nothing left
 * behind on the broker), and a connection that closes — by the application or by the network — rejects
 * everything still pending with a connection-closed family error.
 */
import { describe, expect, it } from "vitest";
import {
  AbortError,
  type Channel,
  ConnectionClosedError,
  connect,
  type Connection,
  isWarrenError,
  TransportError,
  type WarrenError,
} from "../../src/index.ts";
import { startProxy } from "../support/proxy.ts";
import { amqpUrl, recordUnhandledRejections, sleep, uniqueName, useConnections, waitFor, within } from "../support/broker.ts";

recordUnhandledRejections();
const broker = useConnections();

async function counts(conn: Connection, queue: string): Promise<{ messageCount: number; consumerCount: number }> {
  const probe = await conn.openChannel();
  const r = await probe.queueDeclare(queue, { passive: true });
  await probe.close();
  return r;
}

async function setup(): Promise<{ conn: Connection; ch: Channel; queue: string }> {
  const { conn, ch } = await broker.channel();
  const { queue } = await ch.queueDeclare("", { exclusive: true });
  return { conn, ch, queue };
}

function expectAbort(e: unknown): void {
  expect(e).toBeInstanceOf(AbortError);
  expect(e).toMatchObject({ code: "ABORTED", name: "AbortError" });
  expect(isWarrenError(e)).toBe(true);
}

describe("AbortSignal", () => {
  it("an already-aborted signal rejects every kind of call with AbortError and sends nothing", async () => {
    const { conn, ch, queue } = await setup();
    await ch.confirmSelect();
    const signal = AbortSignal.abort();
    const calls: Promise<unknown>[] = [
      ch.queueDeclare(uniqueName(), { signal }),
      ch.exchangeDeclare(uniqueName(), "direct", { signal }),
      ch.basicGet(queue, { signal }),
      ch.basicConsume(queue, { signal }),
      ch.basicPublish("", queue, "never sent", {}, { signal }),
      ch.basicQos(1, { signal }),
      ch.queuePurge(queue, { signal }),
      conn.openChannel({ signal }),
    ];
    for (const r of await Promise.allSettled(calls)) {
      expect(r.status).toBe("rejected");
      expectAbort((r as PromiseRejectedResult).reason);
    }
    expect(ch.closed).toBe(false);
    const after = await counts(conn, queue);
    expect(after).toEqual({ queue, messageCount: 0, consumerCount: 0 });
    // The channel still works, and its replies line up with its requests.
    expect((await ch.queueDeclare(queue, { passive: true })).queue).toBe(queue);
  });

  it("aborting a request in flight rejects it at once; the late reply does not confuse later requests", async () => {
    const { ch, queue } = await setup();
    const ac = new AbortController();
    const named = uniqueName();
    const aborted = ch.queueDeclare(named, { exclusive: true, signal: ac.signal });
    ac.abort();
    expectAbort(await aborted.catch((e: unknown) => e));
    // The declare still happened on the broker; the next reply belongs to the next request.
    const r = await ch.queueDeclare(queue, { passive: true });
    expect(r.queue).toBe(queue);
    expect((await ch.queueDeclare(named, { passive: true })).queue).toBe(named);
    expect(ch.closed).toBe(false);
  });

  it("AbortSignal.timeout on a request that is already answered changes nothing", async () => {
    const { ch, queue } = await setup();
    const r = await ch.queueDeclare(queue, { passive: true, signal: AbortSignal.timeout(5000) });
    expect(r.queue).toBe(queue);
  });

  it("aborting basicGet in flight gives a fetched message back to the queue", async () => {
    const { conn, ch, queue } = await setup();
    await ch.confirmSelect();
    await ch.basicPublish("", queue, "keep me");
    const ac = new AbortController();
    const get = ch.basicGet(queue, { signal: ac.signal });
    ac.abort();
    expectAbort(await get.catch((e: unknown) => e));
    // The get-ok arrives anyway; the message must not stay unacked on the channel forever.
    expect(await waitFor(async () => (await counts(conn, queue)).messageCount === 1, 5000, 50)).toBe(true);
    const m = await ch.basicGet(queue, { noAck: true });
    expect(m?.bodyText()).toBe("keep me");
  });

  it("aborting basicConsume in flight leaves no consumer on the broker and loses no messages", async () => {
    const { conn, ch, queue } = await setup();
    await ch.confirmSelect();
    await Promise.all(Array.from({ length: 5 }, (_, i) => ch.basicPublish("", queue, `m${i}`)));
    const ac = new AbortController();
    const consume = ch.basicConsume(queue, { signal: ac.signal });
    ac.abort();
    expectAbort(await consume.catch((e: unknown) => e));
    expect(await waitFor(async () => {
      const c = await counts(conn, queue);
      return c.consumerCount === 0 && c.messageCount === 5;
    }, 5000, 50)).toBe(true);
    expect(ch.closed).toBe(false);
    // A consumer started afterwards gets all five.
    const got: string[] = [];
    const consumer = await ch.basicConsume(queue, { noAck: true }, (m) => got.push(m.bodyText()));
    expect(await waitFor(() => got.length === 5, 5000)).toBe(true);
    expect([...got].sort()).toEqual(["m0", "m1", "m2", "m3", "m4"]);
    await consumer.cancel();
  });

  it("aborting a confirmed publish rejects it with AbortError; the channel keeps confirming later ones", async () => {
    const { ch, queue } = await setup();
    await ch.confirmSelect();
    const ac = new AbortController();
    const publish = ch.basicPublish("", queue, "maybe", {}, { signal: ac.signal });
    ac.abort();
    expectAbort(await publish.catch((e: unknown) => e));
    await expect(ch.basicPublish("", queue, "surely")).resolves.toBeUndefined();
  });

  it("aborting openChannel in flight rejects it and the connection keeps working", async () => {
    // One channel allowed: if the aborted one (which the broker opens anyway) leaked, no other could open.
    const conn = await broker.open({ channelMax: 1 });
    const ac = new AbortController();
    const opening = conn.openChannel({ signal: ac.signal });
    ac.abort();
    expectAbort(await opening.catch((e: unknown) => e));
    let ch: Channel | undefined;
    expect(await waitFor(async () => {
      ch = await conn.openChannel().catch(() => undefined);
      return ch !== undefined;
    }, 5000)).toBe(true);
    if (!ch) throw new Error("unreachable");
    await ch.queueDeclare("", { exclusive: true });
    expect(conn.closed).toBe(false);
  });
});

describe("closing with work pending", () => {
  it("conn.close() rejects pending requests and confirms with ConnectionClosedError and ends consumers", async () => {
    const conn = await connect(amqpUrl());
    const ch = await conn.openChannel();
    const other = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    const consumer = await other.basicConsume(queue);
    const loop = (async () => {
      const got: string[] = [];
      for await (const m of consumer) got.push(m.bodyText());
      return got;
    })();
    const chClosed = new Promise<WarrenError | undefined>((resolve) => ch.once("close", resolve));
    const connClosed = new Promise<WarrenError | undefined>((resolve) => conn.once("close", resolve));

    // All issued in the same turn as close(): none can be answered before connection.close goes out.
    const pending: Promise<unknown>[] = [
      ch.queueDeclare(uniqueName(), { exclusive: true }),
      ch.basicGet(queue),
      ch.exchangeDeclare("amq.topic", "topic", { passive: true }),
      ...Array.from({ length: 20 }, (_, i) => ch.basicPublish("", queue, `p${i}`)),
      other.basicQos(5),
      conn.openChannel(),
    ];
    const closing = conn.close();
    const results = await within(10_000, Promise.allSettled(pending), "pending work");
    for (const r of results) {
      expect(r.status).toBe("rejected");
      const e = (r as PromiseRejectedResult).reason as WarrenError;
      expect(e).toBeInstanceOf(ConnectionClosedError);
      expect(e.code).toBe("CONNECTION_CLOSED");
    }
    await within(10_000, closing, "close()");
    // A normal close ends consumers and fires close events without an error.
    expect(await within(5000, loop, "consumer loop")).toEqual([]);
    expect(await within(1000, chClosed, "channel close event")).toBeUndefined();
    expect(await within(1000, connClosed, "connection close event")).toBeUndefined();
    expect(conn.closed).toBe(true);
    expect(ch.closed).toBe(true);
    expect(consumer.closed).toBe(true);
  });

  it("a connection cut by the network rejects everything with TransportError and reports it", async () => {
    const proxy = await startProxy();
    try {
      const conn = await connect(`amqp://guest:guest@127.0.0.1:${proxy.port}/`, { recovery: false });
      const ch = await conn.openChannel();
      const { queue } = await ch.queueDeclare("", { exclusive: true });
      await ch.confirmSelect();
      const consumer = await ch.basicConsume(queue);
      const loop = (async () => {
        for await (const m of consumer) m.ack();
      })();
      const connClosed = new Promise<WarrenError | undefined>((resolve) => conn.once("close", resolve));
      proxy.pause(); // nothing reaches the broker, so nothing gets answered
      const pending: Promise<unknown>[] = [
        ch.queueDeclare(uniqueName()),
        ch.basicGet(queue),
        ...Array.from({ length: 10 }, (_, i) => ch.basicPublish("", queue, `p${i}`)),
        conn.openChannel(),
        conn.updateSecret("guest"),
        loop,
      ];
      await sleep(50);
      proxy.cutAll();
      const results = await within(10_000, Promise.allSettled(pending), "pending work");
      for (const r of results) {
        expect(r.status).toBe("rejected");
        const e = (r as PromiseRejectedResult).reason;
        expect(isWarrenError(e)).toBe(true);
        expect(e).toBeInstanceOf(TransportError);
      }
      const err = await within(5000, connClosed, "close event");
      expect(err).toBeInstanceOf(TransportError);
      expect(err?.message).toMatch(/lost|closed/i);
      expect(conn.closed).toBe(true);
      await expect(conn.close()).resolves.toBeUndefined();
      await expect(ch.basicQos(1)).rejects.toBeInstanceOf(TransportError);
    } finally {
      await proxy.close();
    }
  });

  it("closing a channel with work pending rejects that channel's work only", async () => {
    const { conn, ch, queue } = await setup();
    await ch.confirmSelect();
    const other = await conn.openChannel();
    const pending = [ch.basicGet(queue), ch.queueDeclare(uniqueName(), { exclusive: true }), ch.basicQos(3)];
    const closing = ch.close();
    const results = await within(5000, Promise.allSettled(pending), "pending work");
    // What was queued behind the close never went out; what was in flight may or may not have been answered,
    // but every promise settled.
    expect(results.some((r) => r.status === "rejected")).toBe(true);
    for (const r of results) if (r.status === "rejected") expect((r.reason as WarrenError).code).toBe("CHANNEL_CLOSED");
    await within(5000, closing, "channel close");
    expect(ch.closed).toBe(true);
    expect((await other.queueDeclare(queue, { passive: true })).queue).toBe(queue);
  });
});
