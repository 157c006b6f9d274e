/**
 * What the client fuzz target (fuzz/client-target.ts, `npm run fuzz -- --target client`) found, kept as
 * tests over the in-process harness.
 *
 * Its uncaught exceptions were all one family — clean-up sent from inside dispatch after the same read had
 * closed the connection: `Channel.onDelivery → basicReject` (a delivery for an unknown consumer tag),
 * `basicConsume`'s abort → basic.cancel, and `basicGet`'s abort → basicReject (seed 7: runs #12, #339;
 * seed 1: runs #11, #161). Those are pinned in dispatch.test.ts. The memory failure is pinned here: a content
 * header declaring a huge body made the client allocate the whole body when its first few bytes arrived
 * (issue 8, defect 13; seed 1, run #217: array buffers at 129 MB from a 127 MiB declaration).
 */
import { describe, expect, it } from "vitest";
import { bodyFrame, headerFrame, methodFrame } from "../support/fake-broker.ts";
import { method } from "../support/fake-peer.ts";
import { openConnection, settle, settledWithin } from "../support/fake-runtime.ts";
import { useProcessGuard } from "../support/process-guard.ts";
import { concat } from "../support/bytes.ts";

useProcessGuard();

const MiB = 1024 * 1024;

describe("content headers declaring huge bodies", () => {
  it("a 127 MiB declaration followed by 100 body bytes does not allocate 127 MiB", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    const consuming = ch.basicConsume("q");
    await peer.expectMethod("basic.consume");
    peer.send(ch.id, method("basic.consume-ok", { consumerTag: "c1" }));
    await settledWithin(consuming);

    const before = process.memoryUsage().arrayBuffers;
    peer.batch(methodFrame(ch.id, method("basic.deliver", { consumerTag: "c1", deliveryTag: 1, routingKey: "q" })), headerFrame(ch.id, 127 * MiB), bodyFrame(ch.id, new Uint8Array(100)));
    await settle();
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(grown, `array buffers grew by ${(grown / MiB).toFixed(1)} MiB`).toBeLessThan(16 * MiB);
    await conn.close();
  });

  it("declarations on many channels together do not allocate their sum", async () => {
    const { conn, peer } = await openConnection();
    const channels = [];
    for (let i = 0; i < 8; i++) channels.push(await conn.openChannel());
    const gets = channels.map((ch) => ch.basicGet("q").catch(() => null));
    for (const ch of channels) await peer.expectMethod("basic.get", { channel: ch.id });
    const before = process.memoryUsage().arrayBuffers;
    peer.sendRaw(
      concat(
        channels.flatMap((ch) => [methodFrame(ch.id, method("basic.get-ok", { deliveryTag: 1, routingKey: "q" })), headerFrame(ch.id, 120 * MiB), bodyFrame(ch.id, new Uint8Array(100))]),
      ),
    );
    await settle();
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(grown, `array buffers grew by ${(grown / MiB).toFixed(1)} MiB`).toBeLessThan(64 * MiB);
    await conn.close();
    await settledWithin(Promise.all(gets));
  });
});

describe("a broker that answers two basic.consume requests with the same consumer tag (seed 20261204, run #79714)", () => {
  it("is a protocol error: the connection closes and both consumers' loops end (before, the first loop hung for good)", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    const first = ch.basicConsume("q1");
    await peer.expectMethod("basic.consume");
    peer.send(ch.id, method("basic.consume-ok", { consumerTag: "amq.ctag-1" }));
    const consumer = await settledWithin(first);
    const loop = (async () => {
      for await (const _ of consumer) {
        // nothing arrives
      }
    })();
    loop.catch(() => undefined);
    const second = ch.basicConsume("q2");
    second.catch(() => undefined);
    await peer.expectMethod("basic.consume");
    peer.send(ch.id, method("basic.consume-ok", { consumerTag: "amq.ctag-1" }));
    await settle();
    expect(peer.methods("connection.close").map((m) => m.method.replyCode)).toEqual([503]);
    await expect(settledWithin(second)).rejects.toMatchObject({ replyCode: 503 });
    await expect(settledWithin(loop, 1000, "the first consumer's loop")).rejects.toMatchObject({ replyCode: 503 });
    expect(conn.closed).toBe(true);
  });
});
