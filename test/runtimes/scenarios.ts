/**
 * Integration scenarios that every runtime must pass the same way, written once. Each runner —
 * test/runtimes/node.test.ts (vitest), deno/scenarios_test.ts (Deno.test), bun/scenarios_test.ts (bun:test)
 * — registers every entry of `scenarios` as a test and runs it with its own adapter in `env.w`.
 *
 * Nothing here uses a test framework or a runtime's own API: only the warren client, standard JavaScript,
 * and the small assertions below. What differs between runtimes is stated as data in `env.caps`, never
 * tested with `if (runtime === ...)` inside a scenario.
 */
import type * as Warren from "../../src/adapters/node.ts";
import type { RuntimeName, StallProxy, TlsEnv, UnixProxy, PeerResult } from "./support.ts";

/** What an adapter module exports: `connect` bound to its runtime, plus the client API. */
export type WarrenModule = Pick<typeof Warren, Exclude<keyof typeof Warren, "nodeRuntime" | "nodeTransport">>;

export interface ScenarioEnv {
  runtime: RuntimeName;
  w: WarrenModule;
  /** The main broker's URI. */
  url: string;
  /** The TLS broker; TLS scenarios are skipped without it. */
  tls: TlsEnv | undefined;
  /** A unix socket forwarding to the broker, or to `port` on 127.0.0.1. */
  unixProxy(port?: number): Promise<UnixProxy>;
  stallProxy(): Promise<StallProxy>;
  /** Runs test/runtimes/peer.ts on another runtime. */
  runPeer(runtime: RuntimeName, vars: Record<string, string>): Promise<PeerResult>;
  /** The runtimes whose clients the cross-runtime scenario talks to. */
  peers: readonly RuntimeName[];
  /** What this runtime's adapter can and cannot do. */
  caps: {
    /** tls.verify = false is honoured (else refused with a UsageError). */
    tlsVerifyOff: boolean;
    /** amqps with socketPath runs TLS over the unix socket (else refused with a UsageError). */
    tlsOverUnix: boolean;
  };
}

/** How each runtime's adapter names itself in the "platform" client property. */
const PLATFORM: Record<RuntimeName, string> = { node: "Node.js v", deno: "Deno ", bun: "Bun " };

