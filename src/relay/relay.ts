/**
 * warren-relay: a WebSocket-to-TCP bridge so that browsers can reach RabbitMQ's AMQP 0-9-1 port.
 *
 * RabbitMQ speaks AMQP 0-9-1 only over TCP and browsers only have WebSocket, so the relay accepts WebSocket
 * connections (RFC 6455), dials an upstream broker over TCP for each, and copies bytes: the payloads of the
 * client's binary frames go upstream as a plain byte stream, and each chunk the broker sends comes back as
 * one binary frame. Message boundaries carry no meaning — AMQP frames may be split across WebSocket messages
 * or share one — so fragmented messages are streamed upstream frame by frame, never reassembled.
 *
 * Theory of operation, one tunnel (a WebSocket socket `ws` and its TCP socket `upstream`):
 * - Handshake (RFC 6455 4.2): GET with `Upgrade: websocket`, `Connection: upgrade`, a 16-byte base64
 *   `Sec-WebSocket-Key` and version 13, else 400 (426 for another version or no upgrade at all). The client
 *   chooses an upstream only among the allowed ones (`?upstream=host:port`, default the first), else 403 —
 *   the relay must never become an open proxy. The upstream is dialled before the 101 answer, so a broker
 *   that is down is a 502 the client can see, not an open socket that closes at once.
 * - Frames from the client must be masked (1002 otherwise), binary (1003 for text), at most
 *   `maxMessageSize` bytes per frame and per message (1009). Ping → pong with the same payload.
 * - Backpressure both ways, with Node's own signals: `upstream.write()` returning false pauses `ws` until
 *   the upstream's 'drain', and `ws.write()` returning false pauses `upstream` until the ws socket's 'drain'.
 *   So a tunnel holds at most about one socket high-water mark plus one read chunk per direction, plus one
 *   partial frame in the decoder (bounded by `maxMessageSize`).
 * - Closing: a client close frame is echoed, then the relay ends the TCP connection (the server closes
 *   first, 7.1.1) and ends the upstream. When the upstream ends, the relay sends close 1000 (1014 if it
 *   failed) after the last bytes and waits up to `closeTimeout` for the echo. A protocol violation sends its
 *   close code and ends the connection at once ("fail the WebSocket connection", 7.1.7).
 *
 * Node only (node:http, node:net, node:crypto); the framing itself is ws-frame.ts, built from warren/codec.
 */
import { createHash } from "node:crypto";
import * as http from "node:http";
import * as net from "node:net";
import type { Duplex } from "node:stream";
import { Writer } from "../codec/writer.ts";
import {
  DEFAULT_MAX_PAYLOAD,
  decodeClosePayload,
  encodeClosePayload,
  encodeWsFrame,
  encodeWsFrameHeader,
  type WsFrame,
  WsCloseCode,
  WsFrameDecoder,
  WsMessageState,
  WsOpcode,
  WsProtocolError,
} from "./ws-frame.ts";

/** Payloads up to this size are copied behind their header (one write); larger ones are written apart. */
const SMALL_FRAME = 4096;

/** RFC 6455 1.3: the GUID appended to the key before hashing. */
const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

export interface RelayOptions {
  /**
   * The upstreams ("host:port", "[::1]:5672") a client may be relayed to. The first is the default, used
   * when the client names none. Nothing else is ever dialled.
   */
  upstreams: readonly string[];
  /**
   * Browser origins (the `Origin` header, e.g. "https://app.example") allowed to connect; others get 403.
   * Default: any origin. A relay on a developer's machine reaching a broker that accepts guest/guest from
   * localhost should set this: any web page the developer opens could otherwise use the relay too.
   * Requests without an Origin (non-browser clients, which could send any Origin anyway) are not checked.
   */
  origins?: readonly string[];
  /** Largest frame payload and largest message accepted from a client, in bytes (close 1009). Default 1 MiB. */
  maxMessageSize?: number;
  /** Milliseconds to wait for the upstream TCP connection (then 504). Default 10 000. */
  connectTimeout?: number;
  /** Milliseconds to wait for the client's half of the close handshake. Default 5 000. */
  closeTimeout?: number;
  /** Most tunnels open at once (then 503). Default 1 000. */
  maxTunnels?: number;
  /** Receives one line per tunnel opened, refused or closed. Default: silent. */
  log?: (line: string) => void;
}

