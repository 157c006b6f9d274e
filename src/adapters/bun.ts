/**
 * The Bun transport: TCP, TLS and unix sockets through Bun.connect, and `connect` bound to it.
 *
 * Thin, like the Node adapter: bytes read go to the client untouched, writes go out in order, Nagle is off.
 * Bun's socket API differs from Node's in two ways that matter here:
 *
 * - `socket.write(bytes)` does not buffer: it returns how many bytes the socket took, possibly fewer than
 *   given (0 when the kernel's buffer is full). The rest is kept here, in order, and written from the
 *   `drain` callback; anything written meanwhile queues behind it. `bufferedAmount` is that backlog;
 *   `write` returns false past writeHighWaterMark, and `onDrain` is reported when a drain brings the
 *   backlog to the mark or below. A buffer handed to `write` is kept (a view on it, for a tail), never
 *   copied or modified.
 * - For TLS, Bun.connect resolves (and `open` runs) before the handshake; the transport is handed to the
 *   client only from the `handshake` callback, once the server's certificate was verified. Verification
 *   failures reach only that callback (the socket then just closes), so it also turns them into the
 *   TransportError the connect rejects with.
 *
 * Received chunks are handed over as they come (`binaryType: "uint8array"`): Bun allocates a new buffer for
 * every `data` callback (checked by test/runtimes/bun/transport_test.ts), so no copy is needed.
 *
 * Bun's types are not visible to tsc when it checks src alone (tsconfig.build.json), so the few Bun APIs
 * used are declared below; a type-level test checks them against @types/bun when those types are loaded.
 */
import { connectWith, type Connection } from "../client/connection.ts";
import { TransportError } from "../client/errors.ts";
import { type ConnectOptions, isIpAddress, type ResolvedConnectOptions } from "../client/options.ts";
import type { Runtime, Transport, TransportHandlers } from "../client/transport.ts";

// ---------------------------------------------------------------------------------------------------------
// The subset of Bun's socket API this adapter uses.

interface BunSocket {
  write(data: Uint8Array): number;
  end(): void;
  terminate(): void;
  setNoDelay?(noDelay?: boolean): boolean;
  pause?(): unknown;
  resume?(): unknown;
}
interface BunSocketHandler {
  binaryType?: "uint8array";
  open?(socket: BunSocket): void;
  handshake?(socket: BunSocket, success: boolean, authorizationError: Error | null): void;
  data?(socket: BunSocket, data: Uint8Array): void;
  drain?(socket: BunSocket): void;
  error?(socket: BunSocket, error: Error): void;
  close?(socket: BunSocket, error?: Error): void;
  connectError?(socket: BunSocket, error: Error): void;
}
interface BunTlsOptions {
  ca?: string | Uint8Array | (string | Uint8Array)[];
  cert?: string | Uint8Array;
  key?: string | Uint8Array;
  passphrase?: string;
  serverName?: string;
  rejectUnauthorized?: boolean;
}
interface BunNet {
  connect(options: { hostname: string; port: number; tls?: BunTlsOptions; socket: BunSocketHandler }): Promise<BunSocket>;
  connect(options: { unix: string; tls?: BunTlsOptions; socket: BunSocketHandler }): Promise<BunSocket>;
  readonly version: string;
}

/** Bun's real namespace where @types/bun is loaded (the test runner, tsconfig.json); the declaration above otherwise. */
type RealBun = typeof globalThis extends { Bun: infer B } ? B : BunNet;
type Fits<T extends BunNet> = T;
/** Fails type checking if Bun's API no longer fits the declarations this file relies on. */
type _BunFits = Fits<RealBun>;

const Bun = (globalThis as unknown as { Bun: BunNet }).Bun;

// ---------------------------------------------------------------------------------------------------------

function where(o: ResolvedConnectOptions): string {
  return o.socketPath !== undefined ? `unix:${o.socketPath}` : `${o.hostname}:${o.port}`;
}

function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = (e as { code?: unknown }).code;
  return typeof code === "string" && !e.message.includes(code) ? `${code} ${e.message}` : e.message;
}

function tlsOptions(o: ResolvedConnectOptions): BunTlsOptions {
  const t = o.tlsOptions;
  // Like Node: the name checked and sent as SNI is servername, else the host unless it is an IP (which is
  // then checked against the certificate's IP addresses). Over a unix socket Bun knows no host, so the
  // name must be given even when it is the host.
  const serverName = t.servername ?? (isIpAddress(o.hostname) && o.socketPath === undefined ? undefined : o.hostname);
  return {
    ...(serverName !== undefined && { serverName }),
    ...(t.ca !== undefined && { ca: t.ca }),
    ...(t.cert !== undefined && { cert: t.cert }),
    ...(t.key !== undefined && { key: t.key }),
    ...(t.passphrase !== undefined && { passphrase: t.passphrase }),
    // Verification (chain and host name) is on unless explicitly turned off.
    rejectUnauthorized: t.verify !== false,
  };
}

