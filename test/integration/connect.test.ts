/**
 * Connecting: the handshake against RabbitMQ, each way it can fail (credentials, vhost, nothing listening,
 * a server that speaks another protocol, a server that says nothing), heartbeats, update-secret, and
 * `await using`.
 */
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  AbortError,
  AccessRefusedError,
  connect,
  ConnectTimeoutError,
  HandshakeError,
  NotAllowedError,
  ProtocolError,
  TransportError,
} from "../../src/index.ts";
import { amqpUrl, brokerConnectionNames, recordUnhandledRejections, sleep, uniqueName, useConnections, waitFor, within } from "../support/broker.ts";

recordUnhandledRejections();
const broker = useConnections();

/** Tiny TCP servers for the failure cases, closed after each test. */
const servers: net.Server[] = [];
const serverSockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of serverSockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

async function listen(onSocket: (s: net.Socket) => void): Promise<number> {
  const server = net.createServer((s) => {
    serverSockets.push(s);
    s.on("error", () => undefined);
    onSocket(s);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as net.AddressInfo).port;
}

/** A server that accepts and never says a word (no TLS handshake, no AMQP), noticing the client hang up. */
async function silentPeer(): Promise<{ port: number; readonly accepted: number; readonly clientGone: boolean }> {
  let accepted = 0;
  let clientGone = false;
  const port = await listen((s) => {
    accepted++;
    s.resume(); // reads (and drops) what the client sends, so that its hang-up is seen
    s.on("close", () => (clientGone = true));
  });
  return {
    port,
    get accepted() {
      return accepted;
    },
    get clientGone() {
      return clientGone;
    },
  };
}

describe("handshake", () => {
  it("opens a connection and reports the broker's properties", async () => {
    const conn = await broker.open();
    expect(conn.closed).toBe(false);
    expect(conn.serverProperties.product).toBe("RabbitMQ");
    expect(String(conn.serverProperties.version)).toMatch(/^\d+\.\d+/);
    const caps = conn.serverProperties.capabilities as Record<string, unknown>;
    expect(caps.publisher_confirms).toBe(true);
    expect(caps.consumer_cancel_notify).toBe(true);
  });

  it("announces its connection name and closes cleanly on the broker side too", async () => {
    const name = uniqueName("warren.conn");
    const conn = await connect(amqpUrl(), { connectionName: name });
    try {
      expect(await brokerConnectionNames()).toContain(name);
    } finally {
      await conn.close();
    }
    expect(conn.closed).toBe(true);
    expect(await waitFor(async () => !(await brokerConnectionNames()).includes(name), 10_000, 200)).toBe(true);
  });

  it("honours frame_max and channel_max from the URI", async () => {
    const conn = await broker.open({ query: "frame_max=16384&channel_max=3" });
    expect(conn.machine.negotiatedFrameMax).toBe(16384);
    const chans = [await conn.openChannel(), await conn.openChannel(), await conn.openChannel()];
    expect(chans.map((c) => c.id)).toEqual([1, 2, 3]);
    await expect(conn.openChannel()).rejects.toMatchObject({ code: "USAGE_ERROR" });
    await chans[0]!.close();
    expect((await conn.openChannel()).id).toBe(1);
  });
});

describe("connection failures", () => {
  it("bad credentials reject with AccessRefusedError 403", async () => {
    const err = await connect(amqpUrl().replace("guest:guest", "guest:not-the-password")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AccessRefusedError);
    expect(err).toMatchObject({ code: "ACCESS_REFUSED", replyCode: 403 });
    expect((err as Error).message).toMatch(/ACCESS_REFUSED/);
  });

  it("an unknown user rejects with AccessRefusedError 403", async () => {
    await expect(connect(amqpUrl().replace("guest:guest", `${uniqueName("nobody")}:x`))).rejects.toMatchObject({ name: "AccessRefusedError", replyCode: 403 });
  });

  it("an unknown vhost rejects with NotAllowedError 530 (connection.open)", async () => {
    const vhost = uniqueName("no-such-vhost");
    const err = await connect(amqpUrl(), { vhost }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotAllowedError);
    expect(err).toMatchObject({ code: "NOT_ALLOWED", replyCode: 530, classId: 10, methodId: 40 });
    expect((err as Error).message).toContain(vhost);
  });

  it("a closed port rejects with TransportError naming ECONNREFUSED", async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    const err = await within(10_000, connect({ hostname: "127.0.0.1", port }).catch((e: unknown) => e), "connect");
    expect(err).toBeInstanceOf(TransportError);
    expect(err).toMatchObject({ code: "TRANSPORT_ERROR" });
    expect((err as Error).message).toContain("ECONNREFUSED");
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
  });

  for (const hangUp of [true, false]) {
    it(`a server speaking HTTP fails the handshake with a clear error (server ${hangUp ? "hangs up" : "stays connected"})`, async () => {
      let clientGone = false;
      const port = await listen((s) => {
        s.once("data", () => {
          s.write("HTTP/1.1 400 Bad Request\r\n\r\n");
          if (hangUp) s.end();
        });
        s.on("close", () => (clientGone = true));
      });
      const err = await within(10_000, connect({ hostname: "127.0.0.1", port, connectionTimeout: 5000 }).catch((e: unknown) => e), "connect");
      expect(err instanceof HandshakeError || err instanceof ProtocolError).toBe(true);
      expect((err as Error).message).toMatch(/AMQP 0-9-1/);
      expect(err).not.toBeInstanceOf(ConnectTimeoutError);
      // The client does not leave its socket open.
      expect(await waitFor(() => clientGone, 3000)).toBe(true);
    });
  }

  it("a server answering with another AMQP version fails with HandshakeError", async () => {
    const port = await listen((s) => s.once("data", () => s.end(Buffer.from("AMQP\x00\x00\x09\x00", "latin1"))));
    const err = await within(10_000, connect({ hostname: "127.0.0.1", port }).catch((e: unknown) => e), "connect");
    expect(err).toBeInstanceOf(HandshakeError);
    expect((err as Error).message).toMatch(/0-9-0/);
  });

  it("a server that accepts and says nothing fails with ConnectTimeoutError after connectionTimeout", async () => {
    let gotHeader = false;
    let clientGone = false;
    const port = await listen((s) => {
      s.once("data", (d: Buffer) => (gotHeader = d.subarray(0, 4).toString("latin1") === "AMQP"));
      s.on("close", () => (clientGone = true));
    });
    const t0 = performance.now();
    const err = await within(10_000, connect({ hostname: "127.0.0.1", port, connectionTimeout: 500 }).catch((e: unknown) => e), "connect");
    const elapsed = performance.now() - t0;
    expect(err).toBeInstanceOf(ConnectTimeoutError);
    expect(err).toMatchObject({ code: "CONNECT_TIMEOUT" });
    expect((err as Error).message).toMatch(/500 ms/);
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(3000);
    expect(gotHeader).toBe(true);
    expect(await waitFor(() => clientGone, 3000)).toBe(true);
  });

  it("a TLS server that never answers the handshake fails with ConnectTimeoutError at connectionTimeout, and the socket is closed", async () => {
    // No adapter keeps a timer of its own: the client's deadline aborts the transport's connect attempt.
    const peer = await silentPeer();
    const t0 = performance.now();
    const err = await within(10_000, connect(`amqps://localhost:${peer.port}/`, { connectionTimeout: 300 }).catch((e: unknown) => e), "connect");
    expect(err).toBeInstanceOf(ConnectTimeoutError);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(peer.accepted).toBe(1);
    expect(await waitFor(() => peer.clientGone, 1000)).toBe(true);
  });

  it("connection_timeout in the URI is honoured", async () => {
    const port = await listen(() => undefined);
    const t0 = performance.now();
    await expect(connect(`amqp://guest:guest@127.0.0.1:${port}/?connection_timeout=300`)).rejects.toBeInstanceOf(ConnectTimeoutError);
    expect(performance.now() - t0).toBeLessThan(2500);
  });
});