/** An upstream broker address. */
export interface Upstream {
  readonly host: string;
  readonly port: number;
}

/** What a tunnel is holding, for monitoring and tests. */
export interface TunnelStats {
  readonly id: number;
  readonly upstream: string;
  /** Bytes queued on the WebSocket side (frames to the client not yet taken by the kernel). */
  readonly wsBuffered: number;
  /** Bytes queued on the upstream side. */
  readonly upstreamBuffered: number;
  /** Bytes of an incomplete client frame held by the decoder. */
  readonly decoderBuffered: number;
  /** True while reading from the client is paused (the upstream is full). */
  readonly wsPaused: boolean;
  /** True while reading from the upstream is paused (the client is slow). */
  readonly upstreamPaused: boolean;
}

/**
 * Parses "host:port" or "[v6]:port"; the host is lower-cased so allow-list checks are exact.
 * @example parseUpstream("[::1]:5672"); // { host: "::1", port: 5672 }
 */
export function parseUpstream(s: string): Upstream {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s/?#[\]@]+)):(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) throw new Error(`Invalid upstream "${s}": expected host:port, e.g. 127.0.0.1:5672 or [::1]:5672`);
  return { host: (m[1] ?? m[2]!).toLowerCase(), port };
}

/** The canonical "host:port" of an upstream. */
export function formatUpstream(u: Upstream): string {
  return u.host.includes(":") ? `[${u.host}]:${u.port}` : `${u.host}:${u.port}`;
}

/**
 * `Sec-WebSocket-Accept` for a key: base64(SHA-1(key + GUID)) (RFC 6455 4.2.2).
 * @example acceptKey("dGhlIHNhbXBsZSBub25jZQ=="); // "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
 */
export function acceptKey(key: string): string {
  return createHash("sha1").update(key + WS_GUID).digest("base64");
}

/** True when a comma-separated header holds `token` (case-insensitive). */
function hasToken(header: string | undefined, token: string): boolean {
  return (header ?? "").split(",").some((t) => t.trim().toLowerCase() === token);
}