/** Opens a socket and wraps it as a Transport. */
export function bunTransport(o: ResolvedConnectOptions, h: TransportHandlers): Promise<Transport> {
  return new Promise((resolve, reject) => {
    const hwm = o.writeHighWaterMark;
    let socket: BunSocket | undefined;
    /** Bytes the socket has not taken yet, oldest first; the head may be the tail of a partial write. */
    const backlog: Uint8Array[] = [];
    let head = 0;
    let buffered = 0;
    let connected = false;
    let ending = false;
    let closed = false;
    let failure: unknown;

    const fail = (e: unknown) => {
      reject(e instanceof TransportError ? e : new TransportError(`Could not connect to ${where(o)}: ${describe(e)}`, { cause: e }));
    };

    /** Writes the backlog until the socket takes no more. True when it is empty. */
    const writeBacklog = (s: BunSocket): boolean => {
      while (head < backlog.length) {
        const chunk = backlog[head]!;
        const n = s.write(chunk);
        if (n < 0) return false; // closing: the close callback follows
        buffered -= n;
        if (n < chunk.byteLength) {
          backlog[head] = chunk.subarray(n);
          return false;
        }
        backlog[head++] = EMPTY;
      }
      backlog.length = head = 0;
      return true;
    };

    // The client stops waiting after connectionTimeout but cannot cancel a transport that has not resolved:
    // a TLS handshake with a peer that never answers would keep its socket open. Give up at the same deadline.
    let opening: BunSocket | undefined;
    const deadline =
      o.connectionTimeout > 0
        ? setTimeout(() => {
            fail(new TransportError(`Could not connect to ${where(o)} within ${o.connectionTimeout} ms`));
            opening?.terminate();
          }, o.connectionTimeout)
        : undefined;

    const established = (s: BunSocket) => {
      clearTimeout(deadline);
      connected = true;
      socket = s;
      resolve(transport);
    };

    const handler: BunSocketHandler = {
      binaryType: "uint8array",
      open(s) {
        opening = s;
        s.setNoDelay?.(true);
        // With a handshake callback, TLS sockets open before the handshake: wait for it.
        if (!o.tls) established(s);
      },
      handshake(s, success, authorizationError) {
        if (success) {
          established(s);
        } else {
          failure = authorizationError;
          fail(new TransportError(`Could not connect to ${where(o)}: TLS handshake failed: ${describe(authorizationError)}`, { cause: authorizationError }));
          s.terminate();
        }
      },
      data(_s, bytes) {
        h.onData(bytes);
      },
      drain(s) {
        if (closed) return;
        const empty = writeBacklog(s);
        if (empty && ending) s.end();
        // Report as soon as the backlog is down to the mark, not only when it is empty: the publisher can
        // queue more while the socket writes the rest.
        else if (!ending && buffered <= hwm) h.onDrain();
      },
      error(s, e) {
        // A failed TLS session, or an exception thrown by a handler (the client's onData included): the
        // connection cannot be trusted any more either way.
        failure ??= e;
        s.terminate();
      },
      close(_s, e) {
        if (closed) return;
        closed = true;
        clearTimeout(deadline);
        backlog.length = head = buffered = 0;
        if (connected) h.onClose(failure ?? e);
        else fail(failure ?? e ?? new Error("the connection closed during the TLS handshake"));
      },
      connectError(_s, e) {
        closed = true;
        clearTimeout(deadline);
        fail(e);
      },
    };

    const transport: Transport = {
      write(bytes) {
        if (closed || ending || !socket) return true; // nothing will be written any more; nothing to wait for either
        if (head === backlog.length) {
          const n = socket.write(bytes);
          if (n === bytes.byteLength || n < 0) return true;
          bytes = bytes.subarray(n);
        }
        backlog.push(bytes);
        buffered += bytes.byteLength;
        return buffered <= hwm;
      },
      get bufferedAmount() {
        return buffered;
      },
      end() {
        if (closed || ending) return;
        ending = true;
        // With a backlog, drain() ends the socket once it has written it.
        if (head === backlog.length) socket?.end();
      },
      destroy() {
        if (closed) return;
        backlog.length = head = buffered = 0;
        socket?.terminate();
      },
      pauseReading(paused) {
        if (paused) socket?.pause?.();
        else socket?.resume?.();
      },
    };

    const tls = o.tls ? tlsOptions(o) : undefined;
    const opened =
      o.socketPath !== undefined
        ? Bun.connect({ unix: o.socketPath, ...(tls && { tls }), socket: handler })
        : Bun.connect({ hostname: o.hostname, port: o.port, ...(tls && { tls }), socket: handler });
    // connectError has reported the failure already; this only keeps the rejection from being unhandled.
    opened.catch(fail);
  });
}

const EMPTY = new Uint8Array(0);

export const bunRuntime: Runtime = {
  connect: bunTransport,
  now: () => performance.now(),
  // Bun's setImmediate runs after the current turn and its I/O, like Node's (a few µs a hop); setTimeout(fn,
  // 0) is clamped to ≥ 1 ms.
  defer: (fn) => void setImmediate(fn),
  platform: `Bun ${Bun?.version ?? "(unknown version)"}`,
};

/**
 * Connects to RabbitMQ from Bun.
 * @example
 * import { connect } from "warren/bun";
 * const conn = await connect("amqp://guest:guest@127.0.0.1:5672/%2f?heartbeat=30");
 */
export function connect(url?: string | ConnectOptions, options?: ConnectOptions): Promise<Connection> {
  return connectWith(bunRuntime, url, options);
}

export * from "../client/index.ts";
