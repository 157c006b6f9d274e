/**
 * Recovery over the scripted fake broker (a fresh peer per connection), where the real broker cannot be made
 * to misbehave on cue.
 *
 * The `unconfirmed: "resend"` policy:
 * a confirm-mode publish whose outcome is lost with the connection is published again on the recovered
 * channel — same body, same properties (message-id included), original order, before any publish that waited
 * for the recovery — and its promise settles with the new confirm. Under the default ("reject") it rejects
 * with OutcomeUnknownError. A held publish that is aborted is not resent; one still held when the connection
 * ends for good rejects with OutcomeUnknownError.
 *
 * A recovery that gives up because the connection dropped again in the middle of the replay reports that
 * loss (a WarrenError) everywhere, never an internal error.
 */
import { describe, expect, it } from "vitest";
import { connectWith } from "../../src/client/connect.ts";
import type { Connection } from "../../src/client/connection.ts";
import type { ConnectOptions } from "../../src/client/options.ts";
import { isWarrenError, OutcomeUnknownError } from "../../src/index.ts";
import { type FakePeer, method } from "../support/fake-peer.ts";
import { FakeRuntime, rejectionOf, settle, settledWithin } from "../support/fake-runtime.ts";
import { useProcessGuard } from "../support/process-guard.ts";

useProcessGuard();

const text = (b: Uint8Array) => new TextDecoder().decode(b);

async function open(unconfirmed: "reject" | "resend"): Promise<{ runtime: FakeRuntime; conn: Connection }> {
  const runtime = new FakeRuntime({}, { peers: "per-connection" });
  const options: ConnectOptions = { connectionTimeout: 2000, recovery: { unconfirmed, reconnect: { initialDelayMs: 1, jitter: "none" } } };
  return { runtime, conn: await connectWith(runtime, options) };
}

/** A channel in confirm mode on the current peer. */
async function confirmChannel(conn: Connection, peer: FakePeer) {
  const ch = await conn.openChannel();
  const selecting = ch.confirmSelect();
  await peer.expectMethod("confirm.select", { channel: ch.id });
  peer.send(ch.id, method("confirm.select-ok"));
  await selecting;
  return ch;
}

/** Waits (bounded) for the recovering client to reach peer number `n` (1-based) and answers its confirm.select. */
async function recoveredPeer(runtime: FakeRuntime, n: number, channel: number): Promise<FakePeer> {
  for (let i = 0; i < 200 && runtime.peers.length < n; i++) await settle(1);
  expect(runtime.peers.length).toBe(n);
  const peer = runtime.peer;
  await peer.expectMethod("confirm.select", { channel });
  peer.send(channel, method("confirm.select-ok"));
  return peer;
}