describe("connect({ signal })", () => {
  it("an already-aborted signal rejects with AbortError and opens no socket", async () => {
    let accepted = 0;
    const port = await listen(() => accepted++);
    const err = await within(5000, connect({ hostname: "127.0.0.1", port, signal: AbortSignal.abort() }).catch((e: unknown) => e), "connect");
    expect(err).toBeInstanceOf(AbortError);
    await sleep(100);
    expect(accepted).toBe(0);
  });

  it("an abort while a TLS server never answers rejects at once with AbortError and closes the socket", async () => {
    const peer = await silentPeer();
    const abort = new AbortController();
    const settled = connect(`amqps://localhost:${peer.port}/`, { signal: abort.signal, connectionTimeout: 10_000 }).catch((e: unknown) => e);
    expect(await waitFor(() => peer.accepted === 1, 2000, 5)).toBe(true);
    const t0 = performance.now();
    abort.abort();
    const err = await within(5000, settled, "connect");
    expect(err).toBeInstanceOf(AbortError);
    expect(performance.now() - t0).toBeLessThan(200);
    expect(await waitFor(() => peer.clientGone, 1000)).toBe(true);
  });

  it("an abort while the broker has not answered the protocol header rejects at once and closes the socket", async () => {
    let clientGone = false;
    let gotHeader = false;
    const port = await listen((s) => {
      s.once("data", () => (gotHeader = true));
      s.on("close", () => (clientGone = true));
    });
    const abort = new AbortController();
    const settled = connect({ hostname: "127.0.0.1", port, signal: abort.signal, connectionTimeout: 10_000 }).catch((e: unknown) => e);
    expect(await waitFor(() => gotHeader, 2000, 5)).toBe(true);
    const t0 = performance.now();
    abort.abort();
    const err = await within(5000, settled, "connect");
    expect(err).toBeInstanceOf(AbortError);
    expect(performance.now() - t0).toBeLessThan(200);
    expect(await waitFor(() => clientGone, 1000)).toBe(true);
  });
});

