/**
 * warren-relay against an independent WebSocket implementation (the `ws` package) and, for frames no real
 * client sends, a hand-made client over a net socket. The upstreams are small TCP servers on 127.0.0.1
 * (echo, flood, sink), so these tests need no broker.
 */
import type { IncomingMessage } from "node:http";
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { main, parseRelayArgs } from "../../src/relay/cli.ts";
import { acceptKey, parseUpstream, Relay } from "../../src/relay/relay.ts";
import { WsOpcode } from "../../src/relay/ws-frame.ts";
import {
  clientFrame,
  closedPort,
  closeOf,
  echoUpstream,
  handshakeRequest,
  rawClient,
  rawRequest,
  sleep,
  startRelay,
  tcpUpstream,
  type TestUpstream,
  waitFor,
  within,
} from "./helpers.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await within(10_000, Promise.resolve(c()), "cleanup");
});

async function setup(upstream: TestUpstream, o: { maxMessageSize?: number; origins?: string[]; more?: string[] } = {}): Promise<{ relay: Relay; port: number; url: string }> {
  cleanups.push(() => upstream.close());
  const r = await startRelay({ upstreams: [upstream.address, ...(o.more ?? [])], closeTimeout: 2000, ...(o.maxMessageSize && { maxMessageSize: o.maxMessageSize }), ...(o.origins && { origins: o.origins }) });
  cleanups.push(() => r.relay.close());
  return r;
}

/** A `ws` client, open, closed (terminated) after the test. */
async function open(url: string, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, options);
  cleanups.push(() => ws.terminate());
  await within(5000, new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  }), "WebSocket open");
  return ws;
}

function closed(ws: WebSocket, ms = 5000): Promise<{ code: number; reason: string }> {
  return within(ms, new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() }))), "WebSocket close");
}

/** Collects every binary message `ws` receives. */
function collect(ws: WebSocket): { bytes: () => Buffer; count: () => number } {
  const parts: Buffer[] = [];
  ws.on("message", (d: Buffer) => parts.push(d));
  return { bytes: () => Buffer.concat(parts), count: () => parts.reduce((n, p) => n + p.length, 0) };
}

