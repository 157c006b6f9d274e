/**
 * What a hostile or broken client can make the relay hold (issue 8, defect 14): a ping flood from a client
 * that never reads, connections that never finish their handshake, tunnels nobody uses. Each test bounds
 * its loops by count and time and talks only to 127.0.0.1.
 */
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { PING_FLOOD_LIMIT, Relay, type RelayOptions } from "../../src/relay/relay.ts";
import { WsOpcode } from "../../src/relay/ws-frame.ts";
import { clientFrame, closeOf, echoUpstream, handshakeRequest, rawClient, rawRequest, sleep, startRelay, type TestUpstream, waitFor, within } from "./helpers.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await within(15_000, Promise.resolve(c()), "cleanup");
});

async function setup(upstream: TestUpstream, o: Partial<RelayOptions> = {}): Promise<{ relay: Relay; port: number; url: string }> {
  cleanups.push(() => upstream.close());
  const r = await startRelay({ upstreams: [upstream.address], closeTimeout: 2000, ...o });
  cleanups.push(() => r.relay.close());
  return r;
}

async function open(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  cleanups.push(() => ws.terminate());
  await within(5000, new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  }), "WebSocket open");
  return ws;
}

/** Sends `payload` and resolves with the echo through relay and upstream. */
function echo(ws: WebSocket, payload: string, ms = 5000): Promise<string> {
  const got = within(ms, new Promise<string>((resolve) => ws.once("message", (d: Buffer) => resolve(d.toString()))), "echo");
  ws.send(Buffer.from(payload));
  return got;
}

function closed(ws: WebSocket, ms: number): Promise<{ code: number; reason: string }> {
  return within(ms, new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() }))), "WebSocket close");
}

/** A TCP connection that sends `bytes` and then nothing; resolves `gone` when the relay drops it. */
async function halfRequest(port: number, bytes: string): Promise<{ socket: net.Socket; gone: Promise<number> }> {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => undefined);
  cleanups.push(() => void socket.destroy());
  await within(5000, new Promise<void>((resolve) => socket.once("connect", () => resolve())), "connect");
  const opened = performance.now();
  socket.write(bytes);
  socket.resume();
  return { socket, gone: new Promise((resolve) => socket.once("close", () => resolve(performance.now() - opened))) };
}

describe("a ping flood from a client that never reads", () => {
  it("keeps at most one pong waiting, stays responsive, and fails the client with 1008", async () => {
    const up = await echoUpstream();
    const { port, url, relay } = await setup(up, { closeTimeout: 10_000 });
    const c = await rawClient(port);
    c.socket.pause(); // the client never reads: its receive window, then the relay's socket, fill with pongs
    expect(await waitFor(() => relay.stats().length === 1)).toBe(true);
    const flooder = relay.stats()[0]!.id;
    // 128 pings of 125 bytes per write (~16.8 KiB); at most 200 000 pings or 3 s.
    const batch = Buffer.concat(Array.from({ length: 128 }, () => clientFrame(WsOpcode.PING, new Uint8Array(125).fill(0x70))));
    let sent = 0;
    let maxBuffered = 0;
    let maxCoalesced = 0;
    const sample = () => {
      for (const t of relay.stats()) {
        maxBuffered = Math.max(maxBuffered, t.wsBuffered);
        maxCoalesced = Math.max(maxCoalesced, t.pingsWhileFull);
      }
    };
    const deadline = performance.now() + 3000;
    while (sent < 200_000 && performance.now() < deadline && !c.socket.destroyed) {
      const ok = c.socket.write(batch);
      sent += 128;
      if (!ok) await within(5000, new Promise<void>((resolve) => c.socket.once("drain", () => resolve())), "client drain");
      else await new Promise<void>((resolve) => setImmediate(resolve));
      sample();
    }
    sample();
    // Before the fix, every pong was queued behind the last: megabytes here, growing with the flood.
    expect(maxBuffered).toBeLessThan(64 * 1024);
    expect(maxCoalesced).toBeGreaterThan(0); // the socket did fill up, so the bound above was tested

    // Another client is served meanwhile.
    const other = await open(url);
    expect(await echo(other, "still here", 2000)).toBe("still here");

    // The flooding client, once it reads, finds the pongs that fit, then the 1008 close.
    c.socket.resume();
    let pongs = 0;
    let last: ReturnType<typeof closeOf> | undefined;
    for (let i = 0; i <= sent && last === undefined; i++) {
      const f = await c.nextFrame(5000);
      if (f.opcode === WsOpcode.PONG) pongs++;
      else last = closeOf(f);
    }
    expect(last?.code).toBe(1008);
    expect(last?.reason).toMatch(/ping flood/);
    expect(pongs).toBeLessThan(sent);
    await c.ended();
    expect(await waitFor(() => relay.stats().every((t) => t.id !== flooder))).toBe(true);
  }, 30_000);

  it(`answers every ping of a client that reads, and tolerates up to ${PING_FLOOD_LIMIT} pings while it is slow`, async () => {
    const up = await echoUpstream();
    const { port, relay } = await setup(up);
    const c = await rawClient(port);
    cleanups.push(() => void c.socket.destroy());
    for (let i = 0; i < 50; i++) c.send(clientFrame(WsOpcode.PING, `p${i}`));
    for (let i = 0; i < 50; i++) {
      const f = await c.nextFrame();
      expect(f.opcode).toBe(WsOpcode.PONG);
      expect(new TextDecoder().decode(f.payload)).toBe(`p${i}`);
    }
    expect(relay.stats()[0]!.pingsWhileFull).toBe(0);
  });
});

