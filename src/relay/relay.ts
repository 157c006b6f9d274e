/**
 * warren-relay: a WebSocket-to-TCP bridge so that browsers can reach RabbitMQ's AMQP 0-9-1 port.
 *
 * RabbitMQ speaks AMQP 0-9-1 only over TCP and browsers only have WebSocket, so the relay accepts WebSocket
 * connections (RFC 6455), dials an upstream broker over TCP for each, and copies bytes: the payloads of the
 * client's binary frames go upstream as a plain byte stream, and each chunk the broker sends comes back as
 * one binary frame. Message boundaries carry no meaning — AMQP frames may be split across WebSocket messages
 * or share one — so fragmented messages are streamed upstream frame by frame, never reassembled.
 *
 * Theory of operation, one client connection:
 * - Accepted: it counts against `maxTunnels` from its first moment, whether it becomes a tunnel or not; a
 *   connection beyond the limit is closed at once, before a byte is read (a browser cannot see an HTTP
 *   status of a failed upgrade anyway). It has `handshakeTimeout` ms to complete its upgrade request, else
 *   it is destroyed: a slow or silent client cannot hold a socket for Node's own 60–90 s.
 * - Handshake (RFC 6455 4.2, handshake.ts): GET with `Upgrade: websocket`, `Connection: upgrade`, a 16-byte
 *   base64 `Sec-WebSocket-Key` and version 13, else 400 (426 for another version or no upgrade at all). The
 *   client chooses an upstream only among the allowed ones (`?upstream=host:port`, default the first), else
 *   403 — the relay must never become an open proxy. The upstream is dialled before the 101 answer, so a
 *   broker that is down is a 502 (504 after `connectTimeout`) the client can see, not an open socket that
 *   closes at once. The handshake clock stops while the upstream is dialled and restarts, in full, for a
 *   connection refused after the dial; a refused connection still counts until it is gone.
 * - Tunnel (tunnel.ts): frames relayed both ways with backpressure, pongs that cannot pile up, an optional
 *   idle timeout, and the closing handshake.
 *
 * Node only (node:http, node:net, node:crypto); the framing itself is ws-frame.ts, built from warren/codec.
 */
import * as http from "node:http";
import type * as net from "node:net";
import { connect } from "node:net";
import type { Duplex } from "node:stream";
import { checkUpgrade, formatUpstream, parseUpstream, refuse, switchingProtocols, type Upstream, type UpgradePolicy } from "./handshake.ts";
import { Tunnel, type TunnelStats } from "./tunnel.ts";
import { DEFAULT_MAX_PAYLOAD, WsCloseCode } from "./ws-frame.ts";

export { acceptKey, formatUpstream, parseUpstream, type Upstream } from "./handshake.ts";
export { PING_FLOOD_LIMIT, type TunnelStats } from "./tunnel.ts";

/** Node's setTimeout fires at once for anything longer (2^31 − 1 ms, about 24.8 days). */
const MAX_TIMEOUT = 0x7fff_ffff;

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
  /**
   * Milliseconds a new connection has to send its whole upgrade request; then it is destroyed. The time
   * spent dialling the upstream is not counted (`connectTimeout` bounds it). Default 10 000.
   */
  handshakeTimeout?: number;
  /**
   * Milliseconds a tunnel may carry no byte either way before it is closed (1001 to the client, the upstream
   * ended); 0 for never. AMQP heartbeats (RabbitMQ's default: every 30 s) keep a live tunnel busy, so this
   * only reaps tunnels whose client or broker is gone or stuck. Default 300 000 (5 minutes).
   */
  idleTimeout?: number;
  /**
   * Most connections at once: open tunnels plus connections still in their handshake (reading the request,
   * dialling, or refused and not yet closed). Connections beyond it are closed as they arrive. Default 1 000.
   */
  maxTunnels?: number;
  /** Receives one line per tunnel opened, refused or closed. Default: silent. */
  log?: (line: string) => void;
}

/** How many connections count against `maxTunnels`, and the limit. */
export interface RelayConnections {
  /** Connections not yet upgraded: reading the request, dialling the upstream, or refused and closing. */
  readonly handshaking: number;
  /** Tunnels not yet fully closed. */
  readonly tunnels: number;
  readonly limit: number;
}

/** A whole number of milliseconds in [min, 2^31 − 1], or the default. */
function duration(name: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > MAX_TIMEOUT) {
    throw new RangeError(`Invalid relay option ${name}: ${value} (expected whole milliseconds from ${min} to ${MAX_TIMEOUT})`);
  }
  return value;
}

export class Relay {
  readonly server: http.Server;
  readonly upstreams: readonly Upstream[];
  readonly #policy: UpgradePolicy;
  readonly #maxMessage: number;
  readonly #connectTimeout: number;
  readonly #closeTimeout: number;
  readonly #handshakeTimeout: number;
  readonly #idleTimeout: number;
  readonly #maxTunnels: number;
  readonly #log: (line: string) => void;
  readonly #tunnels = new Set<Tunnel>();
  /** Client sockets not yet a tunnel, each with its handshake deadline (undefined while dialling). */
  readonly #handshaking = new Map<net.Socket, ReturnType<typeof setTimeout> | undefined>();
  /** Upstream sockets still being dialled. */
  readonly #dialling = new Set<net.Socket>();
  #nextId = 1;