/** The status a refused upgrade got, as the `ws` client sees it. */
function refusedStatus(url: string, options: WebSocket.ClientOptions = {}): Promise<number> {
  const ws = new WebSocket(url, options);
  ws.on("error", () => undefined);
  return within(5000, new Promise((resolve, reject) => {
    ws.once("unexpected-response", (_req, res: IncomingMessage) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once("open", () => reject(new Error("the upgrade was accepted")));
  }), "refusal");
}

describe("handshake (RFC 6455 4.2)", () => {
  it("computes Sec-WebSocket-Accept as in the RFC's example", () => {
    expect(acceptKey("dGhlIHNhbXBsZSBub25jZQ==")).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  });

  it("upgrades a ws client and relays binary messages both ways", async () => {
    const up = await echoUpstream();
    const { url } = await setup(up);
    const ws = await open(url);
    const got = collect(ws);
    ws.send(Buffer.from("AMQP\x00\x00\x09\x01", "latin1"));
    expect(await waitFor(() => got.count() === 8)).toBe(true);
    expect(got.bytes().toString("latin1")).toBe("AMQP\x00\x00\x09\x01");
    expect(up.received().toString("latin1")).toBe("AMQP\x00\x00\x09\x01");
  });

  it("answers 101 with the accept key and no extension or subprotocol", async () => {
    const up = await echoUpstream();
    const { port } = await setup(up);
    const key = "dGhlIHNhbXBsZSBub25jZQ==";
    const { socket, response } = await rawRequest(port, handshakeRequest("/", { "Sec-WebSocket-Key": key, "Sec-WebSocket-Extensions": "permessage-deflate" }));
    socket.destroy();
    expect(response.split("\r\n")[0]).toBe("HTTP/1.1 101 Switching Protocols");
    expect(response).toMatch(/\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=(\r\n|$)/i);
    expect(response).toMatch(/\r\nUpgrade: websocket(\r\n|$)/i);
    expect(response).not.toMatch(/Sec-WebSocket-Extensions|Sec-WebSocket-Protocol/i);
  });

  it("relays frames a client sent right behind its handshake request, before the 101", async () => {
    const up = await echoUpstream();
    const { port } = await setup(up);
    const frame = clientFrame(WsOpcode.BINARY, "eager");
    const { socket, response } = await rawRequest(port, Buffer.concat([Buffer.from(handshakeRequest(), "latin1"), frame]));
    cleanups.push(() => void socket.destroy());
    expect(response).toMatch(/^HTTP\/1\.1 101 /);
    expect(await waitFor(() => up.received().toString() === "eager")).toBe(true);
  });

  it("listens on IPv6 loopback when asked to", async () => {
    const up = await echoUpstream();
    cleanups.push(() => up.close());
    const relay = new Relay({ upstreams: [up.address] });
    let url: string;
    try {
      ({ url } = await relay.listen(0, "::1"));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EADDRNOTAVAIL") return; // no IPv6 here: nothing to check
      throw e;
    }
    cleanups.push(() => relay.close());
    expect(url).toMatch(/^ws:\/\/\[::1\]:\d+\/$/);
    const ws = await open(url);
    const got = collect(ws);
    ws.send(Buffer.from("v6"));
    expect(await waitFor(() => got.bytes().toString() === "v6")).toBe(true);
  });

  it("answers a plain HTTP request with 426 Upgrade Required", async () => {
    const up = await echoUpstream();
    const { port } = await setup(up);
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.status).toBe(426);
    expect(res.headers.get("upgrade")).toBe("websocket");
    await res.text();
  });

  it("refuses malformed upgrades with 400 and other versions with 426", async () => {
    const up = await echoUpstream();
    const { port } = await setup(up);
    const status = async (req: string) => {
      const { socket, response } = await rawRequest(port, req);
      socket.destroy();
      return response;
    };
    expect(await status(handshakeRequest("/", { "Sec-WebSocket-Key": "not-a-key" }))).toMatch(/^HTTP\/1\.1 400 /);
    expect(await status(handshakeRequest("/", { "Sec-WebSocket-Key": undefined }))).toMatch(/^HTTP\/1\.1 400 /);
    expect(await status(handshakeRequest("/", {}, "POST"))).toMatch(/^HTTP\/1\.1 400 /);
    expect(await status(handshakeRequest("/", { Upgrade: "h2c" }))).toMatch(/^HTTP\/1\.1 426 /);
    const v8 = await status(handshakeRequest("/", { "Sec-WebSocket-Version": "8" }));
    expect(v8).toMatch(/^HTTP\/1\.1 426 /);
    expect(v8).toMatch(/\r\nSec-WebSocket-Version: 13/i);
    // Nothing was dialled for any of them.
    expect(up.sockets).toHaveLength(0);
  });
});