describe('recovery unconfirmed: "resend"', () => {
  it("publishes the unconfirmed messages again, in order and with the same properties, before those that waited; their promises settle with the new acks", async () => {
    const { runtime, conn } = await open("resend");
    const first = runtime.peer;
    const ch = await confirmChannel(conn, first);
    const body = new TextEncoder().encode("m2");
    const p1 = ch.basicPublish("", "q", "m1", { messageId: "id-1" });
    const p2 = ch.basicPublish("", "q", body, { messageId: "id-2", headers: { n: 2 } });
    const p3 = ch.basicPublish("", "q", "m3", { messageId: "id-3" });
    for (const id of ["id-1", "id-2", "id-3"]) expect((await first.expectContent()).properties.messageId).toBe(id);
    first.send(ch.id, method("basic.ack", { deliveryTag: 1 }));
    await settledWithin(p1, 1000, "publish 1");
    body[0] = 0x58; // the caller reuses its buffer: the copy kept for the resend must not change

    const recovered = new Promise<{ resent: number }>((resolve) => conn.once("recovered", resolve));
    first.fail();
    const waiting = ch.basicPublish("", "q", "m4", { messageId: "id-4" }); // made while disconnected
    const second = await recoveredPeer(runtime, 2, ch.id);
    const resent = [await second.expectContent(), await second.expectContent(), await second.expectContent()];
    expect(resent.map((c) => [text(c.body), c.properties.messageId])).toEqual([["m2", "id-2"], ["m3", "id-3"], ["m4", "id-4"]]);
    expect(resent[0]!.properties.headers).toEqual({ n: 2 });
    expect((await settledWithin(recovered, 1000, "recovered")).resent).toBe(2);

    let settledEarly = false;
    void Promise.race([p2, p3]).then(() => (settledEarly = true), () => (settledEarly = true));
    await settle();
    expect(settledEarly).toBe(false); // only the new channel's acks settle them
    second.send(ch.id, method("basic.ack", { deliveryTag: 3, multiple: true }));
    await settledWithin(Promise.all([p2, p3, waiting]), 1000, "the resent publishes");
    await conn.close();
  });

  it('under the default ("reject") the same loss rejects with OutcomeUnknownError and nothing is sent again', async () => {
    const { runtime, conn } = await open("reject");
    const first = runtime.peer;
    const ch = await confirmChannel(conn, first);
    const lost = ch.basicPublish("", "q", "m1");
    await first.expectContent();
    first.fail();
    expect(await rejectionOf(lost)).toBeInstanceOf(OutcomeUnknownError);
    const second = await recoveredPeer(runtime, 2, ch.id);
    const after = ch.basicPublish("", "q", "after");
    expect(text((await second.expectContent()).body)).toBe("after");
    second.send(ch.id, method("basic.ack", { deliveryTag: 1 }));
    await settledWithin(after, 1000, "the publish after the recovery");
    await conn.close();
  });

  it("a held publish that is aborted rejects with AbortError and is not resent", async () => {
    const { runtime, conn } = await open("resend");
    const first = runtime.peer;
    const ch = await confirmChannel(conn, first);
    const ac = new AbortController();
    const aborted = ch.basicPublish("", "q", "aborted", {}, { signal: ac.signal });
    const kept = ch.basicPublish("", "q", "kept");
    await first.expectContent();
    await first.expectContent();
    first.fail(); // both are held now
    ac.abort();
    expect(await rejectionOf(aborted)).toMatchObject({ code: "ABORTED" });
    const second = await recoveredPeer(runtime, 2, ch.id);
    expect(text((await second.expectContent()).body)).toBe("kept");
    second.send(ch.id, method("basic.ack", { deliveryTag: 1 }));
    await settledWithin(kept, 1000, "the kept publish");
    await settle();
    expect(second.methods("basic.publish")).toHaveLength(1); // "kept", and nothing else
    await conn.close();
  });

  it("a resent publish lost again is resent again on the next recovery, still in order", async () => {
    const { runtime, conn } = await open("resend");
    const ch = await confirmChannel(conn, runtime.peer);
    const ps = ["a", "b", "c"].map((b) => ch.basicPublish("", "q", b));
    for (let i = 0; i < 3; i++) await runtime.peer.expectContent();
    runtime.peer.fail();
    const second = await recoveredPeer(runtime, 2, ch.id);
    for (let i = 0; i < 3; i++) await second.expectContent();
    second.send(ch.id, method("basic.ack", { deliveryTag: 1 })); // "a" confirmed on the second connection
    await settledWithin(ps[0]!, 1000, "a");
    second.fail();
    const third = await recoveredPeer(runtime, 3, ch.id);
    const again = [await third.expectContent(), await third.expectContent()];
    expect(again.map((c) => text(c.body))).toEqual(["b", "c"]);
    third.send(ch.id, method("basic.ack", { deliveryTag: 2, multiple: true }));
    await settledWithin(Promise.all(ps), 1000, "all publishes");
    await conn.close();
  });

  it("publishes still held when the application closes the connection reject with OutcomeUnknownError (they may have arrived)", async () => {
    const { runtime, conn } = await open("resend");
    const first = runtime.peer;
    const ch = await confirmChannel(conn, first);
    const held = ch.basicPublish("", "q", "held");
    await first.expectContent();
    first.fail();
    await conn.close();
    expect(await rejectionOf(held)).toBeInstanceOf(OutcomeUnknownError);
  });

  it("tryPublish's confirm-mode messages are resent too (nobody awaits them, but none is dropped)", async () => {
    const { runtime, conn } = await open("resend");
    const ch = await confirmChannel(conn, runtime.peer);
    ch.tryPublish("", "q", "fire-and-forget");
    await runtime.peer.expectContent();
    runtime.peer.fail();
    const second = await recoveredPeer(runtime, 2, ch.id);
    expect(text((await second.expectContent()).body)).toBe("fire-and-forget");
    await conn.close();
  });

  it("a publish waiting for the recovery owns its headers all the way down: changing nested tables, arrays or bytes afterwards changes nothing sent", async () => {
    const { runtime, conn } = await open("reject");
    const ch = await conn.openChannel();
    runtime.peer.fail();
    const bytes = new Uint8Array([1, 2, 3]);
    const headers = { nested: { bytes, list: [bytes, "x"] } };
    const waiting = ch.basicPublish("", "q", "m", { headers });
    bytes[0] = 9;
    headers.nested.list.push("added");
    (headers.nested as Record<string, unknown>).late = true;
    for (let i = 0; i < 200 && runtime.peers.length < 2; i++) await settle(1);
    const sent = await runtime.peer.expectContent();
    expect(sent.properties.headers).toEqual({ nested: { bytes: new Uint8Array([1, 2, 3]), list: [new Uint8Array([1, 2, 3]), "x"] } });
    await settledWithin(waiting, 1000, "the waiting publish");
    await conn.close();
  });

  it("rejects a recovery.unconfirmed that is neither policy, and a retryFirstConnect that is not a boolean", async () => {
    const runtime = new FakeRuntime();
    await expect(connectWith(runtime, { recovery: { unconfirmed: "retry" as "resend" } })).rejects.toThrow(/recovery.unconfirmed must be "reject" or "resend"/);
    await expect(connectWith(runtime, { recovery: { retryFirstConnect: "yes" as unknown as boolean } })).rejects.toThrow(/recovery.retryFirstConnect must be true or false/);
    expect(runtime.transports).toHaveLength(0); // refused before anything was sent
  });
});

