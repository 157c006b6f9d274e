/**
 * Automatic recovery against RabbitMQ, with a fault proxy between client and broker: a connection the network
 * takes away comes back by itself — the same Connection, Channel and Consumer objects, the topology replayed
 * (a server-named queue renamed, its binding and consumer following), stale delivery tags dropped, publishes
 * made while disconnected sent once it is back, and unconfirmed ones reported as OutcomeUnknownError.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Connection, connect, type ConnectOptions, type Message, NotConnectedError, OutcomeUnknownError } from "../../src/index.ts";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy.ts";
import { recordUnhandledRejections, sleep, uniqueName, waitFor, within } from "../support/broker.ts";
import { outcomes, settled, track } from "../support/loss.ts";

recordUnhandledRejections();

const FAST: ConnectOptions["recovery"] = { reconnect: { initialDelayMs: 20, maxDelayMs: 200 } };

let proxy: FaultProxy | undefined;
const opened: Connection[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

async function through(options: ConnectOptions = {}): Promise<{ conn: Connection; proxy: FaultProxy }> {
  proxy ??= await startFaultProxy();
  const conn = await connect(`amqp://guest:guest@127.0.0.1:${proxy.port}/`, { recovery: FAST, logger: { warn() {} }, ...options });
  opened.push(conn);
  return { conn, proxy };
}

/** Waits for the next event `name` of `conn`. */
function next<T = unknown>(conn: Connection, name: "disconnected" | "recovered" | "recoveryFailed" | "close"): Promise<T> {
  return new Promise((resolve) => conn.once(name, ((x: T) => resolve(x)) as never));
}

afterEach(async () => {
  for (const c of opened.splice(0)) await c.close().catch(() => undefined);
  for (const f of cleanups.splice(0)) await f().catch(() => undefined);
  await proxy?.close();
  proxy = undefined;
});

/** A durable-enough queue on the broker directly (not through the proxy), deleted after the test. */
async function namedQueue(): Promise<string> {
  const admin = await connect("amqp://guest:guest@127.0.0.1:5672/", { recovery: false });
  const ch = await admin.openChannel();
  const queue = uniqueName("warren.recovery");
  await ch.queueDeclare(queue);
  cleanups.push(async () => {
    const c = await admin.openChannel();
    await c.queueDelete(queue);
    await admin.close();
  });
  return queue;
}

