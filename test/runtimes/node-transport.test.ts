/**
 * The Node and WebSocket transports' connect attempt under the client's AbortSignal, against local servers
 * on 127.0.0.1 and without a broker: an aborted signal opens nothing, an abort mid-way rejects at once and
 * leaves no socket open, an abort after the connect changes nothing, and no handler is called for an
 * attempt that failed. (The Deno and Bun transports have the same tests in deno/ and bun/.)
 */
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket as WsWebSocket } from "ws";
import { nodeTransport, resolveConnectOptions, type Transport, type TransportHandlers } from "../../src/adapters/node.ts";
import { type WebSocketConstructor, webSocketTransport } from "../../src/adapters/websocket.ts";

/** A TCP server that accepts and never says a word: no TLS handshake, no WebSocket upgrade. */
async function silentServer() {
  const sockets: net.Socket[] = [];
  let accepted = 0;
  let closed = 0;
  const server = net.createServer((s) => {
    accepted++;
    sockets.push(s);
    s.on("error", () => undefined);
    s.on("close", () => closed++);
    s.resume(); // reads (and drops) what the client sends, so that its hang-up is seen
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    get accepted() {
      return accepted;
    },
    /** Connections the client side has closed again. */
    get closed() {
      return closed;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const servers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function server() {
  const s = await silentServer();
  servers.push(s);
  return s;
}

/** Handlers that record every call: a failed attempt must make none. */
function recorder() {
  const calls: string[] = [];
  const handlers: TransportHandlers = {
    onData: () => void calls.push("data"),
    onDrain: () => void calls.push("drain"),
    onClose: (e) => void calls.push(e === undefined ? "close" : "close with error"),
  };
  return { calls, handlers };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(check: () => boolean, ms = 2000): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

/** How long `p` takes to settle, and what it rejected with. */
async function rejectionOf(p: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const t0 = performance.now();
  const error = await p.then(
    () => new Error("expected a rejection"),
    (e: unknown) => e,
  );
  return { error, ms: performance.now() - t0 };
}

/**
 * Starts an attempt against a silent server, aborts it once the server has accepted, and checks the attempt
 * rejects at once with the reason, closes its socket, and calls no handler.
 */
async function abortMidway(srv: Awaited<ReturnType<typeof server>>, start: (h: TransportHandlers, signal: AbortSignal) => Promise<Transport>): Promise<void> {
  const abort = new AbortController();
  const { calls, handlers } = recorder();
  const settled = rejectionOf(start(handlers, abort.signal));
  expect(await until(() => srv.accepted === 1)).toBe(true);
  await sleep(20); // the ClientHello or the upgrade request is out; the server never answers it
  const reason = new Error("given up");
  const t0 = performance.now();
  abort.abort(reason);
  const { error } = await settled;
  expect(error).toBe(reason);
  expect(performance.now() - t0).toBeLessThan(200);
  // The client's end is closed: the server sees its socket close.
  expect(await until(() => srv.closed === 1)).toBe(true);
  await sleep(20);
  expect(calls).toEqual([]);
}

describe("Node transport under the client's signal", () => {
  for (const scheme of ["amqp", "amqps"]) {
    it(`an already-aborted signal rejects with its reason and opens no socket (${scheme})`, async () => {
      const srv = await server();
      const reason = new Error("aborted before the start");
      const { calls, handlers } = recorder();
      const { error } = await rejectionOf(nodeTransport(resolveConnectOptions(`${scheme}://localhost:${srv.port}/`), handlers, AbortSignal.abort(reason)));
      expect(error).toBe(reason);
      await sleep(100);
      expect(srv.accepted).toBe(0);
      expect(calls).toEqual([]);
    });
  }

  it("an abort during a TLS handshake the peer never answers rejects at once with the reason and closes the socket", async () => {
    const srv = await server();
    await abortMidway(srv, (h, signal) => nodeTransport(resolveConnectOptions(`amqps://localhost:${srv.port}/`), h, signal));
  });

  it("without a signal, never aborts: it connects, and reports one close after destroy()", async () => {
    const srv = await server();
    const { calls, handlers } = recorder();
    const t: Transport = await (nodeTransport as (o: unknown, h: TransportHandlers) => Promise<Transport>)(resolveConnectOptions(`amqp://127.0.0.1:${srv.port}/`), handlers);
    expect(await until(() => srv.accepted === 1)).toBe(true);
    t.destroy();
    expect(await until(() => calls.length > 0)).toBe(true);
    await sleep(20);
    expect(calls).toEqual(["close"]);
  });

  it("an abort after the connect resolved changes nothing: the transport stays open and writes", async () => {
    const srv = await server();
    const abort = new AbortController();
    const { calls, handlers } = recorder();
    const t = await nodeTransport(resolveConnectOptions(`amqp://127.0.0.1:${srv.port}/`), handlers, abort.signal);
    abort.abort(new Error("too late"));
    expect(await until(() => srv.sockets.length === 1)).toBe(true);
    const received: Buffer[] = [];
    srv.sockets[0]!.on("data", (d: Buffer) => received.push(d));
    t.write(new TextEncoder().encode("still here"));
    expect(await until(() => Buffer.concat(received).toString() === "still here")).toBe(true);
    expect(srv.closed).toBe(0);
    t.destroy();
    expect(await until(() => calls.includes("close"))).toBe(true);
  });

  it("a peer that hangs up during the TLS handshake fails the attempt with a TransportError, calling no handler", async () => {
    const sockets: net.Socket[] = [];
    const hangUp = net.createServer((s) => {
      sockets.push(s);
      s.destroy();
    });
    await new Promise<void>((resolve) => hangUp.listen(0, "127.0.0.1", resolve));
    servers.push({ close: () => new Promise<void>((resolve) => hangUp.close(() => resolve())) });
    const port = (hangUp.address() as net.AddressInfo).port;
    const { calls, handlers } = recorder();
    const { error, ms } = await rejectionOf(nodeTransport(resolveConnectOptions(`amqps://localhost:${port}/`), handlers, new AbortController().signal));
    expect(error).toMatchObject({ name: "TransportError" });
    expect((error as Error).message).toContain(`localhost:${port}`);
    expect(ms).toBeLessThan(2000);
    expect(calls).toEqual([]);
  });
});

describe("WebSocket transport under the client's signal", () => {
  /** The ws package's WebSocket (Node 20 has no global one), counting the sockets it is asked to open. */
  function countingWebSocket() {
    const counter = { opened: 0 };
    class Counted extends WsWebSocket {
      constructor(url: string) {
        super(url);
        counter.opened++;
      }
    }
    return { Ctor: Counted as unknown as WebSocketConstructor, counter };
  }

  it("an already-aborted signal rejects with its reason and opens no WebSocket", async () => {
    const srv = await server();
    const { Ctor, counter } = countingWebSocket();
    const reason = new Error("aborted before the start");
    const { calls, handlers } = recorder();
    const opening = webSocketTransport(`ws://127.0.0.1:${srv.port}/`, Ctor, 10, resolveConnectOptions(undefined), handlers, AbortSignal.abort(reason));
    const { error } = await rejectionOf(opening);
    expect(error).toBe(reason);
    await sleep(100);
    expect(counter.opened).toBe(0);
    expect(srv.accepted).toBe(0);
    expect(calls).toEqual([]);
  });

  it("an abort during an upgrade the server never answers rejects at once with the reason and closes the socket", async () => {
    const srv = await server();
    const { Ctor } = countingWebSocket();
    await abortMidway(srv, (h, signal) => webSocketTransport(`ws://127.0.0.1:${srv.port}/`, Ctor, 10, resolveConnectOptions(undefined), h, signal));
  });
});