describe("a recovery that gives up while replaying", () => {
  it("ends consumers, the connection and its events with a WarrenError (the loss), never the internal ReplayInterrupted", async () => {
    const runtime = new FakeRuntime({}, { peers: "per-connection" });
    const conn = await connectWith(runtime, { connectionTimeout: 2000, logger: { warn() {} }, recovery: { reconnect: { initialDelayMs: 1, maxAttempts: 1 } } });
    const ch = await conn.openChannel();
    const consuming = ch.basicConsume("q");
    await runtime.peer.expectMethod("basic.consume");
    runtime.peer.send(ch.id, method("basic.consume-ok", { consumerTag: "c1" }));
    const consumer = await consuming;
    const loopEnded = (async () => {
      for await (const m of consumer) m.ack();
    })().then(() => undefined, (e: unknown) => e);
    const failed = new Promise<unknown>((resolve) => conn.once("recoveryFailed", resolve));
    const closed = new Promise<unknown>((resolve) => conn.once("close", resolve));

    runtime.peer.fail();
    for (let i = 0; i < 200 && runtime.peers.length < 2; i++) await settle(1);
    await runtime.peer.expectMethod("basic.consume"); // the replay's resubscribe…
    runtime.peer.fail(); // …and the connection is lost again in the middle of it; no attempt is left

    for (const [what, p] of [["recoveryFailed", failed], ["close", closed], ["the consumer loop", loopEnded]] as const) {
      const e = await settledWithin(p, 1000, what);
      expect(isWarrenError(e), `${what}: ${String(e)}`).toBe(true);
      expect((e as Error).name).not.toBe("ReplayInterrupted");
    }
  });
});