describe("upstream allow-list: never an open proxy", () => {
  it("dials the default upstream, or an allowed one the client names", async () => {
    const a = await echoUpstream();
    const b = await echoUpstream();
    cleanups.push(() => b.close());
    const { url } = await setup(a, { more: [b.address] });
    await open(url);
    await open(`${url}?upstream=${b.address}`);
    expect(await waitFor(() => a.sockets.length === 1 && b.sockets.length === 1)).toBe(true);
  });

  it("refuses any other upstream with 403 before upgrading, and dials nothing", async () => {
    const allowed = await echoUpstream();
    const other = await echoUpstream();
    cleanups.push(() => other.close());
    const { url } = await setup(allowed);
    expect(await refusedStatus(`${url}?upstream=${other.address}`)).toBe(403);
    expect(await refusedStatus(`${url}?upstream=localhost:${allowed.port}`)).toBe(403); // names, not resolved addresses
    expect(await refusedStatus(`${url}?upstream=example.com:80`)).toBe(403);
    expect(await refusedStatus(`${url}?upstream=${allowed.address}&upstream=${other.address}`)).toBe(400);
    expect(await refusedStatus(`${url}?upstream=nonsense`)).toBe(400);
    expect(other.sockets).toHaveLength(0);
    expect(allowed.sockets).toHaveLength(0);
  });

  it("answers 502 when the allowed upstream refuses the connection", async () => {
    const up = await echoUpstream();
    const down = `127.0.0.1:${await closedPort()}`;
    const { url } = await setup(up, { more: [down] });
    expect(await refusedStatus(`${url}?upstream=${down}`)).toBe(502);
  });

  it("refuses browser origins not on the origin list with 403", async () => {
    const up = await echoUpstream();
    const { url } = await setup(up, { origins: ["http://app.example"] });
    expect(await refusedStatus(url, { origin: "http://evil.example" })).toBe(403);
    await open(url, { origin: "http://app.example" });
    await open(url); // no Origin: not a browser
  });

  it("parses upstream addresses strictly", () => {
    expect(parseUpstream("[::1]:5672")).toEqual({ host: "::1", port: 5672 });
    expect(parseUpstream("Rabbit.Example:5672")).toEqual({ host: "rabbit.example", port: 5672 });
    for (const bad of ["rabbit", "rabbit:0", "rabbit:65536", "a:b:5672", "user@host:5672", "host:5672/x"]) expect(() => parseUpstream(bad)).toThrow();
  });
});

describe("frames from the client", () => {
  it("answers a ping with a pong carrying the same payload", async () => {
    const up = await echoUpstream();
    const { url } = await setup(up);
    const ws = await open(url);
    const pong = within(5000, new Promise<Buffer>((resolve) => ws.once("pong", resolve)), "pong");
    ws.ping(Buffer.from("are you there"));
    expect((await pong).toString()).toBe("are you there");
  });

  it("streams a fragmented message upstream as one byte stream", async () => {
    const up = await echoUpstream();
    const { url } = await setup(up);
    const ws = await open(url);
    ws.send(Buffer.from("frag-1|"), { binary: true, fin: false });
    ws.ping(Buffer.from("in between")); // control frames may come between fragments (5.4)
    ws.send(Buffer.from("frag-2|"), { binary: true, fin: false });
    ws.send(Buffer.from("frag-3"), { binary: true, fin: true });
    expect(await waitFor(() => up.received().length === 20)).toBe(true);
    expect(up.received().toString()).toBe("frag-1|frag-2|frag-3");
  });

  it("fails an unmasked client frame with close 1002 and ends the connection", async () => {
    const up = await echoUpstream();
    const { port } = await setup(up);
    const c = await rawClient(port);
    c.send(clientFrame(WsOpcode.BINARY, "hello", { mask: false }));
    const f = await c.nextFrame();
    expect(closeOf(f).code).toBe(1002);
    await c.ended();
    expect(up.received().length).toBe(0);
  });

  it("fails a text message with close 1003", async () => {
    const up = await echoUpstream();
    const { url } = await setup(up);
    const ws = await open(url);
    const done = closed(ws);
    ws.send("text is not AMQP");
    expect((await done).code).toBe(1003);
    expect(up.received().length).toBe(0);
  });

  it("fails a frame over the size limit with close 1009", async () => {
    const up = await echoUpstream();
    const { url } = await setup(up, { maxMessageSize: 1024 });
    const ws = await open(url);
    const done = closed(ws);
    ws.send(Buffer.alloc(1025));
    expect((await done).code).toBe(1009);
  });

  it("fails a message over the size limit with close 1009, even in small frames", async () => {
    const up = await echoUpstream();
    const { url } = await setup(up, { maxMessageSize: 1024 });
    const ws = await open(url);
    const done = closed(ws);
    for (let i = 0; i < 5; i++) ws.send(Buffer.alloc(300), { binary: true, fin: false });
    expect((await done).code).toBe(1009);
  });

  it("accepts messages at the size limit", async () => {
    const up = await echoUpstream();
    const { url } = await setup(up, { maxMessageSize: 1024 });
    const ws = await open(url);
    ws.send(Buffer.alloc(1024, 7));
    expect(await waitFor(() => up.received().length === 1024)).toBe(true);
  });

  it("fails a continuation frame with no message to continue with close 1002", async () => {
    const up = await echoUpstream();
    const { port } = await setup(up);
    const c = await rawClient(port);
    c.send(clientFrame(WsOpcode.CONTINUATION, "orphan"));
    expect(closeOf(await c.nextFrame()).code).toBe(1002);
    await c.ended();
  });
});

