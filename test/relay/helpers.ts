/**
 * Helpers for the relay tests: throw-away TCP upstreams, a relay bound to 127.0.0.1 on a free port, and a
 * raw WebSocket client (a net socket after a hand-written handshake) for sending frames no real client
 * would send.
 *
 * Everything here is bounded in time: a waiting helper rejects after its timeout rather than hang.
 */
import { randomBytes } from "node:crypto";
import * as net from "node:net";
import { Writer } from "../../src/codec/writer.ts";
import { Relay, type RelayOptions } from "../../src/relay/relay.ts";
import { encodeWsFrame, type WsFrame, WsFrameDecoder, type WsOpcode } from "../../src/relay/ws-frame.ts";

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Rejects when `p` has not settled within `ms`. */
export async function within<T>(ms: number, p: Promise<T>, what = "operation"): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` until true; false after `timeoutMs`. */
export async function waitFor(check: () => boolean, timeoutMs = 5000, intervalMs = 10): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (check()) return true;
    await sleep(intervalMs);
  }
  return check();
}

export interface TestUpstream {
  readonly port: number;
  readonly address: string;
  /** Sockets accepted so far. */
  readonly sockets: net.Socket[];
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1 that hands each connection to `onConnection`. */
export async function tcpUpstream(onConnection: (socket: net.Socket) => void): Promise<TestUpstream> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on("error", () => undefined);
    onConnection(s);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** An upstream that echoes everything and records what it received. */
export async function echoUpstream(): Promise<TestUpstream & { received: () => Buffer }> {
  const chunks: Buffer[] = [];
  const u = await tcpUpstream((s) =>
    s.on("data", (d: Buffer) => {
      chunks.push(d);
      s.write(d);
    }),
  );
  return Object.assign(u, { received: () => Buffer.concat(chunks) });
}

/** A port on 127.0.0.1 where nothing listens. */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A relay on 127.0.0.1, port chosen by the system. */
export async function startRelay(options: RelayOptions): Promise<{ relay: Relay; port: number; url: string }> {
  const relay = new Relay(options);
  const { port, url } = await relay.listen(0, "127.0.0.1");
  return { relay, port, url };
}

/** A client frame, masked with a random key unless `mask: false`. */
export function clientFrame(opcode: WsOpcode, payload: Uint8Array | string, o: { fin?: boolean; mask?: boolean } = {}): Uint8Array {
  const w = new Writer(256);
  const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  encodeWsFrame(w, { fin: o.fin ?? true, opcode, payload: bytes, mask: o.mask === false ? undefined : new Uint8Array(randomBytes(4)) });
  return w.finish();
}

/** A WebSocket client made by hand over a net socket: for frames the `ws` package would never send. */
export interface RawClient {
  readonly socket: net.Socket;
  /** The HTTP response head (status line and headers). */
  readonly response: string;
  send(bytes: Uint8Array): void;
  /** Resolves with the next frame from the server. */
  nextFrame(timeoutMs?: number): Promise<WsFrame>;
  /** Resolves once the server has ended the TCP connection. */
  ended(timeoutMs?: number): Promise<void>;
}

/** Opens a TCP connection, sends a handshake request, and resolves once the response head is in. */
export async function rawRequest(port: number, request: string | Uint8Array): Promise<{ socket: net.Socket; response: string; rest: Buffer }> {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => undefined);
  socket.write(request);
  let buf = Buffer.alloc(0);
  return within(
    5000,
    new Promise((resolve, reject) => {
      const onData = (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        socket.off("data", onData);
        socket.pause();
        resolve({ socket, response: buf.subarray(0, end).toString("latin1"), rest: buf.subarray(end + 4) });
      };
      socket.on("data", onData);
      socket.once("close", () => reject(new Error(`connection closed before a response: ${buf.toString("latin1")}`)));
    }),
    "HTTP response",
  );
}

/** The HTTP request of a WebSocket handshake, with `headers` replacing or adding to the usual ones. */
export function handshakeRequest(path = "/", headers: Record<string, string | undefined> = {}, method = "GET"): string {
  const all: Record<string, string | undefined> = {
    Host: "127.0.0.1",
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
    "Sec-WebSocket-Version": "13",
    ...headers,
  };
  return `${method} ${path} HTTP/1.1\r\n${Object.entries(all).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`;
}

/** Performs a handshake by hand and returns a client for raw frames. */
export async function rawClient(port: number, path = "/"): Promise<RawClient> {
  const { socket, response, rest } = await rawRequest(port, handshakeRequest(path));
  const decoder = new WsFrameDecoder({ mask: "forbidden", maxPayload: 1 << 24 });
  const frames: WsFrame[] = [];
  const waiters: (() => void)[] = [];
  let ended = false;
  const wake = () => waiters.splice(0).forEach((w) => w());
  const onData = (d: Buffer) => {
    decoder.push(new Uint8Array(d));
    for (let f = decoder.next(); f !== undefined; f = decoder.next()) frames.push(f);
    wake();
  };
  if (rest.length > 0) onData(rest);
  socket.on("data", onData);
  socket.on("end", () => {
    ended = true;
    wake();
  });
  socket.on("close", () => {
    ended = true;
    wake();
  });
  socket.resume();
  const waitUntil = (ready: () => boolean, ms: number, what: string) =>
    within(
      ms,
      new Promise<void>((resolve) => {
        const check = () => (ready() ? resolve() : waiters.push(check));
        check();
      }),
      what,
    );
  return {
    socket,
    response,
    send: (bytes) => socket.write(bytes),
    async nextFrame(timeoutMs = 5000) {
      await waitUntil(() => frames.length > 0 || ended, timeoutMs, "a frame from the relay");
      const f = frames.shift();
      if (!f) throw new Error("the relay ended the connection without sending a frame");
      return f;
    },
    ended: (timeoutMs = 5000) => waitUntil(() => ended, timeoutMs, "the end of the connection"),
  };
}

/** The status code and reason of a close frame. */
export function closeOf(f: WsFrame): { code: number; reason: string } {
  if (f.opcode !== 8) throw new Error(`expected a close frame, got opcode ${f.opcode}`);
  return { code: f.payload.length >= 2 ? (f.payload[0]! << 8) | f.payload[1]! : 1005, reason: new TextDecoder().decode(f.payload.subarray(2)) };
}
