/**
 * Dispatching what the broker sent never throws (issue 8, defects 3 and 12). Clean-up the client does while
 * dispatching — basic.cancel for a consume whose caller gave up, basic.reject for an abandoned basic.get or a
 * delivery nobody consumes — must not raise when the same read also closed the connection: that exception
 * would leave the transport's data callback (an uncaught exception in Node's socket listener) and stop the
 * dispatch half-way, leaving the connection wedged with promises pending.
 *
 * The same holds when the read closes only the channel: the clean-up must not raise ChannelClosedError, and
 * the connection stays usable.
 *
 * The client fuzz target (`npm run fuzz -- --target client`) finds all of these on the old client within a
 * few thousand runs (seed 7: run #12 the unknown tag, run #339 the aborted consume; seed 3: run #1511 the
 * unknown tag and run #4277 the aborted consume with a channel.close).
 */
import { describe, expect, it } from "vitest";
import { channelCloseFrame, connectionCloseFrame, deliveryFrames, method, methodFrame } from "../support/fake-peer.ts";
import { contentFrames } from "../support/fake-broker.ts";
import { openConnection, rejectionOf, settle, settledWithin } from "../support/fake-runtime.ts";
import { useProcessGuard } from "../support/process-guard.ts";

useProcessGuard();

describe("a consume aborted before consume-ok, then consume-ok and connection.close in one read", () => {
  it("settles everything and closes the connection without an exception escaping", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    const other = await conn.openChannel();
    const ac = new AbortController();
    const consuming = ch.basicConsume("q", { signal: ac.signal });
    await peer.expectMethod("basic.consume", { channel: ch.id });
    const declaring = other.queueDeclare("q2");
    await peer.expectMethod("queue.declare", { channel: other.id });
    const declareFailure = rejectionOf(declaring);
    ac.abort();
    expect(await rejectionOf(consuming)).toMatchObject({ code: "ABORTED" });

    peer.batch(methodFrame(ch.id, method("basic.consume-ok", { consumerTag: "c1" })), connectionCloseFrame(320, "CONNECTION_FORCED - shutdown"));
    await settle();

    expect(conn.closed).toBe(true);
    await settledWithin(conn.closedPromise, 1000, "closedPromise");
    expect(await declareFailure).toMatchObject({ replyCode: 320 });
  });
});

describe("a basicGet aborted before get-ok, then get-ok and connection.close in one read", () => {
  it("settles everything and closes the connection without an exception escaping", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    const other = await conn.openChannel();
    const ac = new AbortController();
    const getting = ch.basicGet("q", { signal: ac.signal });
    await peer.expectMethod("basic.get", { channel: ch.id });
    const declaring = other.queueDeclare("q2");
    await peer.expectMethod("queue.declare", { channel: other.id });
    const declareFailure = rejectionOf(declaring);
    ac.abort();
    expect(await rejectionOf(getting)).toMatchObject({ code: "ABORTED" });

    const getOk = contentFrames(ch.id, method("basic.get-ok", { deliveryTag: 1, routingKey: "q" }), new TextEncoder().encode("m"), {}, 131072);
    peer.batch(getOk, connectionCloseFrame(320, "CONNECTION_FORCED - shutdown"));
    await settle();

    expect(conn.closed).toBe(true);
    await settledWithin(conn.closedPromise, 1000, "closedPromise");
    expect(await declareFailure).toMatchObject({ replyCode: 320 });
  });
});

describe("a delivery for an unknown consumer tag, then connection.close in one read", () => {
  it("closes the connection without an exception escaping", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    const declaring = ch.queueDeclare("q");
    await peer.expectMethod("queue.declare", { channel: ch.id });
    const declareFailure = rejectionOf(declaring);
    const closeEvents: unknown[] = [];
    conn.on("close", (e) => closeEvents.push(e));

    peer.batch(deliveryFrames(ch.id, "nobody", 1, "m"), connectionCloseFrame(320, "CONNECTION_FORCED - shutdown"));
    await settle();

    expect(conn.closed).toBe(true);
    expect(closeEvents).toHaveLength(1);
    await settledWithin(conn.closedPromise, 1000, "closedPromise");
    expect(await declareFailure).toMatchObject({ replyCode: 320 });
  });
});

