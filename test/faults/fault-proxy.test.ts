/**
 * The fault proxy (test/support/fault-proxy.ts) does what each fault says, first against a local echo server
 * (byte-exact, no broker involved), then against the test broker with warren's client, recovery off: each
 * fault then shows as the connection's end, with the error and timing the fault should cause. (What recovery
 * makes of these faults is test/integration/recovery.test.ts's business.)
 */
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { connect, type Connection, TransportError, type WarrenError } from "../../src/index.ts";
import { MAX_QUEUED, startFaultProxy, type FaultProxy, type Upstream } from "../support/fault-proxy.ts";
import { recordUnhandledRejections, sleep, waitFor, within } from "../support/broker.ts";

recordUnhandledRejections();

// ---------------------------------------------------------------------------------------------------------
// Helpers: an echo server (optionally tagging what it echoes), and a client that collects what comes back.

interface Echo extends Upstream {
  /** The server side of each accepted connection, with the error it ended with (if any). */
  readonly accepted: { socket: net.Socket; error?: NodeJS.ErrnoException }[];
  close(): Promise<void>;
}

async function startEcho(tag = ""): Promise<Echo> {
  const accepted: Echo["accepted"] = [];
  const server = net.createServer((socket) => {
    const entry: Echo["accepted"][number] = { socket };
    accepted.push(entry);
    socket.on("error", (e) => (entry.error = e));
    socket.on("data", (d: Buffer) => socket.write(tag ? Buffer.concat([Buffer.from(tag), d]) : d));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    host: "127.0.0.1",
    port: (server.address() as net.AddressInfo).port,
    accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const { socket } of accepted) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

interface Client {
  readonly socket: net.Socket;
  /** Everything received so far, as latin1 text. */
  text(): string;
  /** Resolves once at least `n` bytes arrived; false after `ms`. */
  received(n: number, ms?: number): Promise<boolean>;
  /** Settles when the socket closed: with its error, if any. */
  readonly closed: Promise<NodeJS.ErrnoException | undefined>;
}

async function dial(port: number): Promise<Client> {
  const socket = net.connect({ host: "127.0.0.1", port, noDelay: true });
  const chunks: Buffer[] = [];
  let size = 0;
  let error: NodeJS.ErrnoException | undefined;
  socket.on("data", (d: Buffer) => {
    chunks.push(d);
    size += d.length;
  });
  socket.on("error", (e) => (error = e));
  const closed = new Promise<NodeJS.ErrnoException | undefined>((resolve) => socket.on("close", () => resolve(error)));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return {
    socket,
    text: () => Buffer.concat(chunks).toString("latin1"),
    received: (n, ms = 2000) => waitFor(() => size >= n, ms, 5),
    closed,
  };
}

/** Milliseconds from writing `payload` to its echo being back in full. */
async function roundTrip(c: Client, payload: string): Promise<number> {
  const before = c.text().length;
  const t0 = performance.now();
  c.socket.write(payload);
  expect(await c.received(before + payload.length, 5000)).toBe(true);
  return performance.now() - t0;
}

let proxy: FaultProxy | undefined;
let echo: Echo | undefined;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
  await proxy?.close();
  await echo?.close();
  proxy = undefined;
  echo = undefined;
});

async function echoBehindProxy(): Promise<{ proxy: FaultProxy; echo: Echo }> {
  echo = await startEcho();
  proxy = await startFaultProxy(echo);
  return { proxy, echo };
}

async function client(port: number): Promise<Client> {
  const c = await dial(port);
  cleanups.push(() => c.socket.destroy());
  return c;
}

// ---------------------------------------------------------------------------------------------------------