describe("recovery after the network drops the connection", () => {
  it("keeps the same objects: a consumer loop and a confirm-mode publisher carry on across repeated resets, no confirmed message lost", async () => {
    const queue = await namedQueue();
    const { conn, proxy } = await through();
    const disconnects: unknown[] = [];
    conn.on("disconnected", (e) => disconnects.push(e));
    const ch = await conn.openChannel();
    await ch.basicQos(50);
    await ch.confirmSelect();
    await ch.queueDeclare(queue);
    const consumer = await ch.basicConsume(queue);
    const received = new Set<string>();
    const loop = (async () => {
      for await (const m of consumer) {
        received.add(m.bodyText());
        m.ack();
      }
    })();

    const outcome = outcomes();
    const publishes: Promise<void>[] = [];
    for (let i = 0; i < 600; i++) {
      const id = `m${i}`;
      publishes.push(
        track(outcome, id, ch.basicPublish("", queue, id)),
      );
      if (i % 150 === 75) {
        proxy.reset();
        await next(conn, "recovered");
      } else if (i % 10 === 0) await sleep(1);
    }
    await within(20_000, Promise.all(publishes), "every publish settles");
    expect(outcome.other).toEqual([]);
    expect(outcome.nacked).toEqual([]);
    expect(settled(outcome)).toBe(600);
    expect(outcome.ok.length).toBeGreaterThan(400);
    // Every confirmed message arrives (redelivered ones counted once).
    expect(await waitFor(() => outcome.ok.every((id) => received.has(id)), 15_000)).toBe(true);
    expect(disconnects).toHaveLength(4);
    expect(conn.state).toBe("open");
    expect(ch.closed).toBe(false);
    expect(consumer.closed).toBe(false);
    await consumer.cancel();
    await loop;
  });

  it("replays a server-named queue under a new name; its binding and its consumer follow, and the rename is reported", async () => {
    const { conn, proxy } = await through();
    const ch = await conn.openChannel();
    const exchange = uniqueName("warren.recovery.x");
    await ch.exchangeDeclare(exchange, "fanout", { autoDelete: true });
    const { queue: before } = await ch.queueDeclare("", { exclusive: true });
    await ch.queueBind(before, exchange);
    const got: Message[] = [];
    const consumer = await ch.basicConsume(before, { noAck: true }, (m) => void got.push(m));

    const recovered = next<{ renamedQueues: { from: string; to: string }[]; failures: unknown[] }>(conn, "recovered");
    proxy.reset();
    const report = await within(10_000, recovered, "recovered");
    expect(report.failures).toEqual([]);
    expect(report.renamedQueues).toHaveLength(1);
    expect(report.renamedQueues[0]!.from).toBe(before);
    const after = report.renamedQueues[0]!.to;
    expect(after).not.toBe(before);
    expect(consumer.queue).toBe(after);

    await ch.basicPublish(exchange, "", "through the replayed binding");
    expect(await waitFor(() => got.length === 1, 5000)).toBe(true);
    expect(got[0]!.bodyText()).toBe("through the replayed binding");
  });

  it("an ack for a delivery from before the recovery sends nothing and returns false; the message comes again, redelivered", async () => {
    const queue = await namedQueue();
    const { conn, proxy } = await through();
    const ch = await conn.openChannel();
    await ch.basicQos(1);
    await ch.basicPublish("", queue, "once");
    const consumer = await ch.basicConsume(queue);
    const it = consumer[Symbol.asyncIterator]();
    const first = (await within(5000, it.next(), "first delivery")).value as Message;
    expect(first.redelivered).toBe(false);

    const recovered = next(conn, "recovered");
    proxy.reset();
    await within(10_000, recovered, "recovered");
    expect(first.ack()).toBe(false); // stale: acking it would close the channel with 406
    const again = (await within(5000, it.next(), "redelivery")).value as Message;
    expect(again.bodyText()).toBe("once");
    expect(again.redelivered).toBe(true);
    expect(again.ack()).toBe(true);
    await sleep(100);
    expect(ch.closed).toBe(false);
    await consumer.cancel();
  });

  it("a confirm-mode publish whose ack is lost with the connection rejects with OutcomeUnknownError", async () => {
    const queue = await namedQueue();
    const { conn, proxy } = await through();
    const ch = await conn.openChannel();
    await ch.confirmSelect();
    proxy.pause(); // the publish stays in the proxy: its outcome cannot be known
    const publishing = ch.basicPublish("", queue, "in doubt");
    await sleep(50);
    const recovered = next(conn, "recovered");
    proxy.reset();
    proxy.resume();
    await expect(within(5000, publishing, "publish")).rejects.toBeInstanceOf(OutcomeUnknownError);
    await within(10_000, recovered, "recovered");
    await expect(ch.basicPublish("", queue, "after")).resolves.toBeUndefined();
  });

  it('unconfirmed: "resend": across repeated resets every publish is confirmed (none unknown), each message arrives at least once with its message-id', async () => {
    const queue = await namedQueue();
    const { conn, proxy } = await through({ recovery: { ...FAST, unconfirmed: "resend" } });
    const ch = await conn.openChannel();
    await ch.confirmSelect();
    const consumer = await ch.basicConsume(queue);
    const arrivals = new Map<string, number>();
    const idsMatch: boolean[] = [];
    const loop = (async () => {
      for await (const m of consumer) {
        const id = m.bodyText();
        arrivals.set(id, (arrivals.get(id) ?? 0) + 1);
        idsMatch.push(m.properties.messageId === id);
        m.ack();
      }
    })();
    const outcome = outcomes();
    const publishes: Promise<void>[] = [];
    let resent = 0;
    conn.on("recovered", (r) => (resent += r.resent));
    for (let i = 0; i < 400; i++) {
      const id = `r${i}`;
      publishes.push(track(outcome, id, ch.basicPublish("", queue, id, { messageId: id })));
      if (i % 100 === 50) {
        proxy.pause(); // what is in flight now stays unconfirmed
        await sleep(20);
        proxy.reset();
        proxy.resume();
        await next(conn, "recovered");
      }
    }
    await within(20_000, Promise.all(publishes), "every publish settles");
    expect(outcome.other).toEqual([]);
    expect(outcome.unknown).toEqual([]);
    expect(outcome.nacked).toEqual([]);
    expect(outcome.ok).toHaveLength(400);
    expect(resent).toBeGreaterThan(0); // the pauses left publishes unconfirmed, and they went again
    expect(await waitFor(() => arrivals.size === 400, 15_000)).toBe(true);
    expect(idsMatch.every(Boolean)).toBe(true);
    await consumer.cancel();
    await loop;
  });

  it("a publish made while disconnected waits for the connection and is sent once it is back", async () => {
    const queue = await namedQueue();
    const { conn, proxy } = await through();
    const ch = await conn.openChannel();
    await ch.confirmSelect();
    proxy.refuse(true);
    const disconnected = next(conn, "disconnected");
    proxy.reset();
    await within(5000, disconnected, "disconnected");
    expect(conn.state).toBe("recovering");
    const body = new TextEncoder().encode("while away");
    const publishing = ch.basicPublish("", queue, body);
    body.fill(0); // the waiting publish owns a copy
    await sleep(200);
    proxy.refuse(false);
    await within(10_000, publishing, "publish after recovery");
    const m = await ch.basicGet(queue, { noAck: true });
    expect(m?.bodyText()).toBe("while away");
  });

  it("a publish waits at most waitTimeout, then fails as not sent; close() during recovery ends it and everything pending", async () => {
    const { conn, proxy } = await through({ recovery: { reconnect: { initialDelayMs: 20, maxDelayMs: 50 }, waitTimeout: 300 } });
    const ch = await conn.openChannel();
    proxy.refuse(true);
    const disconnected = next(conn, "disconnected");
    proxy.reset();
    await within(5000, disconnected, "disconnected");
    const started = Date.now();
    await expect(ch.basicPublish("", "q", "never")).rejects.toBeInstanceOf(NotConnectedError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    const waiting = ch.queueDeclare("", { exclusive: true }).then(() => "declared", (e: unknown) => e);
    let closeEvents = 0;
    conn.on("close", () => closeEvents++);
    const closed = next(conn, "close");
    // Let a reconnect attempt in, and hang it in its handshake: close() must end it too.
    proxy.blackhole(true);
    proxy.refuse(false);
    await waitFor(() => proxy.stats().open > 0, 2000);
    await conn.close();
    await within(1000, closed, "close event");
    await sleep(100);
    expect(closeEvents).toBe(1);
    expect(proxy.stats().open).toBe(0); // the attempt's socket was closed
    expect(await waiting).toBeInstanceOf(NotConnectedError);
    expect(conn.state).toBe("closed");
    expect(ch.closed).toBe(true);
  });

  it("gives up after maxAttempts: recoveryFailed, then close with the error", async () => {
    const { conn, proxy } = await through({ recovery: { reconnect: { initialDelayMs: 10, maxDelayMs: 20, maxAttempts: 3 } } });
    const ch = await conn.openChannel();
    const consumer = await ch.basicConsume((await ch.queueDeclare("", { exclusive: true })).queue);
    proxy.refuse(true);
    const failed = next<Error>(conn, "recoveryFailed");
    const closed = next<Error | undefined>(conn, "close");
    proxy.reset();
    const error = await within(10_000, failed, "recoveryFailed");
    expect(error).toBeInstanceOf(Error);
    expect(await within(1000, closed, "close")).toBe(error);
    expect(conn.closed).toBe(true);
    expect(consumer.closed).toBe(true);
    await expect(ch.basicPublish("", "q", "x")).rejects.toBeTruthy();
  });

  it("a blackholed broker is declared dead by heartbeats (within 1.5 × the timeout) and the connection recovers once the network is back", async () => {
    const queue = await namedQueue();
    const { conn, proxy } = await through({ heartbeat: 1 });
    const ch = await conn.openChannel();
    await ch.confirmSelect();
    await ch.basicPublish("", queue, "before");
    const disconnected = next<Error>(conn, "disconnected");
    proxy.blackhole(true);
    const t0 = Date.now();
    const cause = await within(5000, disconnected, "disconnected");
    expect(Date.now() - t0).toBeLessThan(2500); // T + T/4 + the re-check = 1.3 s; room for a busy CI machine
    expect(cause.message).toMatch(/heartbeat/);
    const recovered = next(conn, "recovered");
    proxy.blackhole(false);
    await within(10_000, recovered, "recovered");
    await ch.basicPublish("", queue, "after");
    expect((await ch.queueDeclare(queue, { passive: true })).messageCount).toBe(2);
  });

  it("no false alarm: an event loop blocked for 0.8 × the heartbeat timeout leaves a healthy connection alone", async () => {
    const { conn } = await through({ heartbeat: 2 });
    const ch = await conn.openChannel();
    const disconnects: unknown[] = [];
    conn.on("disconnected", (e) => disconnects.push(e));
    await sleep(1100); // the broker's heartbeats (every T/2 = 1 s) are flowing
    const until = Date.now() + 1600;
    while (Date.now() < until) {
      // a synchronous stall: no timer, no socket read runs meanwhile
    }
    await sleep(800); // the dead-peer deadline passes now, with the broker's heartbeats waiting in the socket
    expect(disconnects).toEqual([]);
    expect(conn.state).toBe("open");
    await ch.queueDeclare("", { exclusive: true });
  });

  it("several hosts: connect skips one that refuses, and recovery fails over to another host, carrying on there", async () => {
    const queue = await namedQueue();
    const a = await startFaultProxy();
    const b = await startFaultProxy();
    cleanups.push(() => a.close(), () => b.close());
    a.refuse(true);
    const conn = await connect([`amqp://guest:guest@127.0.0.1:${a.port}/`, `amqp://guest:guest@127.0.0.1:${b.port}/`], { recovery: FAST, logger: { warn() {} } });
    opened.push(conn);
    expect(a.stats().refused).toBe(1);
    expect(b.stats().open).toBe(1); // connected through b
    const ch = await conn.openChannel();
    await ch.confirmSelect();
    a.refuse(false);
    const recovered = next(conn, "recovered");
    b.reset(); // b's "node" goes away: the next attempt goes to a first (b just failed)
    b.refuse(true);
    await within(10_000, recovered, "recovered");
    expect(a.stats().open).toBe(1);
    await ch.basicPublish("", queue, "via a");
    expect((await ch.queueDeclare(queue, { passive: true })).messageCount).toBe(1);
  });

  it("a hosts option gives the host list; the URL gives credentials and vhost", async () => {
    const p = await startFaultProxy();
    cleanups.push(() => p.close());
    const conn = await connect("amqp://guest:guest@ignored.invalid/", { hosts: ["127.0.0.1:1", `127.0.0.1:${p.port}`], recovery: false });
    opened.push(conn);
    expect(p.stats().open).toBe(1);
    expect(conn.state).toBe("open");
  });

  describe("recovery.retryFirstConnect", () => {
    async function refusing(): Promise<FaultProxy> {
      proxy ??= await startFaultProxy();
      proxy.refuse(true);
      return proxy;
    }
    const url = () => `amqp://guest:guest@127.0.0.1:${proxy!.port}/`;

    it("keeps trying while the broker refuses, and resolves once it answers", async () => {
      const p = await refusing();
      const connecting = connect(url(), { recovery: { retryFirstConnect: true, reconnect: { initialDelayMs: 20, maxDelayMs: 50 } }, logger: { warn() {} } });
      await waitFor(() => p.stats().refused >= 3, 5000);
      p.refuse(false);
      const conn = await within(5000, connecting, "connect");
      opened.push(conn);
      expect(conn.state).toBe("open");
      expect(p.stats().refused).toBeGreaterThanOrEqual(3);
    });

    it("rejects with the connect error once the policy gives up (maxAttempts), and only then", async () => {
      const p = await refusing();
      const error = await within(5000, connect(url(), { recovery: { retryFirstConnect: true, reconnect: { initialDelayMs: 10, maxAttempts: 3 } } }).then(() => undefined, (e: unknown) => e), "connect");
      expect(error).toMatchObject({ code: "TRANSPORT_ERROR" });
      expect(p.stats().refused).toBe(4); // the first try and three retries
    });

    it("its waits end when the connect signal aborts: the connect rejects with AbortError", async () => {
      const p = await refusing();
      const ac = new AbortController();
      const connecting = connect(url(), { signal: ac.signal, recovery: { retryFirstConnect: true, reconnect: { initialDelayMs: 60_000, maxDelayMs: 60_000 } } });
      await waitFor(() => p.stats().refused >= 2, 5000); // the first try and the immediate retry; now it waits a minute
      ac.abort();
      await expect(within(1000, connecting, "connect")).rejects.toMatchObject({ code: "ABORTED" });
    });

    it("bad credentials are not retried: the connect rejects at once with the 403", async () => {
      proxy ??= await startFaultProxy();
      const started = Date.now();
      const connecting = connect(`amqp://guest:wrong@127.0.0.1:${proxy.port}/`, { recovery: { retryFirstConnect: true, reconnect: { initialDelayMs: 10 } } });
      await expect(within(5000, connecting, "connect")).rejects.toMatchObject({ replyCode: 403 });
      expect(proxy.stats().accepted).toBe(1);
      expect(Date.now() - started).toBeLessThan(5000);
    });

    it("without it, a refused first connect rejects at once", async () => {
      const p = await refusing();
      await expect(within(5000, connect(url(), { recovery: FAST }), "connect")).rejects.toMatchObject({ code: "TRANSPORT_ERROR" });
      expect(p.stats().refused).toBe(1);
    });
  });

  it("recovery: false closes the connection on a network failure, as before", async () => {
    const { conn, proxy } = await through({ recovery: false });
    const closed = next<Error | undefined>(conn, "close");
    proxy.reset();
    expect(await within(5000, closed, "close")).toBeInstanceOf(Error);
    expect(conn.state).toBe("closed");
  });
});
