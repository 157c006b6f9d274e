/**
 * `channel.close()` is idempotent and memoized (issue 8, defect 5): calling it again — after it finished, or
 * while it is under way — resolves too, and closing a channel that the broker or warren already closed (or
 * is closing) resolves once the channel is closed instead of rejecting.
 */
import { describe, expect, it } from "vitest";
import { channelCloseFrame, method } from "../support/fake-peer.ts";
import { headerFrame, methodFrame } from "../support/fake-broker.ts";
import { openConnection, settle, settledWithin } from "../support/fake-runtime.ts";
import { useProcessGuard } from "../support/process-guard.ts";

useProcessGuard();

describe("closing a channel twice", () => {
  it("resolves both times when called one after the other", async () => {
    const { conn } = await openConnection();
    const ch = await conn.openChannel();
    await settledWithin(ch.close());
    await settledWithin(ch.close());
    expect(ch.closed).toBe(true);
    await conn.close();
  });

  it("resolves both calls when called at once, with one channel.close on the wire", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    const first = ch.close();
    const second = ch.close();
    await settledWithin(Promise.all([first, second]));
    expect(ch.closed).toBe(true);
    expect(peer.methods("channel.close").filter((m) => m.channel === ch.id)).toHaveLength(1);
    await conn.close();
  });
});

describe("closing a channel that was already closed for another reason", () => {
  it("resolves after the broker closed it (406)", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    ch.on("close", () => undefined);
    peer.sendRaw(channelCloseFrame(ch.id, 406, "PRECONDITION_FAILED - unknown delivery tag 7", 60, 80));
    await settle();
    await settledWithin(ch.close());
    expect(ch.closed).toBe(true);
    await conn.close();
  });

  it("resolves once warren's own 311 close (an oversize message) completes", async () => {
    const { conn, peer } = await openConnection({ maxBodySize: 16 }, { autoReply: { "channel.close": false } });
    const ch = await conn.openChannel();
    ch.on("close", () => undefined);
    const consuming = ch.basicConsume("q");
    await peer.expectMethod("basic.consume");
    peer.send(ch.id, method("basic.consume-ok", { consumerTag: "c1" }));
    await settledWithin(consuming);
    // A delivery declaring a 1000-byte body: over maxBodySize, so warren closes the channel with 311.
    peer.batch(methodFrame(ch.id, method("basic.deliver", { consumerTag: "c1", deliveryTag: 1, routingKey: "q" })), headerFrame(ch.id, 1000));
    const sent = await peer.expectMethodOn("channel.close", { channel: ch.id });
    expect(sent.method.replyCode).toBe(311);

    const closing = ch.close();
    let resolved = false;
    void closing.then(() => (resolved = true), () => undefined);
    await settle();
    expect(resolved, "close() must wait for the close-ok of the close under way").toBe(false);
    peer.send(ch.id, method("channel.close-ok"));
    await settledWithin(closing);
    expect(ch.closed).toBe(true);
    await conn.close();
  });
});
