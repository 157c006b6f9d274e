/**
 * Smaller connection defects (issue 8, defect 11, client part):
 * - a connect that timed out leaves nothing behind: its transport is destroyed and the abandoned connection
 *   never emits `close` later;
 * - once open, the connection holds no password anywhere a log or a debugger would show it;
 * - a consumer that cannot keep up says so: past the read-pause mark the Connection emits `readPaused`
 *   (true, then false once the loop caught up); on a transport that cannot pause reading (WebSocket) the
 *   consumer's buffer is bounded and the consumer ends with CONSUMER_OVERFLOW instead of growing.
 */
import { inspect } from "node:util";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Connection } from "../../src/client/connection.ts";
import type { Consumer } from "../../src/client/consumer.ts";
import { Emitter } from "../../src/client/emitter.ts";
import { deliveryFrames, type FakePeer, method } from "../support/fake-peer.ts";
import type { Channel } from "../../src/client/channel.ts";
import { openConnection, settle, settledWithin, startConnect } from "../support/fake-runtime.ts";
import { useProcessGuard } from "../support/process-guard.ts";
import { concat } from "../support/bytes.ts";

useProcessGuard();

async function consumerOn(ch: Channel, peer: FakePeer): Promise<Consumer> {
  const consuming = ch.basicConsume("q", { noAck: true });
  await peer.expectMethod("basic.consume", { channel: ch.id });
  peer.send(ch.id, method("basic.consume-ok", { consumerTag: "c1" }));
  return settledWithin(consuming);
}

/** `n` deliveries for consumer c1 in one read, tags from `first`. */
function deliveries(channel: number, first: number, n: number): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < n; i++) parts.push(deliveryFrames(channel, "c1", first + i, "m"));
  return concat(parts);
}

describe("a connect that timed out", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("destroys its transport and never emits close afterwards", async () => {
    // The abandoned Connection is never handed to the application, so its emits are watched on the prototype.
    const emits: string[] = [];
    const original = (Emitter.prototype as unknown as { emit: (...a: unknown[]) => void }).emit;
    vi.spyOn(Emitter.prototype as unknown as { emit: (...a: unknown[]) => void }, "emit").mockImplementation(function (this: unknown, ...args: unknown[]) {
      if (this instanceof Connection) emits.push(String(args[0]));
      return original.apply(this, args);
    });
    const { runtime, connecting } = startConnect({ connectionTimeout: 30 }, { handshake: "silent" });
    await expect(connecting).rejects.toMatchObject({ code: "CONNECT_TIMEOUT" });
    await new Promise((r) => setTimeout(r, 30));
    await settle();
    expect(runtime.transport!.destroyed).toBe(true);
    expect(emits.filter((e) => e === "close")).toEqual([]);
  });
});

describe("the password after open", () => {
  it("appears in no JSON, no inspection and no value of the resolved options", async () => {
    const password = "s3cret-Pa55word";
    const { conn, runtime } = await openConnection({ username: "app", password });
    expect(JSON.stringify(conn)).not.toContain(password);
    expect(inspect(conn, { depth: 8, showHidden: true })).not.toContain(password);
    const resolved = runtime.connectCalls[0]!;
    expect(Object.values(resolved).map((v) => (typeof v === "string" ? v : JSON.stringify(v)))).not.toContain(password);
    expect(JSON.stringify(resolved) ?? "").not.toContain(password);
    await conn.close();
  });
});

describe("a consumer past its read-pause mark", () => {
  it("emits readPaused(true) on the connection, and readPaused(false) once the loop caught up", async () => {
    const { conn, peer, runtime } = await openConnection();
    const paused: boolean[] = [];
    (conn as unknown as Emitter<{ readPaused: (p: boolean) => void }>).on("readPaused", (p) => paused.push(p));
    const ch = await conn.openChannel();
    const consumer = await consumerOn(ch, peer);
    peer.sendRaw(deliveries(ch.id, 1, 5000));
    await settle();
    expect(runtime.transport!.paused).toBe(true);
    expect(paused).toEqual([true]);

    let taken = 0;
    const loop = (async () => {
      for await (const _ of consumer) if (++taken === 5000) break;
    })();
    // Leaving the loop cancels the consumer.
    const cancel = await peer.expectMethod("basic.cancel", { channel: ch.id });
    peer.send(ch.id, method("basic.cancel-ok", { consumerTag: cancel.consumerTag }));
    await settledWithin(loop, 2000, "the loop");
    await settle();
    expect(paused).toEqual([true, false]);
    await conn.close();
  });
});

describe("a consumer on a transport that cannot pause reading", () => {
  it("ends with CONSUMER_OVERFLOW past its buffer's cap instead of growing without bound", async () => {
    const { conn, peer } = await openConnection({}, {}, { pauseReading: false });
    const ch = await conn.openChannel();
    ch.on("close", () => undefined);
    const consumer = await consumerOn(ch, peer);
    let ended: (Error & { code?: string }) | undefined;
    let endedCount = 0;
    consumer.on("close", (e) => {
      endedCount++;
      ended = e as Error & { code?: string };
    });
    const batch = 4096;
    let sent = 0;
    // Bounded: 64 reads of 4096 deliveries (262,144 messages) at most.
    for (let i = 0; i < 64 && endedCount === 0; i++) {
      peer.sendRaw(deliveries(ch.id, sent + 1, batch));
      sent += batch;
      await settle(1);
    }
    expect(endedCount, `the consumer still running after ${sent} unread deliveries (buffered ${consumer.buffered})`).toBe(1);
    expect(ended).toMatchObject({ code: "CONSUMER_OVERFLOW" });
    // Once overflowed it holds no more: what still arrives for the tag is not buffered.
    const held = consumer.buffered;
    peer.sendRaw(deliveries(ch.id, sent + 1, batch));
    await settle(1);
    expect(consumer.buffered).toBe(held);
    await conn.close();
  });
});

