/**
 * The client over the in-process fake runtime (test/support/fake-runtime.ts): the ordinary paths work end to
 * end — handshake, a request and its reply, a publish, a consumer, a close — so that the defect tests beside
 * this file fail only for the reason they name.
 */
import { describe, expect, it } from "vitest";
import { deliveryFrames, method, methodFrame } from "../support/fake-peer.ts";
import { openConnection, settle, settledWithin, startConnect } from "../support/fake-runtime.ts";
import { useProcessGuard } from "../support/process-guard.ts";

useProcessGuard();

describe("the fake runtime", () => {
  it("answers the handshake and the connection opens", async () => {
    const { conn, peer, runtime } = await openConnection({ username: "u", password: "p", vhost: "v" });
    expect(conn.closed).toBe(false);
    expect(conn.serverProperties.product).toBe("RabbitMQ");
    expect(peer.methods("connection.start-ok")).toHaveLength(1);
    expect(peer.methods("connection.open")[0]!.method.virtualHost).toBe("v");
    expect(runtime.connectCalls).toHaveLength(1);
    await conn.close();
    expect(peer.methods("connection.close")).toHaveLength(1);
    expect(runtime.transport!.ended || runtime.transport!.destroyed).toBe(true);
  });

  it("a request waits for the reply the test sends", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    const declared = ch.queueDeclare("q");
    const m = await peer.expectMethod("queue.declare", { channel: ch.id });
    expect(m.queue).toBe("q");
    peer.send(ch.id, method("queue.declare-ok", { queue: "q", messageCount: 3 }));
    await expect(settledWithin(declared)).resolves.toEqual({ queue: "q", messageCount: 3, consumerCount: 0 });
    await conn.close();
  });

  it("a publish reaches the peer as method, header and body", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    await ch.basicPublish("ex", "rk", "hello", { contentType: "text/plain" });
    const c = await peer.expectContent();
    expect(c.method).toMatchObject({ name: "basic.publish", exchange: "ex", routingKey: "rk" });
    expect(new TextDecoder().decode(c.body)).toBe("hello");
    expect(c.properties.contentType).toBe("text/plain");
    await conn.close();
  });

  it("a consumer gets the deliveries of one read, and ends on cancel", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    const consuming = ch.basicConsume("q");
    await peer.expectMethod("basic.consume");
    peer.batch(methodFrame(ch.id, method("basic.consume-ok", { consumerTag: "c1" })), deliveryFrames(ch.id, "c1", 1, "a"), deliveryFrames(ch.id, "c1", 2, "b"));
    const consumer = await settledWithin(consuming);
    const got: string[] = [];
    const loop = (async () => {
      for await (const m of consumer) {
        got.push(m.bodyText());
        m.ack();
        if (got.length === 2) void consumer.cancel();
      }
    })();
    await peer.expectMethod("basic.ack");
    await peer.expectMethod("basic.ack");
    const cancel = await peer.expectMethod("basic.cancel");
    peer.send(ch.id, method("basic.cancel-ok", { consumerTag: cancel.consumerTag }));
    await settledWithin(loop);
    expect(got).toEqual(["a", "b"]);
    await conn.close();
  });

  it("the broker ending the socket closes the connection with an error", async () => {
    const { conn, peer } = await openConnection();
    const closed = new Promise((resolve) => conn.on("close", resolve));
    peer.end();
    await settle();
    expect(conn.closed).toBe(true);
    expect(await settledWithin(closed)).toBeInstanceOf(Error);
  });

  it("a silent peer leaves the connect pending until its timeout", async () => {
    const { connecting } = startConnect({ connectionTimeout: 30 }, { handshake: "silent" });
    await expect(connecting).rejects.toMatchObject({ code: "CONNECT_TIMEOUT" });
  });
});