describe("closing", () => {
  it("echoes a client's close frame, then ends TCP first and ends the upstream", async () => {
    const up = await echoUpstream();
    const { port } = await setup(up);
    const c = await rawClient(port);
    c.send(clientFrame(WsOpcode.BINARY, "last words"));
    expect(await waitFor(() => up.received().length === 10)).toBe(true);
    const upstreamEnded = new Promise<void>((resolve) => up.sockets[0]!.once("end", resolve));
    c.send(clientFrame(WsOpcode.CLOSE, Uint8Array.of(0x03, 0xe8, 0x62, 0x79, 0x65)));
    // The echo of the data arrives first, then the close echo with the same status.
    const data = await c.nextFrame();
    expect(new TextDecoder().decode(data.payload)).toBe("last words");
    expect(closeOf(await c.nextFrame()).code).toBe(1000);
    await c.ended();
    await within(5000, upstreamEnded, "upstream end");
  });

  it("completes the close handshake with a ws client", async () => {
    const up = await echoUpstream();
    const { url, relay } = await setup(up);
    const ws = await open(url);
    const done = closed(ws);
    ws.close(1000, "bye");
    expect(await done).toEqual({ code: 1000, reason: "" });
    expect(await waitFor(() => relay.stats().length === 0)).toBe(true);
  });

  it("sends everything the upstream said, then close 1000 when the upstream ends", async () => {
    const up = await tcpUpstream((s) => s.end(Buffer.alloc(200_000, 1)));
    const { url } = await setup(up);
    const ws = new WebSocket(url);
    cleanups.push(() => ws.terminate());
    const got = collect(ws);
    const result = await closed(ws);
    expect(result.code).toBe(1000);
    expect(got.count()).toBe(200_000);
  });

  it("closes with 1014 when the upstream fails", async () => {
    const up = await tcpUpstream((s) => setTimeout(() => s.resetAndDestroy(), 50));
    const { url } = await setup(up);
    const ws = new WebSocket(url);
    cleanups.push(() => ws.terminate());
    expect((await closed(ws)).code).toBe(1014);
  });

  it("ends the upstream when the client vanishes without a close frame", async () => {
    const up = await echoUpstream();
    const { url, relay } = await setup(up);
    const ws = await open(url);
    expect(await waitFor(() => up.sockets.length === 1)).toBe(true);
    const upstreamGone = new Promise<void>((resolve) => up.sockets[0]!.once("close", resolve));
    ws.terminate();
    await within(5000, upstreamGone, "upstream close");
    expect(await waitFor(() => relay.stats().length === 0)).toBe(true);
  });

  it("relay.close() sends 1001 to every client", async () => {
    const up = await echoUpstream();
    const { url, relay } = await setup(up);
    const ws = await open(url);
    const done = closed(ws);
    await within(5000, relay.close(), "relay close");
    expect((await done).code).toBe(1001);
  });
});