describe("connections that never finish their handshake", () => {
  it("are dropped after handshakeTimeout, and count against maxTunnels while they wait", async () => {
    const up = await echoUpstream();
    const { port, relay } = await setup(up, { maxTunnels: 2, handshakeTimeout: 500 });
    let accepted = 0;
    relay.server.on("connection", () => accepted++);
    // Half a request each: a request line and a header, never the blank line.
    const slow = [await halfRequest(port, "GET / HTTP/1.1\r\n"), await halfRequest(port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")];
    expect(await waitFor(() => accepted === 2)).toBe(true);

    // The limit is taken: a third connection is closed before it gets an answer, and nothing is dialled.
    await expect(rawRequest(port, handshakeRequest())).rejects.toThrow(/closed before a response/);
    expect(up.sockets).toHaveLength(0);
    expect(relay.connections()).toEqual({ handshaking: 2, tunnels: 0, limit: 2 });

    // The slow ones go at the deadline — not after Node's own 60 s or more.
    const lifetimes = await within(3000, Promise.all(slow.map((s) => s.gone)), "slow connections dropped");
    for (const ms of lifetimes) expect(ms).toBeGreaterThanOrEqual(400);
    expect(await waitFor(() => relay.connections().handshaking === 0)).toBe(true);

    // With the slots free again, a real client gets its tunnel; a tunnel is no longer a handshake.
    const c = await rawClient(port);
    cleanups.push(() => void c.socket.destroy());
    expect(c.response).toMatch(/^HTTP\/1\.1 101 /);
    expect(relay.connections()).toEqual({ handshaking: 0, tunnels: 1, limit: 2 });
    await sleep(700); // past the handshake deadline: the tunnel is not dropped
    c.send(clientFrame(WsOpcode.BINARY, "after the deadline"));
    expect(new TextDecoder().decode((await c.nextFrame()).payload)).toBe("after the deadline");
  }, 15_000);

  it("counts a refused client that keeps its socket open until the deadline closes it", async () => {
    const up = await echoUpstream();
    const { port, relay } = await setup(up, { maxTunnels: 1, handshakeTimeout: 500 });
    const socket = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true }); // does not end when the relay does
    socket.on("error", () => undefined);
    cleanups.push(() => void socket.destroy());
    const gone = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    const opened = performance.now();
    let answer = "";
    socket.on("data", (d: Buffer) => (answer += d.toString("latin1")));
    socket.write(handshakeRequest("/", { "Sec-WebSocket-Version": "8" }));
    expect(await waitFor(() => answer.includes("\r\n\r\n"))).toBe(true);
    expect(answer).toMatch(/^HTTP\/1\.1 426 /);
    await sleep(200);
    // Until the deadline it holds the only slot: another client is turned away.
    await expect(rawRequest(port, handshakeRequest())).rejects.toThrow(/closed before a response/);
    // Then the relay lets go of it: what the client sends is answered with a reset, which the client's next
    // write reports (it stopped reading at the relay's FIN, so only a write can notice).
    for (let i = 0; i < 30 && !socket.destroyed; i++) {
      socket.write("anyone there?");
      await sleep(100);
    }
    await within(1000, gone, "reset of the dropped connection");
    expect(performance.now() - opened).toBeGreaterThanOrEqual(400);
    expect(relay.connections().handshaking).toBe(0);
  });
});

describe("idle tunnels", () => {
  it("closes a tunnel that carried nothing for idleTimeout with 1001 and ends its upstream; a busy one stays", async () => {
    const up = await echoUpstream();
    const { url, relay } = await setup(up, { idleTimeout: 500 });
    const idle = await open(url);
    expect(await echo(idle, "once")).toBe("once");
    const busy = await open(url);
    expect(await waitFor(() => up.sockets.length === 2)).toBe(true);
    const [idleUpstream, busyUpstream] = up.sockets as [net.Socket, net.Socket];
    const idleClosed = closed(idle, 3000);
    // The busy tunnel carries a message every 50 ms or so for more than twice the idle timeout.
    for (let i = 0; i < 24; i++) {
      expect(await echo(busy, `tick ${i}`)).toBe(`tick ${i}`);
      await sleep(50);
    }
    expect(await idleClosed).toEqual({ code: 1001, reason: "idle for 500 ms" });
    expect(await waitFor(() => idleUpstream.closed)).toBe(true);
    expect(busy.readyState).toBe(WebSocket.OPEN);
    expect(busyUpstream.closed).toBe(false);
    expect(await waitFor(() => relay.stats().length === 1)).toBe(true);
  }, 15_000);

  it("leaves an idle tunnel open with idleTimeout 0", async () => {
    const up = await echoUpstream();
    const { url } = await setup(up, { idleTimeout: 0 });
    const ws = await open(url);
    await sleep(300);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    expect(await echo(ws, "still open")).toBe("still open");
  });

  it("rejects timeouts Node's timers cannot hold", () => {
    expect(() => new Relay({ upstreams: ["127.0.0.1:5672"], idleTimeout: 2 ** 31 })).toThrow(RangeError);
    expect(() => new Relay({ upstreams: ["127.0.0.1:5672"], handshakeTimeout: 0 })).toThrow(/handshakeTimeout/);
    expect(() => new Relay({ upstreams: ["127.0.0.1:5672"], idleTimeout: -1 })).toThrow(/idleTimeout/);
    expect(() => new Relay({ upstreams: ["127.0.0.1:5672"], maxTunnels: 0 })).toThrow(/maxTunnels/);
  });
});