describe("heartbeats", () => {
  it("with heartbeat=1 an idle connection stays open for 3.5 s and is usable afterwards", async () => {
    const conn = await broker.open({ query: "heartbeat=1" });
    let closedWith: unknown = "not closed";
    conn.on("close", (e) => (closedWith = e));
    const ch = await conn.openChannel();
    await sleep(3500);
    expect(closedWith).toBe("not closed");
    expect(conn.closed).toBe(false);
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    await ch.basicPublish("", queue, "after idling");
    expect((await ch.basicGet(queue, { noAck: true }))?.bodyText()).toBe("after idling");
  }, 15_000);
});

describe("connection.update-secret", () => {
  it("RabbitMQ 3.10 with PLAIN answers update-secret-ok and the connection stays usable", async () => {
    const conn = await broker.open();
    await expect(conn.updateSecret("guest", "token refresh")).resolves.toBeUndefined();
    expect(conn.closed).toBe(false);
    // 3.10's internal backend does not re-check the secret: another one is accepted too.
    await expect(conn.updateSecret("not-the-password", "rotated")).resolves.toBeUndefined();
    // Several in flight settle in order.
    await expect(Promise.all([conn.updateSecret("a"), conn.updateSecret("b"), conn.updateSecret("c")])).resolves.toEqual([undefined, undefined, undefined]);
    expect(conn.closed).toBe(false);
    const ch = await conn.openChannel();
    await ch.queueDeclare("", { exclusive: true });
  });
});

describe("await using", () => {
  it("disposes connection, channel and consumer at the end of the block", async () => {
    const name = uniqueName("warren.using");
    let queue = "";
    let connRef: { closed: boolean } | undefined;
    let chRef: { closed: boolean } | undefined;
    let consumerRef: { closed: boolean } | undefined;
    let consumerCountInside = -1;
    {
      await using conn = await connect(amqpUrl(), { connectionName: name });
      await using ch = await conn.openChannel();
      const declared = await ch.queueDeclare(uniqueName(), { autoDelete: false });
      queue = declared.queue;
      broker.cleanup("queue", queue);
      {
        await using consumer = await ch.basicConsume(queue);
        consumerRef = consumer;
        consumerCountInside = (await ch.queueDeclare(queue, { passive: true })).consumerCount;
      }
      expect(consumerRef.closed).toBe(true);
      expect((await ch.queueDeclare(queue, { passive: true })).consumerCount).toBe(0);
      expect(await brokerConnectionNames()).toContain(name);
      connRef = conn;
      chRef = ch;
    }
    expect(consumerCountInside).toBe(1);
    expect(chRef!.closed).toBe(true);
    expect(connRef!.closed).toBe(true);
    expect(await waitFor(async () => !(await brokerConnectionNames()).includes(name), 10_000, 200)).toBe(true);
  });

  it("disposing twice, or after an error closed things, is harmless", async () => {
    const conn = await connect(amqpUrl());
    const ch = await conn.openChannel();
    await ch.queueDeclare(uniqueName(), { passive: true }).catch(() => undefined);
    await ch[Symbol.asyncDispose]();
    await conn[Symbol.asyncDispose]();
    await conn[Symbol.asyncDispose]();
    expect(conn.closed).toBe(true);
  });
});
