/**
 * Failures a user can see (issue 8, defect 9).
 *
 * - A callback consumer whose callback throws or rejects rejects the message: requeued the first time,
 *   dropped (dead-lettered) if it was already redelivered — so a poison message is retried once, not forever
 *   and not stuck unacked. `requeueOnError` forces always (true) or never (false). The error reaches the
 *   consumer's "error" listeners and `onError`.
 * - An error nobody listens for (a consumer handler's, a channel closed by the broker, a lost connection) is
 *   written once per failing object to the `logger` connect option (default console.warn).
 * - A publish without confirms to a missing exchange: the channel's 404 close reaches the logger when nobody
 *   listens, and the next publish on that channel rejects with NotFoundError.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Channel } from "../../src/client/channel.ts";
import type { Consumer } from "../../src/client/consumer.ts";
import type { Message } from "../../src/client/message.ts";
import { NotFoundError } from "../../src/client/errors.ts";
import { channelCloseFrame, type FakePeer, method } from "../support/fake-peer.ts";
import { type HarnessConnectOptions, openConnection, rejectionOf, settle, settledWithin } from "../support/fake-runtime.ts";
import { useProcessGuard } from "../support/process-guard.ts";

useProcessGuard();

type Options = Parameters<Channel["basicConsume"]>[1] & { requeueOnError?: boolean };

function recordingLogger(): { logger: NonNullable<HarnessConnectOptions["logger"]>; warnings: { message: string; error: unknown }[] } {
  const warnings: { message: string; error: unknown }[] = [];
  return { warnings, logger: { warn: (message, error) => warnings.push({ message, error }) } };
}

async function callbackConsumer(ch: Channel, peer: FakePeer, o: Options, onMessage: (m: Message) => unknown): Promise<Consumer> {
  const consuming = ch.basicConsume("q", o, onMessage);
  await peer.expectMethod("basic.consume", { channel: ch.id });
  peer.send(ch.id, method("basic.consume-ok", { consumerTag: "c1" }));
  return settledWithin(consuming);
}

describe("a callback consumer whose callback throws", () => {
  it("rejects the message with requeue the first time, and without requeue once it was redelivered", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    const consumer = await callbackConsumer(ch, peer, {}, () => {
      throw new Error("handler bug");
    });
    const errors: unknown[] = [];
    consumer.on("error", (e) => errors.push(e));

    peer.deliver(ch.id, "c1", 1, "poison", { redelivered: false });
    const first = await peer.expectMethod("basic.reject", { channel: ch.id });
    expect(first).toMatchObject({ deliveryTag: 1, requeue: true });

    peer.deliver(ch.id, "c1", 2, "poison", { redelivered: true });
    const second = await peer.expectMethod("basic.reject", { channel: ch.id });
    expect(second).toMatchObject({ deliveryTag: 2, requeue: false });
    expect(errors).toHaveLength(2);
    await conn.close();
  });

  it("rejects the message when an async callback rejects, and tells onError", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    const seen: { error: unknown; message: Message }[] = [];
    await callbackConsumer(ch, peer, { onError: (error, message) => seen.push({ error, message }) }, async () => {
      throw new Error("async handler bug");
    });
    peer.deliver(ch.id, "c1", 1, "m");
    expect(await peer.expectMethod("basic.reject", { channel: ch.id })).toMatchObject({ deliveryTag: 1, requeue: true });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.message.deliveryTag).toBe(1);
    await conn.close();
  });

  it("requeueOnError: true always requeues, even a redelivered message", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    await callbackConsumer(ch, peer, { requeueOnError: true, onError: () => undefined }, () => {
      throw new Error("bug");
    });
    peer.deliver(ch.id, "c1", 1, "m", { redelivered: true });
    expect(await peer.expectMethod("basic.reject", { channel: ch.id })).toMatchObject({ deliveryTag: 1, requeue: true });
    await conn.close();
  });

  it("requeueOnError: false never requeues, even a first delivery", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    await callbackConsumer(ch, peer, { requeueOnError: false, onError: () => undefined }, () => {
      throw new Error("bug");
    });
    peer.deliver(ch.id, "c1", 1, "m", { redelivered: false });
    expect(await peer.expectMethod("basic.reject", { channel: ch.id })).toMatchObject({ deliveryTag: 1, requeue: false });
    await conn.close();
  });
});

describe("errors nobody listens for", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("a failing handler with no error listener is logged once, not once per message", async () => {
    const { logger, warnings } = recordingLogger();
    const { conn, peer } = await openConnection({ logger });
    const ch = await conn.openChannel();
    await callbackConsumer(ch, peer, {}, () => {
      throw new Error("handler bug");
    });
    peer.deliver(ch.id, "c1", 1, "m");
    peer.deliver(ch.id, "c1", 2, "m");
    peer.deliver(ch.id, "c1", 3, "m");
    await settle();
    expect(warnings).toHaveLength(1);
    expect((warnings[0]!.error as Error).message).toBe("handler bug");
    await conn.close();
  });

  it("a channel closed by the broker with no close or error listener is logged once", async () => {
    const { logger, warnings } = recordingLogger();
    const { conn, peer } = await openConnection({ logger });
    const ch = await conn.openChannel();
    peer.sendRaw(channelCloseFrame(ch.id, 406, "PRECONDITION_FAILED - unknown delivery tag 1", 60, 80));
    await settle();
    expect(ch.closed).toBe(true);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.error).toMatchObject({ replyCode: 406 });
    await conn.close();
  });

  it("a lost connection with no close or error listener is logged once", async () => {
    const { logger, warnings } = recordingLogger();
    const { conn, peer } = await openConnection({ logger });
    await conn.openChannel();
    peer.fail(new Error("ECONNRESET: connection reset by peer"));
    await settle();
    expect(conn.closed).toBe(true);
    expect(warnings).toHaveLength(1);
  });

  it("nothing is logged when the application listens", async () => {
    const { logger, warnings } = recordingLogger();
    const { conn, peer } = await openConnection({ logger });
    conn.on("close", () => undefined);
    const ch = await conn.openChannel();
    ch.on("close", () => undefined);
    peer.sendRaw(channelCloseFrame(ch.id, 406, "PRECONDITION_FAILED", 60, 80));
    peer.fail();
    await settle();
    expect(warnings).toEqual([]);
  });

  it("the default logger is console.warn", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    peer.sendRaw(channelCloseFrame(ch.id, 406, "PRECONDITION_FAILED", 60, 80));
    await settle();
    expect(warn).toHaveBeenCalledTimes(1);
    await conn.close();
  });

  it("a publish without confirms to a missing exchange: the 404 is logged and the next publish rejects with NotFoundError", async () => {
    const { logger, warnings } = recordingLogger();
    const { conn, peer } = await openConnection({ logger });
    const ch = await conn.openChannel();
    await settledWithin(ch.basicPublish("missing", "rk", "m"));
    await peer.expectContent();
    peer.sendRaw(channelCloseFrame(ch.id, 404, "NOT_FOUND - no exchange 'missing' in vhost '/'", 60, 40));
    await settle();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.error).toBeInstanceOf(NotFoundError);
    expect(await rejectionOf(ch.basicPublish("missing", "rk", "m"))).toBeInstanceOf(NotFoundError);
    await conn.close();
  });
});