  /**
   * @example
   * const relay = new Relay({ upstreams: ["127.0.0.1:5672"], idleTimeout: 120_000 });
   * const { url } = await relay.listen(15670, "127.0.0.1"); // "ws://127.0.0.1:15670/"
   */
  constructor(options: RelayOptions) {
    if (options.upstreams.length === 0) throw new Error("A relay needs at least one upstream");
    this.upstreams = options.upstreams.map(parseUpstream);
    this.#policy = {
      upstreams: this.upstreams,
      allowed: new Set(this.upstreams.map(formatUpstream)),
      origins: options.origins ? new Set(options.origins.map((o) => o.toLowerCase().replace(/\/+$/, ""))) : undefined,
    };
    this.#maxMessage = options.maxMessageSize ?? DEFAULT_MAX_PAYLOAD;
    this.#connectTimeout = duration("connectTimeout", options.connectTimeout, 10_000, 1);
    this.#closeTimeout = duration("closeTimeout", options.closeTimeout, 5_000, 1);
    this.#handshakeTimeout = duration("handshakeTimeout", options.handshakeTimeout, 10_000, 1);
    this.#idleTimeout = duration("idleTimeout", options.idleTimeout, 300_000, 0);
    const max = options.maxTunnels ?? 1000;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`Invalid relay option maxTunnels: ${max} (expected a positive whole number)`);
    this.#maxTunnels = max;
    this.#log = options.log ?? (() => undefined);
    this.server = http.createServer((req, res) => {
      // A plain HTTP request: this server only upgrades (RFC 7231 6.5.15: 426 names the protocol to use).
      // The connection is not kept alive: it would hold a slot of `maxTunnels` for nothing.
      const body = "warren-relay: connect with a WebSocket client (AMQP 0-9-1 over binary frames)\n";
      res.writeHead(426, { "Content-Type": "text/plain; charset=utf-8", Upgrade: "websocket", Connection: "Upgrade, close", "Sec-WebSocket-Version": "13" });
      res.end(req.method === "HEAD" ? undefined : body);
    });
    this.server.on("connection", (socket: net.Socket) => this.#accept(socket));
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
    for (const s of this.#handshaking.keys()) s.destroy();
    await Promise.all([...this.#tunnels].map((t) => t.shutdown(WsCloseCode.GOING_AWAY, "relay shutting down")));
    this.server.closeAllConnections?.();
    await closed;
  }

  /** One entry per open tunnel. */
  stats(): TunnelStats[] {
    return [...this.#tunnels].map((t) => t.stats());
  }

  /** The connections counted against `maxTunnels` right now. */
  connections(): RelayConnections {
    return { handshaking: this.#handshaking.size, tunnels: this.#tunnels.size, limit: this.#maxTunnels };
  }

  /** A new TCP connection: counted from now on, and given `handshakeTimeout` to send its upgrade request. */
  #accept(socket: net.Socket): void {
    socket.on("error", () => undefined); // reported through 'close'; an unhandled 'error' would crash the relay
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    if (this.#handshaking.size + this.#tunnels.size >= this.#maxTunnels) {
      this.#log(`dropped ${peer}: too many connections (${this.#maxTunnels})`);
      socket.destroy();
      return;
    }
    this.#handshaking.set(socket, undefined);
    this.#armHandshake(socket, peer);
    socket.once("close", () => this.#forget(socket));
  }

  /** (Re)starts the handshake deadline of a connection that is not yet a tunnel. */
  #armHandshake(socket: net.Socket, peer: string): void {
    if (!this.#handshaking.has(socket)) return;
    clearTimeout(this.#handshaking.get(socket));
    const timer = setTimeout(() => {
      this.#log(`dropped ${peer}: no WebSocket handshake within ${this.#handshakeTimeout} ms`);
      socket.destroy();
    }, this.#handshakeTimeout);
    timer.unref();
    this.#handshaking.set(socket, timer);
  }

  /** The connection is a tunnel now, or gone: it no longer counts as a handshake. */
  #forget(socket: net.Socket): void {
    clearTimeout(this.#handshaking.get(socket));
    this.#handshaking.delete(socket);
  }

  #upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    if (!this.#handshaking.has(socket)) {
      // Every socket passes #accept first; one that is no longer counted (destroyed meanwhile) gets nothing.
      socket.destroy();
      return;
    }
    const checked = checkUpgrade(req, this.#policy);
    if ("status" in checked) {
      this.#log(`refused ${peer} ${req.url}: ${checked.status} ${checked.reason}`);
      refuse(socket, checked.status, checked.reason, checked.headers);
      return; // the handshake deadline still runs: a client that keeps the refused socket open loses it then
    }
    const target = formatUpstream(checked);
    // Nothing may be read from the client before the 101; a well-behaved client sends nothing anyway.
    socket.pause();
    // The dial has its own deadline; the handshake clock waits for it.
    clearTimeout(this.#handshaking.get(socket));
    this.#handshaking.set(socket, undefined);
    const upstream = connect({ host: checked.host, port: checked.port });
    this.#dialling.add(upstream);
    const timer = setTimeout(() => fail(504, `upstream ${target} did not answer within ${this.#connectTimeout} ms`), this.#connectTimeout);
    const fail = (status: number, reason: string) => {
      clearTimeout(timer);
      this.#dialling.delete(upstream);
      upstream.destroy();
      this.#log(`refused ${peer}: ${status} ${reason}`);
      refuse(socket, status, reason);
      this.#armHandshake(socket, peer);
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
      this.#forget(socket);
      socket.write(switchingProtocols(req.headers["sec-websocket-key"] as string));
      const id = this.#nextId++;
      const tunnel = new Tunnel(id, socket, upstream, target, {
        maxMessage: this.#maxMessage,
        closeTimeout: this.#closeTimeout,
        idleTimeout: this.#idleTimeout,
        log: (line) => this.#log(`tunnel ${id} ${peer} → ${target}: ${line}`),
        onClosed: () => this.#tunnels.delete(tunnel),
      });
      this.#tunnels.add(tunnel);
      this.#log(`tunnel ${id} ${peer} → ${target}: open`);
      tunnel.start(head);
    });
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
