/**
 * End to end: warren's WebSocket adapter → warren-relay → RabbitMQ. Node 20 has no global WebSocket, so
 * the `ws` package's class is injected — the adapter itself uses only the standard WebSocket interface.
 *
 * Needs the broker of `scripts/broker.sh ensure` on 127.0.0.1:5672.
 */
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocket as WS } from "ws";
import { connect, type Connection, MAX_MESSAGE_SIZE, NotFoundError, relayUrl, TransportError, type WebSocketConnectOptions, type WebSocketConstructor } from "../../src/adapters/websocket.ts";
import type { Relay } from "../../src/relay/relay.ts";
import { startProxy, type Proxy } from "../support/proxy.ts";
import { recordUnhandledRejections, sleep, uniqueName, waitFor, within } from "../support/broker.ts";
import { startRelay } from "./helpers.ts";

recordUnhandledRejections();

// Both the `ws` package's class and the standard global type fit the adapter's constructor type
// (checked by `npm run typecheck`).
const WebSocket: WebSocketConstructor = WS;
const standardFits = (c: typeof globalThis.WebSocket): WebSocketConstructor => c;
void standardFits;

const BROKER = "127.0.0.1:5672";
let relay: Relay;
let url: string;
let proxy: Proxy | undefined;
const conns: Connection[] = [];

beforeAll(async () => {
  proxy = await startProxy();
  ({ relay, url } = await startRelay({ upstreams: [BROKER, `127.0.0.1:${proxy.port}`] }));
  return async () => {
    await relay.close();
    await proxy?.close();
  };
});

afterEach(async () => {
  proxy?.resume();
  await Promise.allSettled(conns.splice(0).map((c) => within(10_000, c.close(), "close")));
});

async function open(options: WebSocketConnectOptions = {}, amqpUrl?: string): Promise<Connection> {
  const conn = await (amqpUrl !== undefined ? connect(amqpUrl, { relay: url, WebSocket, ...options }) : connect(url, { WebSocket, username: "guest", password: "guest", ...options }));
  conns.push(conn);
  return conn;
}

