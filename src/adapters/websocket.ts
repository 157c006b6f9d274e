/**
 * The WebSocket transport, for browsers (and Deno, Bun, Node ≥ 22): AMQP 0-9-1 over the standard global
 * `WebSocket`, through warren-relay (RabbitMQ itself only speaks AMQP 0-9-1 over TCP).
 *
 * Where things go:
 * - the relay is a ws:// or wss:// URL: the first argument of `connect`, or `options.relay`;
 * - the AMQP side (user, password, vhost, heartbeat, …) comes from the options, or from an amqp:// URL
 *   given as the first argument when the relay is in `options.relay`;
 * - the broker the relay dials is the relay's default, unless a host is named (in the amqp:// URL or as
 *   `hostname`/`port`): then it is asked for with `?upstream=host:port`, which the relay grants only if
 *   that upstream is on its allow-list (403 otherwise).
 *
 * @example
 * import { connect } from "warren/websocket";
 * const conn = await connect("ws://127.0.0.1:15670", { username: "guest", password: "guest", vhost: "/" });
 * // or: the AMQP URI for the credentials and the broker, the relay apart
 * const conn2 = await connect("amqp://app:secret@rabbit-1:5672/prod", { relay: "wss://relay.example/amqp" });
 *
 * Thin like every adapter: each binary message's bytes go to the client as they are (an AMQP frame may be
 * split across messages or share one; the machine reassembles), each write becomes one or more binary
 * messages. Backpressure: the WebSocket API has no 'drain' event, so `write` returns false while
 * `bufferedAmount` is above the client's writeHighWaterMark and a timer polls `bufferedAmount` — only while
 * it is above — to report the drain. Reading cannot be paused: the standard WebSocket has no flow control
 * for incoming messages (WebSocketStream would), so `pauseReading` is not offered.
 *
 * This file uses no runtime-specific API. Under Node 20, which has no global WebSocket, pass one in:
 * `connect(url, { WebSocket: (await import("ws")).WebSocket })`.
 */
import { connectWith } from "../client/connect.ts";
import type { Connection } from "../client/connection.ts";
import { TransportError, UsageError } from "../client/errors.ts";
import { type ConnectOptions, parseUrl, type KeptOptions } from "../client/options.ts";
import type { Runtime, Transport, TransportHandlers } from "../client/transport.ts";
import { connectAttempt } from "./attempt.ts";
import { defer, describe } from "./common.ts";

export { defer } from "./common.ts";

/** The part of the standard WebSocket this adapter uses (the `ws` package's class fits it too). */
export interface WebSocketLike {
  binaryType: string;
  readonly bufferedAmount: number;
  readonly readyState: number;
  /** The DOM's `send` takes views of an ArrayBuffer only, not of a SharedArrayBuffer. */
  send(data: Uint8Array<ArrayBuffer>): void;
  close(code?: number, reason?: string): void;
  // Handlers take `any`: the DOM's and the ws package's event types differ, and a handler property is
  // checked contravariantly. What is read from each event is spelled out where it is read.
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
}
/** A WebSocket constructor: the global one by default. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface WebSocketConnectOptions extends ConnectOptions {
  /** The relay's URL (ws:// or wss://), when the first argument of `connect` is an amqp:// URI or options. */
  relay?: string;
  /** The WebSocket class to use. Default: the global `WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** How often, in ms, `bufferedAmount` is polled while over the high-water mark. Default 10. */
  drainPollInterval?: number;
}

/** OPEN in the WebSocket readyState enumeration. */
const OPEN = 1;

/**
 * Largest WebSocket message written: a write is cut into messages of at most this size (the relay caps a
 * message, 1 MiB by default; one turn of publishing can coalesce far more than that).
 */
export const MAX_MESSAGE_SIZE = 64 * 1024;