describe("backpressure", () => {
  /** An upstream that writes a counting pattern as fast as its socket accepts, until stopped. */
  async function floodUpstream() {
    const state = { written: 0, waitingForDrain: false, stop: false, done: Promise.resolve() };
    const chunk = (from: number) => Uint8Array.from({ length: 64 * 1024 }, (_, i) => (from + i) % 251);
    const up = await tcpUpstream((s) => {
      state.done = new Promise<void>((resolve) => {
        const pump = () => {
          state.waitingForDrain = false;
          // Bounded by count: at most 1 GiB, far beyond what the buffers between here and the client hold.
          while (!state.stop && state.written < 1024 ** 3) {
            const ok = s.write(chunk(state.written));
            state.written += 64 * 1024;
            if (!ok) {
              state.waitingForDrain = true;
              s.once("drain", pump);
              return;
            }
          }
          resolve();
        };
        pump();
      });
    });
    return { up, state };
  }

  it("pauses the upstream while the WebSocket client reads slowly, and loses nothing", async () => {
    const { up, state } = await floodUpstream();
    const { port, relay } = await setup(up);
    const c = await rawClient(port);
    c.socket.pause(); // the client stops reading
    // Wait until the flood is stalled: its socket stays full because the relay stopped reading.
    let last = -1;
    let stableSince = performance.now();
    const stalled = await waitFor(() => {
      if (state.written !== last) {
        last = state.written;
        stableSince = performance.now();
      }
      return state.waitingForDrain && performance.now() - stableSince > 500;
    }, 15_000, 20);
    expect(stalled).toBe(true);
    const [t] = relay.stats();
    expect(t!.upstreamPaused).toBe(true);
    // What the relay holds is a socket high-water mark plus a read chunk or two, not the flood.
    expect(t!.wsBuffered).toBeLessThan(512 * 1024);
    expect(t!.upstreamBuffered).toBe(0);
    // The kernel buffers between flood and client are bounded too: the flood stopped well short of its cap.
    expect(state.written).toBeLessThan(128 * 1024 * 1024);

    // Stop the flood, let the client read, and check every byte arrives, in order.
    state.stop = true;
    let received = 0;
    let inOrder = true;
    c.socket.resume();
    for (let i = 0; i < 100_000 && received < state.written; i++) {
      const f = await c.nextFrame(10_000);
      expect(f.opcode).toBe(WsOpcode.BINARY);
      for (let k = 0; k < f.payload.length; k += 997) if (f.payload[k] !== (received + k) % 251) inOrder = false;
      received += f.payload.length;
    }
    expect(received).toBe(state.written);
    expect(inOrder).toBe(true);
  }, 40_000);

  it("pauses the WebSocket side while the upstream reads slowly, and loses nothing", async () => {
    let sink: net.Socket | undefined;
    let received = 0;
    const up = await tcpUpstream((s) => {
      sink = s;
      s.pause(); // the broker stops reading
      s.on("data", (d: Buffer) => (received += d.length));
    });
    const { url, relay } = await setup(up);
    const ws = await open(url);
    const message = Buffer.alloc(64 * 1024, 3);
    let sent = 0;
    // Send while the client's own buffer has room; stop when the whole path is stalled (bounded by count and time).
    const deadline = performance.now() + 15_000;
    let stableSince = performance.now();
    for (let i = 0; i < 20_000 && performance.now() < deadline; i++) {
      if (ws.bufferedAmount < 1024 * 1024) {
        ws.send(message);
        sent += message.length;
        stableSince = performance.now();
      } else if (performance.now() - stableSince > 500) break;
      await sleep(ws.bufferedAmount < 1024 * 1024 ? 0 : 20);
    }
    expect(ws.bufferedAmount).toBeGreaterThanOrEqual(1024 * 1024); // the path is full
    const [t] = relay.stats();
    expect(t!.wsPaused).toBe(true);
    expect(t!.upstreamBuffered).toBeLessThan(512 * 1024);
    expect(t!.decoderBuffered).toBeLessThan(1024 * 1024 + 14);
    expect(sent).toBeLessThan(256 * 1024 * 1024);

    sink!.resume();
    expect(await waitFor(() => received === sent && ws.bufferedAmount === 0, 20_000)).toBe(true);
    expect(relay.stats()[0]!.wsPaused).toBe(false);
  }, 40_000);
});