describe("an unexpected throw inside the client while dispatching", () => {
  // Nothing the broker sends can make the client throw any more, so the throw is planted: the channel's
  // channel.flow handler is replaced on the instance (an internal, reached into on purpose).
  it("fails the connection as a transport failure and rejects what is pending", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    const internals = ch as unknown as Record<string, unknown>;
    const hook = ["onFlow", "handleFlow", "onChannelFlow"].find((k) => typeof internals[k] === "function");
    expect(hook, "a channel.flow handler on the channel to plant the throw in").toBeDefined();
    internals[hook!] = () => {
      throw new Error("planted bug");
    };
    const declaring = ch.queueDeclare("q");
    await peer.expectMethod("queue.declare", { channel: ch.id });
    const declareFailure = rejectionOf(declaring);
    const closeEvents: (Error | undefined)[] = [];
    conn.on("close", (e) => closeEvents.push(e));

    peer.send(ch.id, method("channel.flow", { active: false }));
    await settle();

    expect(conn.closed).toBe(true);
    expect(closeEvents).toHaveLength(1);
    expect(closeEvents[0]).toMatchObject({ code: "TRANSPORT_ERROR" });
    expect(await declareFailure).toBeInstanceOf(Error);
  });
});

describe("clean-up during dispatch when the same read closes only the channel", () => {
  it("a delivery for an unknown consumer tag, then channel.close: the channel closes, the connection stays usable", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    ch.on("close", () => undefined);
    const declaring = ch.queueDeclare("q");
    await peer.expectMethod("queue.declare", { channel: ch.id });
    const declareFailure = rejectionOf(declaring);

    peer.batch(deliveryFrames(ch.id, "nobody", 1, "m"), channelCloseFrame(ch.id, 406, "PRECONDITION_FAILED - fuzz", 60, 80));
    await settle();

    expect(ch.closed).toBe(true);
    expect(conn.closed).toBe(false);
    expect(await declareFailure).toMatchObject({ replyCode: 406 });
    const again = await settledWithin(conn.openChannel(), 1000, "openChannel after the close");
    expect(again.closed).toBe(false);
    await conn.close();
  });

  it("a consume aborted before consume-ok, then consume-ok and channel.close: the channel closes, the connection stays usable", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    ch.on("close", () => undefined);
    const ac = new AbortController();
    const consuming = ch.basicConsume("q", { signal: ac.signal });
    await peer.expectMethod("basic.consume", { channel: ch.id });
    ac.abort();
    expect(await rejectionOf(consuming)).toMatchObject({ code: "ABORTED" });

    peer.batch(methodFrame(ch.id, method("basic.consume-ok", { consumerTag: "c1" })), channelCloseFrame(ch.id, 404, "NOT_FOUND - fuzz", 60, 20));
    await settle();

    expect(ch.closed).toBe(true);
    expect(conn.closed).toBe(false);
    await settledWithin(conn.openChannel(), 1000, "openChannel after the close");
    await conn.close();
  });

  it("a basicGet aborted before get-ok, then get-ok and channel.close: the channel closes, the connection stays usable", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    ch.on("close", () => undefined);
    const ac = new AbortController();
    const getting = ch.basicGet("q", { signal: ac.signal });
    await peer.expectMethod("basic.get", { channel: ch.id });
    ac.abort();
    expect(await rejectionOf(getting)).toMatchObject({ code: "ABORTED" });

    const getOk = contentFrames(ch.id, method("basic.get-ok", { deliveryTag: 1, routingKey: "q" }), new TextEncoder().encode("m"), {}, 131072);
    peer.batch(getOk, channelCloseFrame(ch.id, 406, "PRECONDITION_FAILED - fuzz", 60, 70));
    await settle();

    expect(ch.closed).toBe(true);
    expect(conn.closed).toBe(false);
    await settledWithin(conn.openChannel(), 1000, "openChannel after the close");
    await conn.close();
  });
});