/** A plain HTTP answer on a socket that was not upgraded. */
function refuse(socket: Duplex, status: number, text: string, extra: Record<string, string> = {}): void {
  const body = `${text}\n`;
  const headers = {
    "Content-Type": "text/plain; charset=utf-8",
    "Content-Length": String(Buffer.byteLength(body)),
    Connection: "close",
    ...extra,
  };
  const head = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ""}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`;
  if (socket.writable) socket.end(head + body);
  else socket.destroy();
}

/** Why a handshake is refused: an HTTP status, a reason and extra headers. */
interface Refusal {
  status: number;
  reason: string;
  headers?: Record<string, string>;
}

export class Relay {
  readonly server: http.Server;
  readonly upstreams: readonly Upstream[];
  readonly #allowed: Set<string>;
  readonly #origins: Set<string> | undefined;
  readonly #maxMessage: number;
  readonly #connectTimeout: number;
  readonly #closeTimeout: number;
  readonly #maxTunnels: number;
  readonly #log: (line: string) => void;
  readonly #tunnels = new Set<Tunnel>();
  /** Upgrades still dialling their upstream. */
  readonly #dialling = new Set<net.Socket>();
  #nextId = 1;

  /**
   * @example
   * const relay = new Relay({ upstreams: ["127.0.0.1:5672"] });
   * const { url } = await relay.listen(15670, "127.0.0.1"); // "ws://127.0.0.1:15670/"
   */
  constructor(options: RelayOptions) {
    if (options.upstreams.length === 0) throw new Error("A relay needs at least one upstream");
    this.upstreams = options.upstreams.map(parseUpstream);
    this.#allowed = new Set(this.upstreams.map(formatUpstream));
    this.#origins = options.origins ? new Set(options.origins.map((o) => o.toLowerCase().replace(/\/+$/, ""))) : undefined;
    this.#maxMessage = options.maxMessageSize ?? DEFAULT_MAX_PAYLOAD;
    this.#connectTimeout = options.connectTimeout ?? 10_000;
    this.#closeTimeout = options.closeTimeout ?? 5_000;
    this.#maxTunnels = options.maxTunnels ?? 1000;
    this.#log = options.log ?? (() => undefined);
    this.server = http.createServer((req, res) => {
      // A plain HTTP request: this server only upgrades (RFC 7231 6.5.15: 426 names the protocol to use).
      const body = "warren-relay: connect with a WebSocket client (AMQP 0-9-1 over binary frames)\n";
      res.writeHead(426, { "Content-Type": "text/plain; charset=utf-8", Upgrade: "websocket", Connection: "Upgrade", "Sec-WebSocket-Version": "13" });
      res.end(req.method === "HEAD" ? undefined : body);
    });
    this.server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket as net.Socket, head));
  }

  /** Starts listening; resolves with the address and the ws:// URL. Binds to `host` only. */
  listen(port = 15670, host = "127.0.0.1"): Promise<{ host: string; port: number; url: string }> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      this.server.once("error", onError);
      this.server.listen(port, host, () => {
        this.server.off("error", onError);
        const a = this.server.address() as net.AddressInfo;
        const h = a.family === "IPv6" || a.address.includes(":") ? `[${a.address}]` : a.address;
        resolve({ host: a.address, port: a.port, url: `ws://${h}:${a.port}/` });
      });
    });
  }

  /** Stops listening and closes every tunnel with 1001 (going away). Resolves once all sockets are gone. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.#dialling) s.destroy();
    await Promise.all([...this.#tunnels].map((t) => t.shutdown(WsCloseCode.GOING_AWAY, "relay shutting down")));
    this.server.closeAllConnections?.();
    await closed;
  }

  /** One entry per open tunnel. */
  stats(): TunnelStats[] {
    return [...this.#tunnels].map((t) => t.stats());
  }

  /** Checks the handshake; returns the upstream to dial or why not. */
  #check(req: http.IncomingMessage): Upstream | Refusal {
    if (req.method !== "GET") return { status: 400, reason: "a WebSocket handshake is a GET request" };
    if (req.httpVersionMajor * 1000 + req.httpVersionMinor < 1001) return { status: 400, reason: "a WebSocket handshake needs HTTP/1.1" };
    if (!req.headers.host) return { status: 400, reason: "missing Host header" };
    if (!hasToken(req.headers.upgrade, "websocket")) {
      return { status: 426, reason: "only the websocket upgrade is supported", headers: { Upgrade: "websocket", "Sec-WebSocket-Version": "13" } };
    }
    if (!hasToken(req.headers.connection, "upgrade")) return { status: 400, reason: "Connection header must include Upgrade" };
    const key = req.headers["sec-websocket-key"];
    if (typeof key !== "string" || !/^[A-Za-z0-9+/]{21}[AQgw]==$/.test(key.trim())) {
      return { status: 400, reason: "Sec-WebSocket-Key must be 16 bytes in base64" };
    }
    if (req.headers["sec-websocket-version"] !== "13") {
      return { status: 426, reason: "unsupported WebSocket version (this relay speaks 13)", headers: { "Sec-WebSocket-Version": "13" } };
    }
    const origin = req.headers.origin;
    if (this.#origins && origin !== undefined && !this.#origins.has(origin.toLowerCase())) {
      return { status: 403, reason: `origin ${origin} is not allowed` };
    }
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://relay.invalid");
    } catch {
      return { status: 400, reason: "bad request target" };
    }
    const named = url.searchParams.getAll("upstream");
    if (named.length > 1) return { status: 400, reason: "name one upstream at most" };
    if (named.length === 0) return this.upstreams[0]!;
    let upstream: Upstream;
    try {
      upstream = parseUpstream(named[0]!);
    } catch {
      return { status: 400, reason: "upstream must be host:port" };
    }
    if (!this.#allowed.has(formatUpstream(upstream))) return { status: 403, reason: `upstream ${formatUpstream(upstream)} is not allowed` };
    return upstream;
  }

  #upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.on("error", () => undefined); // reported through 'close'; an unhandled 'error' would crash the relay
    const checked = this.#check(req);
    if ("status" in checked) {
      this.#log(`refused ${peer} ${req.url}: ${checked.status} ${checked.reason}`);
      refuse(socket, checked.status, checked.reason, checked.headers);
      return;
    }
    if (this.#tunnels.size + this.#dialling.size >= this.#maxTunnels) {
      this.#log(`refused ${peer}: 503 too many tunnels`);
      refuse(socket, 503, "too many connections");
      return;
    }
    const target = formatUpstream(checked);
    // Nothing may be read from the client before the 101; a well-behaved client sends nothing anyway.
    socket.pause();
    const upstream = net.connect({ host: checked.host, port: checked.port });
    this.#dialling.add(upstream);
    const timer = setTimeout(() => fail(504, `upstream ${target} did not answer within ${this.#connectTimeout} ms`), this.#connectTimeout);
    const fail = (status: number, reason: string) => {
      clearTimeout(timer);
      this.#dialling.delete(upstream);
      upstream.destroy();
      this.#log(`refused ${peer}: ${status} ${reason}`);
      refuse(socket, status, reason);
    };
    const onEarlyClose = () => {
      clearTimeout(timer);
      this.#dialling.delete(upstream);
      upstream.destroy();
    };
    socket.once("close", onEarlyClose);
    upstream.once("error", (e: NodeJS.ErrnoException) => fail(502, `upstream ${target} failed: ${e.code ?? e.message}`));
    upstream.once("connect", () => {
      clearTimeout(timer);
      this.#dialling.delete(upstream);
      socket.off("close", onEarlyClose);
      upstream.removeAllListeners("error");
      if (socket.destroyed || !socket.writable) {
        upstream.destroy();
        return;
      }
      const key = (req.headers["sec-websocket-key"] as string).trim();
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`);
      const id = this.#nextId++;
      const tunnel = new Tunnel(id, socket, upstream, target, {
        maxMessage: this.#maxMessage,
        closeTimeout: this.#closeTimeout,
        log: (line) => this.#log(`tunnel ${id} ${peer} → ${target}: ${line}`),
        onClosed: () => this.#tunnels.delete(tunnel),
      });
      this.#tunnels.add(tunnel);
      this.#log(`tunnel ${id} ${peer} → ${target}: open`);
      tunnel.start(head);
    });
  }
}

interface TunnelOptions {
  maxMessage: number;
  closeTimeout: number;
  log(line: string): void;
  onClosed(): void;
}

/** One client WebSocket and its upstream TCP connection. */
class Tunnel {
  readonly #id: number;
  readonly #ws: net.Socket;
  readonly #upstream: net.Socket;
  readonly #target: string;
  readonly #o: TunnelOptions;
  readonly #decoder: WsFrameDecoder;
  readonly #messages: WsMessageState;
  readonly #writer = new Writer(16 * 1024);
  /** We sent a close frame: no more data frames go out, incoming data is dropped. */
  #closeSent = false;
  /** The client sent a close frame: nothing it sends afterwards counts. */
  #closeReceived = false;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #upstreamError: Error | undefined;
  #wsPaused = false;
  #upstreamPaused = false;
  /** The client broke the protocol: its further bytes are ignored. */
  #failed = false;
  #closed: Promise<void>;

  constructor(id: number, ws: net.Socket, upstream: net.Socket, target: string, o: TunnelOptions) {
    this.#id = id;
    this.#ws = ws;
    this.#upstream = upstream;
    this.#target = target;
    this.#o = o;
    this.#decoder = new WsFrameDecoder({ mask: "required", maxPayload: o.maxMessage });
    this.#messages = new WsMessageState({ maxMessage: o.maxMessage });
    let wsGone!: () => void;
    let upstreamGone!: () => void;
    const a = new Promise<void>((r) => (wsGone = r));
    const b = new Promise<void>((r) => (upstreamGone = r));
    this.#closed = Promise.all([a, b]).then(() => {
      if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
      o.onClosed();
    });
    ws.once("close", () => {
      wsGone();
      this.#onWsClose();
    });
    upstream.once("close", () => upstreamGone());
  }

  start(head: Buffer): void {
    const ws = this.#ws;
    const up = this.#upstream;
    ws.setNoDelay(true);
    up.setNoDelay(true);
    ws.on("data", (chunk: Buffer) => this.#onWsData(chunk));
    ws.on("end", () => this.#onWsEnd());
    ws.on("drain", () => this.#setUpstreamPaused(false));
    up.on("data", (chunk: Buffer) => this.#onUpstreamData(chunk));
    up.on("drain", () => this.#setWsPaused(false));
    up.on("error", (e) => (this.#upstreamError = e));
    up.on("close", () => this.#onUpstreamClose());
    if (head.length > 0) this.#onWsData(head);
    if (!this.#wsPaused) ws.resume();
  }

  stats(): TunnelStats {
    return {
      id: this.#id,
      upstream: this.#target,
      wsBuffered: this.#ws.writableLength,
      upstreamBuffered: this.#upstream.writableLength,
      decoderBuffered: this.#decoder.buffered,
      wsPaused: this.#wsPaused,
      upstreamPaused: this.#upstreamPaused,
    };
  }

  /** Starts the closing handshake from our side and resolves once both sockets are closed. */
  shutdown(code: number, reason: string): Promise<void> {
    this.#initiateClose(code, reason);
    this.#upstream.destroy();
    return this.#closed;
  }

  #setWsPaused(paused: boolean): void {
    if (paused === this.#wsPaused) return;
    this.#wsPaused = paused;
    if (paused) this.#ws.pause();
    else this.#ws.resume();
  }

  #setUpstreamPaused(paused: boolean): void {
    if (paused === this.#upstreamPaused) return;
    this.#upstreamPaused = paused;
    if (paused) this.#upstream.pause();
    else this.#upstream.resume();
  }

  #onWsData(chunk: Buffer): void {
    if (this.#failed) return;
    this.#decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    try {
      for (let f = this.#decoder.next(); f !== undefined; f = this.#decoder.next()) {
        this.#onFrame(f);
        if (this.#ws.destroyed) return;
      }
    } catch (e) {
      if (!(e instanceof WsProtocolError)) throw e;
      this.#failed = true;
      this.#fail(e.closeCode, e.message);
    }
  }

  #onFrame(f: WsFrame): void {
    switch (f.opcode) {
      case WsOpcode.CONTINUATION:
      case WsOpcode.TEXT:
      case WsOpcode.BINARY: {
        if (this.#closeReceived || this.#closeSent) return; // after a close frame, data is discarded (5.5.1)
        const kind = this.#messages.accept(f);
        if (kind === WsOpcode.TEXT) throw new WsProtocolError("UNSUPPORTED_DATA", "text frames are not accepted: send AMQP as binary frames");
        if (f.payload.length > 0 && !this.#upstream.write(f.payload)) this.#setWsPaused(true);
        return;
      }
      case WsOpcode.PING:
        if (!this.#closeSent) this.#send(WsOpcode.PONG, f.payload);
        return;
      case WsOpcode.PONG:
        return; // unsolicited pongs are allowed and mean nothing (5.5.3)
      case WsOpcode.CLOSE: {
        if (this.#closeReceived) return;
        const { code } = decodeClosePayload(f.payload);
        this.#closeReceived = true;
        this.#o.log(`client closed (${code})`);
        if (!this.#closeSent) {
          // Echo the status (5.5.1), after any data already queued.
          this.#closeSent = true;
          this.#send(WsOpcode.CLOSE, code === WsCloseCode.NO_STATUS ? new Uint8Array(0) : encodeClosePayload(code));
        }
        // The server closes the TCP connection first (7.1.1); the broker sees the end of the stream.
        this.#endWs();
        this.#upstream.end();
        return;
      }
    }
  }

  #onWsEnd(): void {
    // The client half-closed its TCP connection: without a close frame first, that is an abnormal closure.
    if (!this.#closeReceived) this.#o.log("client ended the connection without a close frame");
    this.#upstream.end();
    this.#endWs();
  }

  #onWsClose(): void {
    // Whatever remains for the broker is sent; a client that vanished without a close frame is a client gone.
    if (!this.#upstream.destroyed) this.#upstream.end();
    setTimeout(() => this.#upstream.destroy(), this.#o.closeTimeout).unref();
  }

  #onUpstreamData(chunk: Buffer): void {
    if (this.#closeSent) return;
    if (!this.#send(WsOpcode.BINARY, new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))) this.#setUpstreamPaused(true);
  }

  #onUpstreamClose(): void {
    if (this.#closeSent) return;
    const e = this.#upstreamError as NodeJS.ErrnoException | undefined;
    if (e) this.#initiateClose(WsCloseCode.BAD_GATEWAY, `upstream failed: ${e.code ?? e.message}`);
    else this.#initiateClose(WsCloseCode.NORMAL, "upstream closed the connection");
  }

  /** Sends a close frame and waits for the client's echo (7.1.2), then ends the connection. */
  #initiateClose(code: number, reason: string): void {
    if (this.#closeSent) return;
    this.#closeSent = true;
    this.#o.log(`closing (${code} ${reason})`);
    this.#send(WsOpcode.CLOSE, encodeClosePayload(code, reason));
    // Read on, even if the upstream was full: the echo has to get through.
    this.#setWsPaused(false);
    this.#armCloseTimer();
  }

  /** Fails the WebSocket connection (7.1.7): a close frame with the reason, then the end of TCP. */
  #fail(code: number, reason: string): void {
    this.#o.log(`failing (${code} ${reason})`);
    if (!this.#closeSent) {
      this.#closeSent = true;
      this.#send(WsOpcode.CLOSE, encodeClosePayload(code, reason));
    }
    this.#upstream.destroy();
    this.#endWs();
  }

  #endWs(): void {
    this.#ws.end();
    this.#armCloseTimer();
  }

  #armCloseTimer(): void {
    if (this.#closeTimer !== undefined) return;
    this.#closeTimer = setTimeout(() => {
      this.#ws.destroy();
      this.#upstream.destroy();
    }, this.#o.closeTimeout);
    this.#closeTimer.unref();
  }

  /** Writes one unmasked frame to the client; returns what `write` returned. */
  #send(opcode: WsOpcode, payload: Uint8Array): boolean {
    const ws = this.#ws;
    if (!ws.writable) return true;
    // `finish` hands out bytes the writer never touches again, so the socket may keep them until flushed.
    if (payload.length <= SMALL_FRAME) {
      encodeWsFrame(this.#writer, { opcode, payload });
      return ws.write(this.#writer.finish());
    }
    // A large chunk from the broker goes out as it is, behind its header: no copy of up to 64 KiB per read.
    encodeWsFrameHeader(this.#writer, true, opcode, payload.length);
    ws.cork();
    ws.write(this.#writer.finish());
    const ok = ws.write(payload);
    ws.uncork();
    return ok;
  }
}

/**
 * Creates a relay (not yet listening).
 * @example
 * const relay = createRelay({ upstreams: ["127.0.0.1:5672"] });
 * await relay.listen(15670, "127.0.0.1");
 */
export function createRelay(options: RelayOptions): Relay {
  return new Relay(options);
}