describe("command line", () => {
  it("parses --listen, --upstream, --allow, --origin and --max-message-size", () => {
    const c = parseRelayArgs(["--listen", "[::1]:9000", "--upstream", "10.0.0.5:5672", "--allow", "10.0.0.6:5672,10.0.0.7:5672", "--origin", "https://app.example", "--max-message-size", "2048"]);
    expect(c).toEqual({
      host: "::1",
      port: 9000,
      quiet: false,
      options: { upstreams: ["10.0.0.5:5672", "10.0.0.6:5672", "10.0.0.7:5672"], origins: ["https://app.example"], maxMessageSize: 2048 },
    });
    expect(parseRelayArgs([])).toMatchObject({ host: "127.0.0.1", port: 15670, options: { upstreams: ["127.0.0.1:5672"] } });
    expect(parseRelayArgs(["--help"])).toBe("help");
    expect(() => parseRelayArgs(["--upstream", "nowhere"])).toThrow(/host:port/);
    expect(() => parseRelayArgs(["--bogus"])).toThrow();
  });

  it("parses --max-tunnels, --handshake-timeout and --idle-timeout (0 turns the idle timeout off), and lists them in --help", async () => {
    const c = parseRelayArgs(["--max-tunnels", "50", "--handshake-timeout", "2000", "--idle-timeout", "0"]);
    expect(c).toMatchObject({ options: { maxTunnels: 50, handshakeTimeout: 2000, idleTimeout: 0 } });
    expect(parseRelayArgs(["--idle-timeout", "60000"])).toMatchObject({ options: { idleTimeout: 60_000 } });
    expect(() => parseRelayArgs(["--handshake-timeout", "0"])).toThrow(/--handshake-timeout must be a whole number of milliseconds from 1/);
    expect(() => parseRelayArgs(["--idle-timeout", "2147483648"])).toThrow(/--idle-timeout/);
    expect(() => parseRelayArgs(["--idle-timeout", "5s"])).toThrow(/--idle-timeout/);
    expect(() => parseRelayArgs(["--max-tunnels", "0"])).toThrow(/--max-tunnels/);
    const out: string[] = [];
    expect(await main(["--help"], { out: (l) => out.push(l), err: () => undefined }, false)).toBe(0);
    for (const flag of ["--max-tunnels", "--handshake-timeout", "--idle-timeout"]) expect(out.join("")).toContain(flag);
  });

  it("main() starts a relay on the --listen address and says where", async () => {
    const up = await echoUpstream();
    cleanups.push(() => up.close());
    const out: string[] = [];
    const err: string[] = [];
    const result = await main(["--listen", "127.0.0.1:0", "--upstream", up.address], { out: (l) => out.push(l), err: (l) => err.push(l) }, false);
    if (typeof result === "number") throw new Error(`main() exited with ${result}: ${err.join("\n")}`);
    const relay = result;
    cleanups.push(() => relay.close());
    expect(out[0]).toMatch(new RegExp(`^warren-relay listening on ws://127\\.0\\.0\\.1:\\d+/ → ${up.address.replace(/\./g, "\\.")}$`));
    const addr = relay.server.address() as net.AddressInfo;
    expect(addr.address).toBe("127.0.0.1");
    const ws = await open(`ws://127.0.0.1:${addr.port}/`);
    ws.close();
    expect(await waitFor(() => err.some((l) => l.includes("open")))).toBe(true);
  });

  it("main() prints the usage for --help and for bad arguments, with exit codes 0 and 2", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (l: string) => out.push(l), err: (l: string) => err.push(l) };
    expect(await main(["--help"], io, false)).toBe(0);
    expect(out.join("")).toMatch(/Usage: warren-relay/);
    expect(await main(["--upstream", "no-port"], io, false)).toBe(2);
    expect(err.join("")).toMatch(/Invalid upstream "no-port"/);
  });
});