/** The relay URL without credentials or query, for error messages. */
function describeRelay(url: string): string {
  return url.replace(/\/\/[^/@]*@/, "//").replace(/[?#].*$/, "");
}

/**
 * Opens a WebSocket to the relay and wraps it as a Transport. `signal` (the client's connect deadline and
 * the caller's signal) gives the attempt up, closing the socket mid-upgrade: see src/adapters/attempt.ts.
 */
export function webSocketTransport(
  url: string,
  Ctor: WebSocketConstructor,
  pollInterval: number,
  o: KeptOptions,
  h: TransportHandlers,
  signal?: AbortSignal,
): Promise<Transport> {
  return connectAttempt<Transport, WebSocketLike>(signal, (ws) => ws.close(), (a) => {
    let ws: WebSocketLike;
    try {
      ws = a.track(new Ctor(url));
    } catch (e) {
      a.reject(new TransportError(`Could not connect to relay ${describeRelay(url)}: ${describe(e)}`, { cause: e }));
      return;
    }
    ws.binaryType = "arraybuffer";
    let opened = false;
    let failure: unknown;
    let poll: ReturnType<typeof setTimeout> | undefined;
    const stopPoll = () => {
      if (poll !== undefined) clearTimeout(poll);
      poll = undefined;
    };
    // No 'drain' event exists: poll bufferedAmount, only while it is above the mark.
    const startPoll = () => {
      if (poll !== undefined) return;
      const check = () => {
        poll = undefined;
        if (ws.readyState !== OPEN) return;
        if (ws.bufferedAmount <= o.writeHighWaterMark) h.onDrain();
        else poll = setTimeout(check, pollInterval);
      };
      poll = setTimeout(check, pollInterval);
    };
    ws.onopen = () => {
      if (a.settled) return; // aborted meanwhile: the socket is being closed
      opened = true;
      a.resolve(transport);
    };
    ws.onmessage = (event: { data: unknown }) => {
      if (!opened) return;
      const data = event.data;
      if (data instanceof ArrayBuffer) h.onData(new Uint8Array(data));
      else if (ArrayBuffer.isView(data)) h.onData(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      else {
        // A text message: the relay sends none, so this is not warren-relay. Stop rather than misparse.
        failure = new TransportError("The relay sent a text message; AMQP travels in binary messages — is the URL a warren-relay?");
        ws.close(1003, "binary messages only");
      }
    };
    ws.onerror = (event: { error?: unknown; message?: string } | undefined) => {
      // Browsers say nothing more about a WebSocket error (by design); the close event follows.
      failure ??= event?.error ?? new TransportError(`WebSocket error${event?.message ? `: ${event.message}` : ""}`);
    };
    ws.onclose = (event: { code: number; reason: string }) => {
      stopPoll();
      if (!opened) {
        // A refused upgrade (403, 502, …) shows up as code 1006 with no detail in a browser.
        const why = failure instanceof Error ? failure.message : `closed with code ${event.code}${event.reason ? ` (${event.reason})` : ""}`;
        a.reject(new TransportError(`Could not connect to relay ${describeRelay(url)}: ${why}`, { cause: failure }));
        return;
      }
      // The close event is the WebSocket's last: onClose is the last handler call.
      if (failure === undefined && event.code !== 1000) {
        failure = new TransportError(`WebSocket closed with code ${event.code}${event.reason ? `: ${event.reason}` : ""}`);
      }
      h.onClose(failure);
    };
    const transport: Transport = {
      write(data) {
        // After a close has begun, a send would only grow bufferedAmount; the client learns of the close anyway.
        if (ws.readyState !== OPEN) return true;
        // The client's output is always backed by an ArrayBuffer (its Writer's slab), never a shared one.
        const bytes = data as Uint8Array<ArrayBuffer>;
        if (bytes.length <= MAX_MESSAGE_SIZE) ws.send(bytes);
        else for (let at = 0; at < bytes.length; at += MAX_MESSAGE_SIZE) ws.send(bytes.subarray(at, at + MAX_MESSAGE_SIZE));
        if (ws.bufferedAmount <= o.writeHighWaterMark) return true;
        startPoll();
        return false;
      },
      get bufferedAmount() {
        return ws.bufferedAmount;
      },
      // close() sends the close frame behind every message already queued: nothing written is lost.
      end: () => ws.close(1000),
      destroy: () => {
        stopPoll();
        ws.close(1000);
      },
    };
  });
}

function platform(): string {
  const nav = (globalThis as { navigator?: { userAgent?: string } }).navigator;
  return nav?.userAgent ? `WebSocket; ${nav.userAgent}` : "WebSocket";
}

/** A Runtime whose transport is a WebSocket to `relayUrl`. */
export function webSocketRuntime(relayUrl: string, options: { WebSocket?: WebSocketConstructor; drainPollInterval?: number } = {}): Runtime {
  const Ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (Ctor === undefined) {
    throw new UsageError("No global WebSocket in this runtime (Node < 22): pass one as options.WebSocket, e.g. the ws package's");
  }
  const pollInterval = options.drainPollInterval ?? 10;
  return {
    connect: (o, h, signal) => webSocketTransport(relayUrl, Ctor, pollInterval, o, h, signal),
    now: () => performance.now(),
    defer,
    platform: platform(),
  };
}

/**
 * The relay URL to open: `relay`, plus `?upstream=host:port` when the caller named a broker.
 * @example relayUrl("ws://127.0.0.1:15670", "rabbit-1", 5672); // "ws://127.0.0.1:15670/?upstream=rabbit-1%3A5672"
 */
export function relayUrl(relay: string, hostname: string | undefined, port: number | undefined): string {
  if (!/^wss?:\/\//i.test(relay)) throw new UsageError(`The relay URL must start with ws:// or wss://, not ${describeRelay(relay)}`);
  if (hostname === undefined && port === undefined) return relay;
  const host = hostname ?? "127.0.0.1";
  const upstream = `${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port ?? 5672}`;
  const u = new URL(relay);
  u.searchParams.set("upstream", upstream);
  return u.toString();
}

/**
 * Connects to RabbitMQ through a warren-relay.
 *
 * @example
 * // The relay's URL first, AMQP settings in the options:
 * await connect("ws://127.0.0.1:15670", { username: "guest", password: "guest", vhost: "/" });
 * // An AMQP URI first (credentials, vhost, the broker to ask the relay for), the relay in the options:
 * await connect("amqp://guest:guest@127.0.0.1:5672/%2f?heartbeat=30", { relay: "ws://127.0.0.1:15670" });
 * // Under Node 20: bring a WebSocket implementation
 * await connect("ws://127.0.0.1:15670", { WebSocket: (await import("ws")).WebSocket });
 */
export function connect(url?: string | WebSocketConnectOptions, options: WebSocketConnectOptions = {}): Promise<Connection> {
  let amqpUrl: string | undefined;
  let o: WebSocketConnectOptions;
  if (typeof url === "string") {
    if (/^wss?:\/\//i.test(url.trim())) {
      if (options.relay !== undefined) return Promise.reject(new UsageError("Give the relay once: as the ws:// URL or as options.relay, not both"));
      o = { ...options, relay: url.trim() };
    } else {
      amqpUrl = url;
      o = options;
    }
  } else o = { ...url, ...options };
  const { relay, WebSocket, drainPollInterval, ...amqp } = o;
  if (relay === undefined) return Promise.reject(new UsageError('No relay given: connect("ws://relay:15670", options) or connect(amqpUrl, { relay: "ws://relay:15670" })'));
  let target: string;
  let runtime: Runtime;
  try {
    // The broker is named only when the caller named it; otherwise the relay's default upstream is used.
    const fromUrl = amqpUrl !== undefined ? parseUrl(amqpUrl) : {};
    if ((amqp.protocol ?? fromUrl.protocol) === "amqps:" || amqp.tls !== undefined) {
      throw new UsageError("amqps:// cannot go through the relay (it dials the broker over plain TCP): use a wss:// relay URL to encrypt the browser's leg");
    }
    if (amqp.socketPath !== undefined) throw new UsageError("socketPath is not available over a WebSocket relay");
    target = relayUrl(relay, amqp.hostname ?? fromUrl.hostname, amqp.port ?? fromUrl.port);
    runtime = webSocketRuntime(target, { ...(WebSocket !== undefined && { WebSocket }), ...(drainPollInterval !== undefined && { drainPollInterval }) });
  } catch (e) {
    return Promise.reject(e);
  }
  return connectWith(runtime, amqpUrl, amqp);
}

export * from "../client/index.ts";
