/**
 * Deliveries warren settles on the application's behalf must never settle a delivery tag the broker no longer
 * holds: RabbitMQ closes the channel with 406 PRECONDITION_FAILED ("unknown delivery tag") for that.
 *
 * - A consume aborted before consume-ok is cancelled at once, but deliveries may already be in the same read.
 *   For an ack-mode consumer they are rejected (requeued); for a noAck one the broker has forgotten them, so
 *   they are dropped — a reject would kill the channel.
 * - A callback that fails after the application acked its message with `multiple` (through a later message)
 *   is not rejected again.
 */
import { describe, expect, it } from "vitest";
import { deliveryFrames, method, methodFrame } from "../support/fake-peer.ts";
import { openConnection, rejectionOf, settle } from "../support/fake-runtime.ts";
import { useProcessGuard } from "../support/process-guard.ts";

useProcessGuard();

describe("deliveries for a consume aborted before consume-ok", () => {
  for (const noAck of [false, true]) {
    it(`${noAck ? "noAck: are dropped, not rejected" : "ack mode: are rejected with requeue"}, and the consumer is cancelled`, async () => {
      const { conn, peer } = await openConnection();
      const ch = await conn.openChannel();
      const ac = new AbortController();
      const consuming = ch.basicConsume("q", { noAck, signal: ac.signal });
      await peer.expectMethod("basic.consume", { channel: ch.id });
      ac.abort();
      expect(await rejectionOf(consuming)).toMatchObject({ code: "ABORTED" });

      peer.batch(methodFrame(ch.id, method("basic.consume-ok", { consumerTag: "c1" })), deliveryFrames(ch.id, "c1", 1, "m1"), deliveryFrames(ch.id, "c1", 2, "m2"));
      await settle();

      expect(peer.methods("basic.cancel").map((m) => [m.method.consumerTag, m.method.noWait])).toEqual([["c1", true]]);
      const rejects = peer.methods("basic.reject").map((m) => [Number(m.method.deliveryTag), m.method.requeue]);
      expect(rejects).toEqual(noAck ? [] : [[1, true], [2, true]]);
      expect(ch.closed).toBe(false);
      await conn.close();
    });
  }
});

describe("a callback that fails after a later message acked it with multiple", () => {
  it("is not rejected again (that tag is settled already)", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    let failFirst!: (e: Error) => void;
    const errors: unknown[] = [];
    const consuming = ch.basicConsume("q", { onError: (e) => errors.push(e) }, (m) => {
      if (m.bodyText() === "first") return new Promise((_, reject) => (failFirst = reject));
      m.ack(true); // settles "first" too
      return undefined;
    });
    await peer.expectMethod("basic.consume", { channel: ch.id });
    peer.batch(methodFrame(ch.id, method("basic.consume-ok", { consumerTag: "c1" })), deliveryFrames(ch.id, "c1", 1, "first"), deliveryFrames(ch.id, "c1", 2, "second"));
    await consuming;
    await settle();
    failFirst(new Error("late failure"));
    await settle();

    expect(errors).toHaveLength(1);
    expect(peer.methods("basic.ack").map((m) => [Number(m.method.deliveryTag), m.method.multiple])).toEqual([[2, true]]);
    expect(peer.methods("basic.reject")).toEqual([]);
    await conn.close();
  });
});
