/**
 * Publish backpressure: with a tiny writeHighWaterMark and a network that stops carrying bytes (a proxy that
 * stops reading), a publisher that awaits basicPublish stalls instead of buffering without bound, and carries
 * on — losing nothing — when the network does.
 *
 * "Buffered" is the machine's pending output plus the transport's queue; the transport is captured through a
 * wrapping Runtime.
 */
import { afterEach, describe, expect, it } from "vitest";
import { nodeRuntime } from "../../src/adapters/node.ts";
import { type Connection, connectWith, type Runtime, type Transport } from "../../src/index.ts";
import { startProxy, type Proxy } from "../support/proxy.ts";
import { recordUnhandledRejections, sleep, waitFor, within } from "../support/broker.ts";

recordUnhandledRejections();

const HWM = 1024;
const BODY = 10 * 1024;

let proxy: Proxy | undefined;
let conn: Connection | undefined;
afterEach(async () => {
  proxy?.resume();
  if (conn) await within(10_000, conn.close(), "close").catch(() => undefined);
  await proxy?.close();
  proxy = undefined;
  conn = undefined;
});

async function openThroughProxy(): Promise<{ conn: Connection; transport: () => Transport }> {
  proxy = await startProxy();
  let transport: Transport | undefined;
  const runtime: Runtime = {
    ...nodeRuntime,
    connect: async (o, h, signal) => (transport = await nodeRuntime.connect(o, h, signal)),
  };
  conn = await connectWith(runtime, `amqp://guest:guest@127.0.0.1:${proxy.port}/`, { writeHighWaterMark: HWM, recovery: false });
  return { conn, transport: () => transport! };
}

/** Resolves when `read()` has not changed for `quietMs`; false if that never happened within `timeoutMs`. */
async function stalled(read: () => number, quietMs: number, timeoutMs: number): Promise<boolean> {
  let last = read();
  let since = performance.now();
  return waitFor(() => {
    const now = read();
    if (now !== last) {
      last = now;
      since = performance.now();
    }
    return performance.now() - since >= quietMs;
  }, timeoutMs, 10);
}

describe("publish backpressure", () => {
  it("1000 × 10 KiB awaited publishes stall with bounded buffers while the network is stuck, then all arrive", async () => {
    const { conn, transport } = await openThroughProxy();
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    const buffered = () => conn.machine.pendingTransmit + transport().bufferedAmount;
    let maxBuffered = 0;
    const sampler = setInterval(() => (maxBuffered = Math.max(maxBuffered, buffered())), 2);
    try {
      proxy!.pause();
      const N = 1000;
      const body = new Uint8Array(BODY).fill(7);
      let published = 0;
      const publisher = (async () => {
        for (let i = 0; i < N; i++) {
          const p = ch.basicPublish("", queue, body, { messageId: String(i) });
          maxBuffered = Math.max(maxBuffered, buffered());
          await p;
          published++;
        }
      })();

      // The kernel's socket buffers take a few MB; after that the publisher must wait.
      expect(await stalled(() => published, 300, 10_000)).toBe(true);
      expect(published).toBeLessThan(N);
      expect(conn.backpressured).toBe(true);
      // One message past the mark at most (the one whose publish is waiting), never the backlog.
      expect(maxBuffered).toBeLessThanOrEqual(HWM + 2 * (BODY + 512));

      // tryPublish sends anyway but says to stop.
      expect(ch.tryPublish("", queue, body, { messageId: "extra" })).toBe(false);

      proxy!.resume();
      await within(15_000, publisher, "publisher after resume");
      expect(published).toBe(N);
      expect(maxBuffered).toBeLessThanOrEqual(HWM + 3 * (BODY + 512));
      expect(await waitFor(async () => (await ch.queueDeclare(queue, { passive: true })).messageCount === N + 1, 10_000, 50)).toBe(true);
    } finally {
      clearInterval(sampler);
    }
  }, 40_000);

  it("tryPublish returns false past the mark, and writable() resolves once the network drains", async () => {
    const { conn } = await openThroughProxy();
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    expect(conn.backpressured).toBe(false);
    expect(conn.writable()).toBeUndefined();
    expect(ch.tryPublish("", queue, "small")).toBe(true);

    proxy!.pause();
    const body = new Uint8Array(BODY);
    let sent = 1;
    let falses = 0;
    let writable: Promise<void> | undefined;
    // Publish until the socket is truly stuck: tryPublish says stop and writable() stays pending. (While the
    // kernel's buffers still grow, a false can clear up quickly.) Bounded by count and time.
    const deadline = performance.now() + 15_000;
    for (let i = 0; i < 5000 && performance.now() < deadline; i++) {
      const accepted = ch.tryPublish("", queue, body);
      sent++;
      if (accepted) {
        await sleep(0);
        continue;
      }
      falses++;
      expect(conn.backpressured).toBe(true);
      const w = conn.writable();
      expect(w).toBeInstanceOf(Promise);
      const drainedSoon = await Promise.race([w!.then(() => true), sleep(300).then(() => false)]);
      if (!drainedSoon) {
        writable = w;
        break;
      }
    }
    expect(falses).toBeGreaterThan(0);
    expect(writable).toBeDefined();
    let drained = false;
    void writable!.then(() => (drained = true));
    await sleep(100);
    expect(drained).toBe(false);

    proxy!.resume();
    await within(10_000, writable!, "writable()");
    expect(conn.backpressured).toBe(false);
    expect(await waitFor(async () => (await ch.queueDeclare(queue, { passive: true })).messageCount === sent, 10_000, 50)).toBe(true);
  }, 40_000);

  it("a writer waiting on writable() is released with an error when the connection dies", async () => {
    const { conn } = await openThroughProxy();
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    proxy!.pause();
    const body = new Uint8Array(BODY);
    let accepted = true;
    for (let i = 0; i < 5000 && accepted; i++) {
      accepted = ch.tryPublish("", queue, body);
      if (accepted) await sleep(0);
    }
    expect(accepted).toBe(false);
    const waiting = ch.basicPublish("", queue, body);
    proxy!.cutAll();
    // Either outcome is fine for the waiter (the bytes were handed over); what matters is that it settles.
    await within(5000, waiting.catch(() => undefined), "waiting publish");
    await within(5000, conn.closedPromise, "connection closed");
    expect(conn.closed).toBe(true);
    await expect(ch.basicPublish("", queue, body)).rejects.toMatchObject({ name: expect.stringMatching(/TransportError|ConnectionClosedError/) });
  }, 40_000);
});