export interface Scenario {
  name: string;
  /** Needs the TLS broker. */
  tls?: boolean;
  /** Milliseconds the scenario may take. Default 30 s. */
  timeout?: number;
  run(env: ScenarioEnv): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------
// Assertions (no framework: a failed check throws an Error saying what was expected)

export class AssertionError extends Error {
  override name = "AssertionError";
}

function show(v: unknown): string {
  try {
    return typeof v === "string" ? JSON.stringify(v) : typeof v === "bigint" ? `${v}n` : JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

export function ok(cond: unknown, what: string): asserts cond {
  if (!cond) throw new AssertionError(`expected ${what}`);
}

export function equal<T>(actual: T, expected: T, what: string): void {
  if (!Object.is(actual, expected)) throw new AssertionError(`${what}: expected ${show(expected)}, got ${show(actual)}`);
}

export function deepEqual(actual: unknown, expected: unknown, what: string): void {
  if (show(actual) !== show(expected)) throw new AssertionError(`${what}: expected ${show(expected)}, got ${show(actual)}`);
}

export function bytesEqual(actual: Uint8Array, expected: Uint8Array, what: string): void {
  if (actual.byteLength !== expected.byteLength) throw new AssertionError(`${what}: expected ${expected.byteLength} bytes, got ${actual.byteLength}`);
  for (let i = 0; i < actual.byteLength; i++) {
    if (actual[i] !== expected[i]) throw new AssertionError(`${what}: bytes differ at offset ${i} (${actual[i]} != ${expected[i]})`);
  }
}

/** The error `p` rejects with; throws if it resolves. */
export async function rejection(p: Promise<unknown>, what: string): Promise<Error> {
  let value: unknown;
  try {
    value = await p;
  } catch (e) {
    ok(e instanceof Error, `${what} to reject with an Error, not ${show(e)}`);
    return e;
  }
  // A connect that unexpectedly succeeded must not stay open.
  await (value as { close?: () => Promise<void> } | undefined)?.close?.().catch(() => undefined);
  throw new AssertionError(`expected ${what} to reject, but it resolved`);
}

export function instanceOf(e: unknown, C: abstract new (...args: never[]) => unknown, what: string): void {
  if (!(e instanceof C)) throw new AssertionError(`${what}: expected a ${C.name}, got ${e instanceof Error ? `${e.name}: ${e.message}` : show(e)}`);
}

export function matches(text: string, re: RegExp, what: string): void {
  if (!re.test(text)) throw new AssertionError(`${what}: expected ${show(text)} to match ${re}`);
}

/** Rejects when `p` has not settled within `ms`. */
export async function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new AssertionError(`${what} did not settle within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** True when `p` is still pending after `ms`. */
async function pendingAfter(p: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await sleep(ms);
  return !settled;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A short name no other test or run uses. */
export function uniqueName(prefix: string): string {
  const b = crypto.getRandomValues(new Uint8Array(5));
  return `${prefix}.${Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")}`;
}

/** `n` bytes of a pattern that depends on `seed`: a reordered, dropped or corrupted chunk changes it. */
export function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Opens connections for one scenario and closes them all at the end, whatever happened. */
async function withConnections(env: ScenarioEnv, f: (open: (url?: string, o?: Warren.ConnectOptions) => Promise<Warren.Connection>) => Promise<void>): Promise<void> {
  const opened: Warren.Connection[] = [];
  try {
    await f(async (url = env.url, o = {}) => {
      const conn = await env.w.connect(url, { connectionName: `warren runtimes (${env.runtime})`, connectionTimeout: 10_000, ...o });
      opened.push(conn);
      return conn;
    });
  } finally {
    await Promise.allSettled(opened.map((c) => within(10_000, c.close(), "close")));
  }
}

/** Declares a queue, publishes with a confirm, gets the message back. */
async function roundTrip(conn: Warren.Connection, what: string, userId?: string): Promise<void> {
  const ch = await conn.openChannel();
  const { queue } = await ch.queueDeclare("", { exclusive: true });
  await ch.confirmSelect();
  const body = `${what} ${queue}`;
  await ch.basicPublish("", queue, body, userId === undefined ? {} : { userId });
  const msg = await ch.basicGet(queue, { noAck: true });
  equal(msg?.bodyText(), body, `the body got back (${what})`);
  if (userId !== undefined) equal(msg?.properties.userId, userId, "the validated user-id");
  await ch.close();
}

// ---------------------------------------------------------------------------------------------------------

export const scenarios: Scenario[] = [
  {
    name: "connects, completes the handshake and opens a channel",
    async run(env) {
      await withConnections(env, async (open) => {
        const conn = await open();
        equal(conn.serverProperties.product, "RabbitMQ", "server product");
        equal(conn.closed, false, "conn.closed");
        const ch = await conn.openChannel();
        ok(ch.id >= 1, "a channel id of 1 or more");
        await ch.close();
      });
    },
  },
  {
    name: "declares an exchange and a queue, binds them, and routes only matching messages",
    async run(env) {
      await withConnections(env, async (open) => {
        const ch = await (await open()).openChannel();
        const exchange = uniqueName("warren.rt.topic");
        await ch.exchangeDeclare(exchange, "topic", { autoDelete: true });
        const { queue, messageCount } = await ch.queueDeclare("", { exclusive: true });
        matches(queue, /^amq\.gen-/, "server-named queue");
        equal(messageCount, 0, "messages in a new queue");
        await ch.queueBind(queue, exchange, "orders.*");
        await ch.confirmSelect();
        await ch.basicPublish(exchange, "orders.created", "routed");
        await ch.basicPublish(exchange, "invoices.created", "not routed");
        const passive = await ch.queueDeclare(queue, { passive: true });
        equal(passive.messageCount, 1, "messages routed to the queue");
        const msg = await ch.basicGet(queue, { noAck: true });
        equal(msg?.bodyText(), "routed", "routed body");
        equal(msg?.exchange, exchange, "message exchange");
        equal(msg?.routingKey, "orders.created", "message routing key");
        await ch.queueUnbind(queue, exchange, "orders.*");
        await ch.exchangeDelete(exchange);
        await ch.queueDelete(queue);
      });
    },
  },
  {
    name: "publishes with confirms: each publish resolves once the broker has the message",
    async run(env) {
      await withConnections(env, async (open) => {
        const { w } = env;
        const ch = await (await open()).openChannel();
        const { queue } = await ch.queueDeclare("", { exclusive: true });
        await ch.confirmSelect();
        const n = 500;
        const big = pattern(1024 * 1024 + 7, 1); // larger than frame_max: several body frames
        const all = pattern(256, 0).map((_, i) => i); // every byte value
        await Promise.all([
          ...Array.from({ length: n }, (_, i) => ch.basicPublish("", queue, `message ${i}`, { messageId: `m${i}`, headers: { i } })),
          ch.basicPublish("", queue, all, { contentType: "application/octet-stream" }),
          ch.basicPublish("", queue, big),
        ]);
        equal((await ch.queueDeclare(queue, { passive: true })).messageCount, n + 2, "messages in the queue after every confirm");
        const first = await ch.basicGet(queue, { noAck: true });
        equal(first?.bodyText(), "message 0", "first body");
        equal(first?.properties.messageId, "m0", "messageId property");
        deepEqual(first?.properties.headers, { i: 0 }, "headers property");
        await ch.queuePurge(queue);
        // A mandatory message nobody can take comes back, and its publish rejects.
        const err = await rejection(ch.basicPublish("", uniqueName("warren.rt.nowhere"), "lost", {}, { mandatory: true }), "an unroutable mandatory publish");
        instanceOf(err, w.MessageReturnedError, "unroutable mandatory publish");
      });
    },
  },
  {
    name: "consumes in order and acks: bodies arrive intact and the queue is empty afterwards",
    async run(env) {
      await withConnections(env, async (open) => {
        const ch = await (await open()).openChannel();
        const { queue } = await ch.queueDeclare("", { exclusive: true });
        await ch.confirmSelect();
        const n = 200;
        const bodies = Array.from({ length: n }, (_, i) => (i % 50 === 49 ? pattern(3 * 1024 * 1024 + i, i) : pattern(1 + i * 37, i)));
        await Promise.all(bodies.map((b, i) => ch.basicPublish("", queue, b, { headers: { i } })));
        await ch.basicQos(20);
        const consumer = await ch.basicConsume(queue);
        let i = 0;
        for await (const msg of consumer) {
          equal(msg.properties.headers?.i, i, "delivery order");
          bytesEqual(msg.body, bodies[i]!, `body ${i}`);
          equal(msg.redelivered, false, "redelivered");
          msg.ack();
          if (++i === n) break; // leaving the loop cancels the consumer
        }
        equal(i, n, "messages consumed");
        // basic.cancel's round trip is behind every ack on the channel: the broker has them all.
        await consumer.cancel();
        equal(await ch.basicGet(queue), null, "basic.get on the drained queue");
        equal((await ch.queueDeclare(queue, { passive: true })).messageCount, 0, "messages left");
      });
    },
  },
  {
    name: "a channel error (406 on redeclare) is a typed error and the connection stays usable",
    async run(env) {
      await withConnections(env, async (open) => {
        const { w } = env;
        const conn = await open();
        const ch = await conn.openChannel();
        const queue = uniqueName("warren.rt.redeclare");
        await ch.queueDeclare(queue, { autoDelete: true });
        const err = await rejection(ch.queueDeclare(queue, { autoDelete: true, arguments: { "x-max-length": 10 } }), "a redeclare with other arguments");
        instanceOf(err, w.PreconditionFailedError, "the redeclare error");
        ok(w.isWarrenError(err), "isWarrenError(err)");
        const e = err as InstanceType<typeof w.PreconditionFailedError>;
        equal(e.code, "PRECONDITION_FAILED", "error code");
        equal(e.replyCode, 406, "reply code");
        matches(e.message, /x-max-length|inequivalent arg/, "error message");
        equal(ch.closed, true, "the failed channel is closed");
        // Later calls on that channel fail with the error that closed it.
        const again = await rejection(ch.queueDeclare("", { exclusive: true }), "a call on the closed channel");
        instanceOf(again, w.PreconditionFailedError, "a call on the closed channel");
        equal(conn.closed, false, "the connection is still open");
        const ch2 = await conn.openChannel();
        await ch2.confirmSelect();
        await ch2.basicPublish("", queue, "still works");
        equal((await ch2.basicGet(queue, { noAck: true }))?.bodyText(), "still works", "body on a new channel");
        await ch2.queueDelete(queue);
      });
    },
  },
  {
    name: "closes cleanly: close() resolves, the close event has no error, and later calls fail with ConnectionClosedError",
    async run(env) {
      const { w } = env;
      const conn = await w.connect(env.url, { connectionTimeout: 10_000 });
      const ch = await conn.openChannel();
      const { queue } = await ch.queueDeclare("", { exclusive: true });
      const consumer = await ch.basicConsume(queue, { noAck: true });
      const events: unknown[] = [];
      conn.on("close", (e) => events.push(e ?? "clean"));
      await within(10_000, conn.close(), "close()");
      equal(conn.closed, true, "conn.closed");
      await within(1000, conn.closedPromise, "closedPromise");
      deepEqual(events, ["clean"], "close events");
      equal(consumer.closed, true, "the consumer ended with its connection");
      instanceOf(await rejection(conn.openChannel(), "openChannel after close"), w.ConnectionClosedError, "openChannel after close");
      instanceOf(await rejection(ch.basicPublish("", queue, "x"), "publish after close"), w.ConnectionClosedError, "publish on a channel of the closed connection");
      await within(1000, conn.close(), "a second close()");
    },
  },
  {
    name: "a connection error from the broker (503 on an unknown exchange type) closes the connection with a typed error",
    async run(env) {
      const { w } = env;
      await withConnections(env, async (open) => {
        const conn = await open(undefined, { recovery: false }); // this pins the close itself; recovery would reconnect
        const closed = new Promise<unknown>((r) => conn.on("close", r));
        const ch = await conn.openChannel();
        const err = await rejection(ch.exchangeDeclare(uniqueName("warren.rt.bad"), "x-no-such-type"), "exchange.declare of an unknown type");
        instanceOf(err, w.ProtocolError, "the declare's error");
        equal((err as InstanceType<typeof w.ProtocolError>).replyCode, 503, "reply code");
        instanceOf(await within(5000, closed, "the close event"), w.ProtocolError, "the close event's error");
        equal(conn.closed, true, "conn.closed");
        await within(5000, conn.closedPromise, "closedPromise");
        // The broker hung up after close-ok; a new connection is unaffected.
        await roundTrip(await open(), "after a connection error");
      });
    },
  },
  {
    name: "a lost connection fails pending work and emits close with a TransportError",
    async run(env) {
      const { w } = env;
      const proxy = await env.stallProxy();
      try {
        const conn = await w.connect(`amqp://guest:guest@127.0.0.1:${proxy.port}/`, { connectionTimeout: 10_000, recovery: false });
        const closed = new Promise<unknown>((r) => conn.on("close", r));
        const ch = await conn.openChannel();
        proxy.stall(); // the request below never reaches the broker
        const pending = rejection(within(10_000, ch.queueDeclare("", { exclusive: true }), "the pending declare"), "the pending declare");
        await sleep(50);
        await proxy.close();
        instanceOf(await pending, w.TransportError, "the pending request's error");
        instanceOf(await within(5000, closed, "the close event"), w.TransportError, "the close event's error");
        equal(conn.closed, true, "conn.closed");
        instanceOf(await rejection(conn.openChannel(), "openChannel on the lost connection"), w.TransportError, "openChannel on the lost connection");
      } finally {
        proxy.resume();
        await proxy.close();
      }
    },
  },
  {
    name: "recovers a connection the network drops, three times: the same consumer keeps receiving, and publishing carries on",
    async run(env) {
      const { w } = env;
      const proxy = await env.stallProxy();
      try {
        const conn = await w.connect(`amqp://guest:guest@127.0.0.1:${proxy.port}/`, { connectionTimeout: 10_000, recovery: { reconnect: { initialDelayMs: 20 } } });
        try {
          const ch = await conn.openChannel();
          await ch.confirmSelect();
          const { queue } = await ch.queueDeclare("", { exclusive: true });
          const got: string[] = [];
          const consumer = await ch.basicConsume(queue, { noAck: true }, (m) => void got.push(m.bodyText()));
          await ch.basicPublish("", queue, "before");
          await within(5000, (async () => { while (got.length < 1) await sleep(10); })(), "the first delivery");
          const names = new Set([queue]);
          for (let round = 1; round <= 3; round++) {
            const recovered = new Promise<unknown>((r) => conn.once("recovered", r));
            proxy.cut();
            await within(10_000, recovered, `the recovered event (round ${round})`);
            equal(conn.state, "open", "conn.state after recovery");
            // The exclusive queue went with the old connection and was declared again under a new name.
            const renamed = consumer.queue;
            equal(names.has(renamed), false, `the replayed queue has a new name (round ${round})`);
            names.add(renamed);
            await within(5000, ch.basicPublish("", renamed, `after ${round}`), `a confirmed publish after recovery ${round}`);
            await within(5000, (async () => { while (got.length < round + 1) await sleep(10); })(), `the delivery after recovery ${round}`);
          }
          equal(got.join(","), "before,after 1,after 2,after 3", "what the consumer got");
        } finally {
          await conn.close();
        }
      } finally {
        await proxy.close();
      }
    },
  },
  {
    name: "keeps an idle connection alive with heartbeats (heartbeat=1)",
    timeout: 20_000,
    async run(env) {
      await withConnections(env, async (open) => {
        const conn = await open(`${env.url}?heartbeat=1`);
        // The broker closes a connection that misses two heartbeats: this needs the client's timer to
        // fire on this runtime and its heartbeat to be written.
        await sleep(3500);
        equal(conn.closed, false, "conn.closed after 3.5 s idle");
        await roundTrip(conn, "after heartbeats");
      });
    },
  },
  {
    name: "connects over a unix socket",
    async run(env) {
      const proxy = await env.unixProxy();
      try {
        await withConnections(env, async (open) => {
          const conn = await open(env.url, { socketPath: proxy.path });
          await roundTrip(conn, "over a unix socket");
        });
      } finally {
        await proxy.close();
      }
    },
  },
  {
    name: "backpressure: a stalled socket makes publishing wait, then every message arrives in order",
    timeout: 60_000,
    async run(env) {
      const proxy = await env.stallProxy();
      try {
        await withConnections(env, async (open) => {
          const conn = await open(`amqp://guest:guest@127.0.0.1:${proxy.port}/`, { writeHighWaterMark: 256 * 1024 });
          const ch = await conn.openChannel();
          const { queue } = await ch.queueDeclare("", { exclusive: true });
          await ch.confirmSelect();
          proxy.stall();
          // Publish until the socket's buffers are full and the client reports backpressure: the kernel
          // takes a few MiB first. Bun's socket then writes only part of a buffer; the rest must follow.
          const size = 256 * 1024 + 3;
          const confirms: Promise<void>[] = [];
          let sent = 0;
          while (!conn.backpressured && sent < 400) {
            confirms.push(ch.basicPublish("", queue, pattern(size, sent), { headers: { i: sent } }));
            sent++;
            await new Promise<void>((r) => setTimeout(r, 0)); // let the client flush to the socket
          }
          ok(conn.backpressured, `backpressure after ${sent} messages of ${size} bytes into a stalled socket`);
          const writable = conn.writable();
          ok(writable !== undefined, "conn.writable() to return a promise while backpressured");
          ok(await pendingAfter(writable, 300), "conn.writable() to stay pending while the socket is stalled");
          proxy.resume();
          await within(20_000, writable, "conn.writable() after the stall ends");
          // More after the stall, behind whatever was still queued.
          for (let i = 0; i < 5; i++, sent++) confirms.push(ch.basicPublish("", queue, pattern(size, sent), { headers: { i: sent } }));
          await within(30_000, Promise.all(confirms), "publish confirms");
          for (let i = 0; i < sent; i++) {
            const msg = await ch.basicGet(queue, { noAck: true });
            equal(msg?.properties.headers?.i, i, "message order");
            bytesEqual(msg!.body, pattern(size, i), `body ${i}`);
          }
          equal(await ch.basicGet(queue), null, "no further messages");
        });
      } finally {
        proxy.resume();
        await proxy.close();
      }
    },
  },
  {
    name: "TLS: connects with the test CA, verifying the host name, and exchanges messages",
    tls: true,
    async run(env) {
      const { certs, port } = env.tls!;
      await withConnections(env, async (open) => {
        await roundTrip(await open(`amqps://guest:guest@localhost:${port}/`, { tls: { ca: certs.ca } }), "over TLS");
        // An IP host is checked against the certificate's IP address SAN.
        await roundTrip(await open(`amqps://guest:guest@127.0.0.1:${port}/`, { tls: { ca: [certs.otherCa, new TextEncoder().encode(certs.ca)] } }), "over TLS by IP");
      });
    },
  },
  {
    name: "TLS: rejects a server certificate from an unknown CA, or from none, with a TransportError",
    tls: true,
    async run(env) {
      const { w } = env;
      const { certs, port } = env.tls!;
      const url = `amqps://guest:guest@localhost:${port}/`;
      const unknown = await rejection(w.connect(url, { tls: { ca: certs.otherCa }, connectionTimeout: 10_000 }), "a connect trusting another CA");
      instanceOf(unknown, w.TransportError, "certificate from an unknown CA");
      matches(unknown.message, new RegExp(`localhost:${port}`), "the error names the address");
      const none = await rejection(w.connect(url, { connectionTimeout: 10_000 }), "a connect with the default trust store");
      instanceOf(none, w.TransportError, "certificate the default trust store does not know");
    },
  },
  {
    name: "TLS: rejects a certificate that does not name tls.servername",
    tls: true,
    async run(env) {
      const { w } = env;
      const { certs, port } = env.tls!;
      const err = await rejection(
        w.connect(`amqps://guest:guest@127.0.0.1:${port}/`, { tls: { ca: certs.ca, servername: "wrong.example" }, connectionTimeout: 10_000 }),
        "a connect expecting another name",
      );
      instanceOf(err, w.TransportError, "name mismatch");
      matches(err.message, /wrong\.example/, "the error names the expected name");
    },
  },
  {
    name: "TLS: logs in with a client certificate (SASL EXTERNAL)",
    tls: true,
    async run(env) {
      const { certs, port, externalUser } = env.tls!;
      await withConnections(env, async (open) => {
        const conn = await open(`amqps://localhost:${port}/?auth_mechanism=EXTERNAL`, { tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey } });
        // RabbitMQ accepts a user-id property only when it names the connection's own user.
        await roundTrip(conn, "with a client certificate", externalUser);
      });
    },
  },
  {
    name: "TLS: tls.verify = false skips verification where the runtime can, and is refused clearly where it cannot",
    tls: true,
    async run(env) {
      const { w } = env;
      const { port } = env.tls!;
      await withConnections(env, async (open) => {
        const url = `amqps://guest:guest@localhost:${port}/`;
        if (env.caps.tlsVerifyOff) {
          await roundTrip(await open(url, { tls: { verify: false } }), "without verification");
        } else {
          const err = await rejection(w.connect(url, { tls: { verify: false }, connectionTimeout: 10_000 }), "tls.verify = false");
          instanceOf(err, w.UsageError, "tls.verify = false");
          matches(err.message, /verify/, "the error names the option");
        }
      });
    },
  },
  {
    name: "TLS: runs TLS over a unix socket where the runtime can, checking the host's name, and is refused clearly where it cannot",
    tls: true,
    async run(env) {
      const { w } = env;
      const { certs, port } = env.tls!;
      const proxy = await env.unixProxy(port);
      try {
        await withConnections(env, async (open) => {
          // The host is not dialled, but it is still the name the server's certificate must carry.
          const url = "amqps://guest:guest@localhost/";
          if (env.caps.tlsOverUnix) {
            await roundTrip(await open(url, { socketPath: proxy.path, tls: { ca: certs.ca } }), "TLS over a unix socket");
            const err = await rejection(w.connect(url, { socketPath: proxy.path, tls: { ca: certs.ca, servername: "wrong.example" }, connectionTimeout: 10_000 }), "a name mismatch over a unix socket");
            instanceOf(err, w.TransportError, "name mismatch over a unix socket");
          } else {
            const err = await rejection(w.connect(url, { socketPath: proxy.path, tls: { ca: certs.ca }, connectionTimeout: 10_000 }), "TLS over a unix socket");
            instanceOf(err, w.UsageError, "TLS over a unix socket");
            matches(err.message, /unix socket/, "the error says what is not supported");
          }
        });
      } finally {
        await proxy.close();
      }
    },
  },
  {
    name: "the same broker carries messages between runtimes: each other runtime consumes this one's message and answers",
    timeout: 90_000,
    async run(env) {
      await withConnections(env, async (open) => {
        const conn = await open();
        const ch = await conn.openChannel();
        await ch.confirmSelect();
        const { queue: replies } = await ch.queueDeclare(uniqueName(`warren.rt.replies.${env.runtime}`), { autoDelete: false, arguments: { "x-expires": 120_000 } });
        const inboxes = new Map<string, string>();
        try {
          for (const peer of env.peers) {
            const { queue } = await ch.queueDeclare(uniqueName(`warren.rt.to-${peer}.from-${env.runtime}`), { arguments: { "x-expires": 120_000 } });
            inboxes.set(peer, queue);
            await ch.basicPublish("", queue, `hello ${peer}, from ${env.runtime} (${queue})`, { appId: env.runtime });
          }
          const results = await Promise.all(env.peers.map((peer) => env.runPeer(peer, { PEER_URL: env.url, PEER_IN: inboxes.get(peer)!, PEER_OUT: replies })));
          env.peers.forEach((peer, i) => equal(results[i]!.code, 0, `exit code of the ${peer} peer (stderr: ${results[i]!.stderr.slice(-2000)})`));
          const got = new Map<string, { runtime: string; platform: string; received: string; receivedFrom: string }>();
          for (let i = 0; i < env.peers.length; i++) {
            const msg = await ch.basicGet(replies, { noAck: true });
            ok(msg !== null, `a reply from each of ${env.peers.join(", ")} (got ${[...got.keys()].join(", ") || "none"})`);
            got.set(msg.properties.appId ?? "?", msg.json());
          }
          for (const peer of env.peers) {
            const reply = got.get(peer);
            ok(reply !== undefined, `a reply from ${peer}`);
            equal(reply.runtime, peer, "the runtime that answered");
            equal(reply.received, `hello ${peer}, from ${env.runtime} (${inboxes.get(peer)})`, `what ${peer} received`);
            equal(reply.receivedFrom, env.runtime, `the app-id ${peer} saw`);
            ok(reply.platform.startsWith(PLATFORM[peer]), `${peer}'s platform (client property) to start with ${PLATFORM[peer]}, got ${reply.platform}`);
          }
        } finally {
          for (const q of [replies, ...inboxes.values()]) await ch.queueDelete(q).catch(() => undefined);
        }
      });
    },
  },
];