describe("fault proxy against an echo server", () => {
  it("pass: bytes go through unchanged both ways, and are counted", async () => {
    const { proxy } = await echoBehindProxy();
    expect(proxy.host).toBe("127.0.0.1");
    const c = await client(proxy.port);
    await roundTrip(c, "hello, warren");
    expect(c.text()).toBe("hello, warren");
    expect(proxy.stats()).toMatchObject({ accepted: 1, refused: 0, open: 1, bytesUp: 13, bytesDown: 13, droppedUp: 0, droppedDown: 0, queued: 0 });
  });

  it("reset: both sides of every connection see a reset at once; new connections work", async () => {
    const { proxy, echo } = await echoBehindProxy();
    const a = await client(proxy.port);
    const b = await client(proxy.port);
    await roundTrip(a, "a");
    await roundTrip(b, "b");
    const t0 = performance.now();
    proxy.reset();
    const [ea, eb] = await within(1000, Promise.all([a.closed, b.closed]), "client sockets closing");
    expect(performance.now() - t0).toBeLessThan(500);
    expect(ea?.code).toBe("ECONNRESET");
    expect(eb?.code).toBe("ECONNRESET");
    expect(await waitFor(() => echo.accepted.every((s) => s.socket.destroyed), 1000)).toBe(true);
    expect(echo.accepted.map((s) => s.error?.code)).toEqual(["ECONNRESET", "ECONNRESET"]);
    expect(proxy.stats().open).toBe(0);
    const c = await client(proxy.port);
    await roundTrip(c, "after");
    expect(proxy.stats()).toMatchObject({ accepted: 3, open: 1 });
  });

  it("blackhole: sockets stay open, bytes both ways are dropped and not queued; turning it off lets new bytes through", async () => {
    const { proxy, echo } = await echoBehindProxy();
    const c = await client(proxy.port);
    await roundTrip(c, "x");
    proxy.blackhole(true);
    c.socket.write("lost");
    expect(await c.received(5, 300)).toBe(false);
    expect(c.socket.destroyed).toBe(false);
    expect(echo.accepted[0]!.socket.destroyed).toBe(false);
    // Bytes from the upstream side are dropped too.
    echo.accepted[0]!.socket.write("from-upstream");
    await sleep(100);
    expect(c.text()).toBe("x");
    // 8 MiB into the blackhole: the proxy keeps reading and holds none of it, so the sender's buffer drains.
    const big = Buffer.alloc(8 << 20, 0x61);
    c.socket.write(big);
    expect(await waitFor(() => c.socket.writableLength === 0, 5000)).toBe(true);
    expect(proxy.stats()).toMatchObject({ queued: 0, droppedUp: 4 + big.length, droppedDown: 13, bytesUp: 1, bytesDown: 1 });
    proxy.blackhole(false);
    await roundTrip(c, "back");
    expect(c.text()).toBe("xback");
  });

  it("blackhole drops bytes that were waiting in a latency queue", async () => {
    const { proxy } = await echoBehindProxy();
    const c = await client(proxy.port);
    proxy.latency(200);
    c.socket.write("queued");
    await waitFor(() => proxy.stats().queued > 0, 1000, 2);
    proxy.blackhole(true);
    await sleep(300);
    expect(proxy.stats()).toMatchObject({ queued: 0, bytesUp: 0, droppedUp: 6 });
  });

  it("refuse: new connections are reset at once, existing ones carry on; off again, connecting works", async () => {
    const { proxy, echo } = await echoBehindProxy();
    const old = await client(proxy.port);
    proxy.refuse(true);
    const refused = await dial(proxy.port).catch((e: NodeJS.ErrnoException) => e);
    if (!(refused instanceof Error)) {
      // The kernel completed the handshake before the proxy saw it: the reset arrives right after.
      const err = await within(1000, refused.closed, "refused socket closing");
      expect(err?.code).toBe("ECONNRESET");
      expect(refused.text()).toBe("");
    } else {
      expect(refused.code).toBe("ECONNRESET");
    }
    await roundTrip(old, "still here");
    expect(echo.accepted).toHaveLength(1); // the refused connection never reached the upstream
    expect(proxy.stats()).toMatchObject({ accepted: 2, refused: 1, open: 1 });
    proxy.refuse(false);
    await roundTrip(await client(proxy.port), "welcome");
    expect(proxy.stats()).toMatchObject({ accepted: 3, refused: 1, open: 2 });
  });

  it("latency: each direction is delayed by the latency, so a round trip takes at least twice as long", async () => {
    const { proxy } = await echoBehindProxy();
    const c = await client(proxy.port);
    const base = await roundTrip(c, "warm");
    proxy.latency(100);
    const slow = await roundTrip(c, "slow");
    expect(slow).toBeGreaterThanOrEqual(200);
    expect(slow).toBeLessThan(200 + 500 + base);
    proxy.latency(0, "down");
    const oneWay = await roundTrip(c, "up");
    expect(oneWay).toBeGreaterThanOrEqual(100);
    expect(oneWay).toBeLessThan(slow); // one delayed direction, not two
    proxy.latency(0);
    expect(await roundTrip(c, "fast")).toBeLessThan(200); // under the 2 × 100 ms a delayed round trip takes
  });

  it("latency keeps the order of bytes when the delay is shortened while chunks wait", async () => {
    const { proxy } = await echoBehindProxy();
    const c = await client(proxy.port);
    proxy.latency(300);
    let sent = "";
    for (let i = 0; i < 20; i++) {
      const part = `[${i}]`;
      sent += part;
      c.socket.write(part);
      await sleep(5);
      if (i === 9) proxy.latency(0); // later chunks are due before earlier ones, and must still come after them
    }
    expect(await c.received(sent.length, 3000)).toBe(true);
    expect(c.text()).toBe(sent);
  });

  it("latency holds at most MAX_QUEUED bytes per direction: beyond that the sender is pushed back", async () => {
    const { proxy } = await echoBehindProxy();
    const c = await client(proxy.port);
    proxy.latency(10_000);
    const big = Buffer.alloc(16 << 20, 0x62);
    c.socket.write(big);
    let peak = 0;
    for (let i = 0; i < 40; i++) {
      peak = Math.max(peak, proxy.stats().queued);
      await sleep(10);
    }
    // A socket read delivers at most 64 KiB: the queue overshoots the cap by one read at most.
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(MAX_QUEUED + 65_536);
    expect(c.socket.writableLength).toBeGreaterThan(0); // the rest waits at the sender, not in the proxy
  });

  it("pause stops client → upstream (upstream → client flows on); resume delivers what waited", async () => {
    const { proxy, echo } = await echoBehindProxy();
    const c = await client(proxy.port);
    await roundTrip(c, "1");
    proxy.pause();
    c.socket.write("2");
    echo.accepted[0]!.socket.write("down");
    expect(await c.received(5, 1000)).toBe(true); // "1" + "down"
    await sleep(100);
    expect(c.text()).toBe("1down");
    proxy.resume();
    expect(await c.received(6, 1000)).toBe(true);
    expect(c.text()).toBe("1down2");
  });

  it("setUpstream: new connections go to the new upstream, existing ones keep theirs", async () => {
    const { proxy } = await echoBehindProxy();
    const other = await startEcho("B:");
    cleanups.push(() => other.close());
    const old = await client(proxy.port);
    proxy.setUpstream(other);
    expect(proxy.upstream).toEqual({ host: "127.0.0.1", port: other.port });
    const moved = await client(proxy.port);
    moved.socket.write("hi");
    expect(await moved.received(4)).toBe(true);
    expect(moved.text()).toBe("B:hi");
    await roundTrip(old, "same");
    expect(old.text()).toBe("same");
  });

  it("an end from either side passes through, after the bytes delayed before it", async () => {
    const { proxy, echo } = await echoBehindProxy();
    const c = await client(proxy.port);
    await roundTrip(c, "x");
    proxy.latency(100);
    echo.accepted[0]!.socket.end("bye");
    const ended = new Promise<void>((resolve) => c.socket.once("end", resolve));
    await within(2000, ended, "end reaching the client");
    expect(c.text()).toBe("xbye");
  });

  it("close: stops listening and resets every connection", async () => {
    const { proxy } = await echoBehindProxy();
    const c = await client(proxy.port);
    await within(2000, proxy.close(), "proxy close");
    expect((await within(1000, c.closed, "client socket closing"))?.code).toBe("ECONNRESET");
    await expect(dial(proxy.port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("rejects a negative or non-finite latency", async () => {
    const { proxy } = await echoBehindProxy();
    expect(() => proxy.latency(-1)).toThrow(RangeError);
    expect(() => proxy.latency(Number.NaN)).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe("fault proxy in front of the broker, with warren's client (recovery off)", () => {
  const url = (p: FaultProxy, query = "") => `amqp://guest:guest@127.0.0.1:${p.port}/${query}`;
  const silent = { logger: { warn() {} }, recovery: false };

  async function open(p: FaultProxy, query = ""): Promise<Connection> {
    const conn = await connect(url(p, query), { connectionTimeout: 5000, ...silent });
    cleanups.push(() => within(10_000, conn.close(), "close").catch(() => undefined));
    return conn;
  }

  it("a reset during a consume ends the consumer loop with TransportError at once", async () => {
    proxy = await startFaultProxy();
    const conn = await open(proxy);
    const closed = new Promise<WarrenError | undefined>((resolve) => conn.once("close", resolve));
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    for (let i = 0; i < 5; i++) await ch.basicPublish("", queue, `m${i}`);
    const consumer = await ch.basicConsume(queue);
    let got = 0;
    const loop = (async () => {
      for await (const m of consumer) {
        m.ack();
        got++;
      }
    })();
    expect(await waitFor(() => got === 5, 5000)).toBe(true);
    const t0 = performance.now();
    proxy.reset();
    await expect(within(1000, loop, "consumer loop")).rejects.toBeInstanceOf(TransportError);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(await within(1000, closed, "close event")).toBeInstanceOf(TransportError);
    expect(conn.closed).toBe(true);
  });

  it("a blackholed broker with heartbeat=1 is declared dead within 2 s (T + T/4 + 50 ms after the last input)", async () => {
    proxy = await startFaultProxy();
    const conn = await open(proxy, "?heartbeat=1");
    const ch = await conn.openChannel();
    await ch.basicQos(1); // the link works
    const closed = new Promise<WarrenError | undefined>((resolve) => conn.once("close", resolve));
    const t0 = performance.now();
    proxy.blackhole(true);
    const pending = ch.queueDeclare("", { exclusive: true }); // never answered
    const err = await within(3000, closed, "close event");
    const detectedAfter = performance.now() - t0;
    expect(err).toBeInstanceOf(TransportError);
    expect(err?.message).toMatch(/missed heartbeats/);
    // The last frame from the broker came at most T/2 before the blackhole: 0.8 s ≤ detection ≤ 1.3 s + timers.
    expect(detectedAfter).toBeGreaterThan(700);
    expect(detectedAfter).toBeLessThan(2000);
    await expect(pending).rejects.toBeInstanceOf(TransportError);
    expect(proxy.stats().droppedDown).toBeGreaterThan(0); // the broker's heartbeats went into the blackhole
  });

  it("refuse makes connect fail quickly; off again, connect works", async () => {
    proxy = await startFaultProxy();
    proxy.refuse(true);
    const t0 = performance.now();
    const err = await connect(url(proxy), { connectionTimeout: 5000, ...silent }).then(
      (c) => {
        cleanups.push(() => c.close());
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TransportError);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(proxy.stats()).toMatchObject({ refused: 1, open: 0 });
    proxy.refuse(false);
    const conn = await open(proxy);
    await (await conn.openChannel()).basicQos(1);
  });

  it("latency adds at least twice the delay to an RPC round trip", async () => {
    proxy = await startFaultProxy();
    const conn = await open(proxy);
    const ch = await conn.openChannel();
    await ch.basicQos(1);
    proxy.latency(100);
    const t0 = performance.now();
    await ch.basicQos(2);
    const rtt = performance.now() - t0;
    expect(rtt).toBeGreaterThanOrEqual(200);
    expect(rtt).toBeLessThan(1500);
    proxy.pass();
    const t1 = performance.now();
    await ch.basicQos(3);
    expect(performance.now() - t1).toBeLessThan(200); // under the 2 × 100 ms a delayed round trip takes
  });
});