describe("warren over WebSocket through warren-relay", () => {
  it("connects, declares, publishes with confirms, consumes and closes", async () => {
    const conn = await open({ connectionName: "warren-ws-e2e" });
    expect(String(conn.serverProperties.product)).toMatch(/RabbitMQ/);
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    const N = 50;
    await Promise.all(Array.from({ length: N }, (_, i) => ch.basicPublish("", queue, `message ${i}`, { messageId: String(i) })));
    expect((await ch.queueDeclare(queue, { passive: true })).messageCount).toBe(N);

    const received: string[] = [];
    const consumer = await ch.basicConsume(queue);
    for await (const m of consumer) {
      received.push(new TextDecoder().decode(m.body));
      m.ack();
      if (received.length === N) break;
    }
    expect(received).toEqual(Array.from({ length: N }, (_, i) => `message ${i}`));

    await conn.close();
    expect(conn.closed).toBe(true);
    expect(await waitFor(() => relay.stats().length === 0, 5000)).toBe(true);
  });

  it("a channel error closes the channel with its reply code; the connection carries on", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const err = await ch.queueDeclare(uniqueName(), { passive: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toMatchObject({ replyCode: 404 });
    expect(ch.closed).toBe(true);
    const ch2 = await conn.openChannel();
    const { queue } = await ch2.queueDeclare("", { exclusive: true });
    expect(queue).toMatch(/^amq\.gen-/);
  });

  it("takes credentials, vhost and the broker from an amqp:// URI and the relay from options.relay", async () => {
    const conn = await open({}, `amqp://guest:guest@${BROKER}/%2f?heartbeat=5`);
    const ch = await conn.openChannel();
    await ch.queueDeclare("", { exclusive: true });
  });

  it("moves messages larger than a WebSocket message (split on the way out, reassembled by the machine)", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    const body = Uint8Array.from({ length: 3 * 1024 * 1024 + 17 }, (_, i) => (i * 13) & 0xff);
    expect(body.length).toBeGreaterThan(MAX_MESSAGE_SIZE);
    await ch.basicPublish("", queue, body);
    const m = await ch.basicGet(queue, { noAck: true });
    expect(m?.body.length).toBe(body.length);
    expect(Buffer.compare(Buffer.from(m!.body), Buffer.from(body))).toBe(0);
  });

  it("a relay that refuses the upstream rejects connect with a TransportError", async () => {
    const err = await connect("amqp://guest:guest@10.255.255.1:5672/", { relay: url, WebSocket }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect(String((err as Error).message)).toMatch(/relay ws:\/\/127\.0\.0\.1:\d+\/.*403/);
    expect(String((err as Error).message)).not.toMatch(/guest/);
  });

  it("bad credentials fail the handshake as they do over TCP", async () => {
    const err = await connect(url, { WebSocket, username: "guest", password: "wrong" }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: expect.stringMatching(/ACCESS_REFUSED|HANDSHAKE_ERROR/) });
  });

  it("misuse is reported before anything is opened", async () => {
    await expect(connect("amqps://guest:guest@host/", { relay: url, WebSocket })).rejects.toMatchObject({ code: "USAGE_ERROR" });
    await expect(connect("amqp://guest:guest@host/", { WebSocket })).rejects.toMatchObject({ code: "USAGE_ERROR" });
    await expect(connect(url, { relay: url, WebSocket })).rejects.toMatchObject({ code: "USAGE_ERROR" });
    await expect(connect({ relay: "http://relay/", WebSocket })).rejects.toMatchObject({ code: "USAGE_ERROR" });
    expect(relayUrl("ws://r:1/amqp", "::1", undefined)).toBe("ws://r:1/amqp?upstream=%5B%3A%3A1%5D%3A5672");
    expect(relayUrl("ws://r:1/", undefined, undefined)).toBe("ws://r:1/");
  });

  it("publishing waits while the path to the broker is stuck (bufferedAmount over the mark), then all arrive", async () => {
    const conn = await open({ writeHighWaterMark: 64 * 1024, drainPollInterval: 5 }, `amqp://guest:guest@127.0.0.1:${proxy!.port}/`);
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    proxy!.pause();
    const body = new Uint8Array(32 * 1024).fill(1);
    const N = 2000; // 64 MiB: more than the kernel buffers between here and the proxy hold
    let published = 0;
    const publisher = (async () => {
      for (let i = 0; i < N; i++) {
        await ch.basicPublish("", queue, body);
        published++;
      }
    })();
    let last = -1;
    let since = performance.now();
    const stalled = await waitFor(() => {
      if (published !== last) {
        last = published;
        since = performance.now();
      }
      return performance.now() - since > 400;
    }, 15_000, 10);
    expect(stalled).toBe(true);
    expect(published).toBeLessThan(N);
    expect(conn.backpressured).toBe(true);
    // The relay's tunnel read side is paused: it holds no backlog of its own.
    const t = relay.stats().find((s) => s.upstream.endsWith(`:${proxy!.port}`));
    expect(t?.wsPaused).toBe(true);
    expect(t!.upstreamBuffered).toBeLessThan(512 * 1024);

    proxy!.resume();
    await within(30_000, publisher, "publisher after resume");
    expect(published).toBe(N);
    expect(await waitFor(async () => (await ch.queueDeclare(queue, { passive: true })).messageCount === N, 15_000, 50)).toBe(true);
    await sleep(0);
  }, 60_000);

  it("recovers over WebSocket: the relay's link to the broker is cut twice, and the same consumer and confirm-mode publisher carry on", async () => {
    const conn = await open({ recovery: { reconnect: { initialDelayMs: 20 } } }, `amqp://guest:guest@127.0.0.1:${proxy!.port}/`);
    const ch = await conn.openChannel();
    await ch.confirmSelect();
    const { queue } = await ch.queueDeclare(uniqueName("warren.ws-recovery"), { autoDelete: false });
    const got: string[] = [];
    const consumer = await ch.basicConsume(queue, {}, (m) => {
      got.push(m.bodyText());
      m.ack();
    });
    const disconnected: unknown[] = [];
    conn.on("disconnected", (e) => disconnected.push(e));
    try {
      await ch.basicPublish("", queue, "before");
      for (let round = 1; round <= 2; round++) {
        const recovered = new Promise<unknown>((r) => conn.once("recovered", r));
        proxy!.cutAll(); // the relay's TCP link to the broker: the relay closes the WebSocket
        await within(10_000, recovered, `recovered (round ${round})`);
        await within(5000, ch.basicPublish("", queue, `after ${round}`), `a confirmed publish after recovery ${round}`);
      }
      expect(await waitFor(() => ["before", "after 1", "after 2"].every((b) => got.includes(b)), 5000)).toBe(true);
      expect(disconnected).toHaveLength(2);
      expect(consumer.closed).toBe(false);
    } finally {
      await ch.queueDelete(queue).catch(() => undefined);
    }
  });
});
