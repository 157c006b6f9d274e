/**
 * The Bun transport: TCP, TLS and unix sockets through Bun.connect, and `connect` bound to it.
 *
 * Thin, like the Node adapter: bytes read go to the client untouched, writes go out in order, Nagle is off.
 * Bun's socket API differs from Node's in two ways that matter here:
 *
 * - `socket.write(bytes)` does not buffer: it returns how many bytes the socket took, possibly fewer than
 *   given (0 when the kernel's buffer is full). The rest is kept, in order, by the WriteQueue shared with
 *   Deno (src/adapters/write-queue.ts) and written from the `drain` callback; `bufferedAmount` is that
 *   backlog, `write` returns false past writeHighWaterMark, and `onDrain` is reported when a drain brings
 *   the backlog to the mark or below.
 * - For TLS, Bun.connect resolves (and `open` runs) before the handshake; the transport is handed to the
 *   client only from the `handshake` callback, once the server's certificate was verified. Verification
 *   failures reach only that callback (the socket then just closes), so it also turns them into the
 *   TransportError the connect rejects with.
 * - No timer: the client's signal gives a connect attempt up (src/adapters/attempt.ts), terminating the
 *   socket being set up — or, since Bun.connect takes no signal, the socket as soon as it opens.
 *
 * Received chunks are handed over as they come (`binaryType: "uint8array"`): Bun allocates a new buffer for
 * every `data` callback (checked by test/runtimes/bun/transport_test.ts), so no copy is needed.
 *
 * Bun's types are not visible to tsc when it checks src alone (tsconfig.build.json), so the few Bun APIs
 * used are declared below; a type-level test checks them against @types/bun when those types are loaded.
 */
import { connectWith } from "../client/connect.ts";
import type { Connection } from "../client/connection.ts";
import { TransportError } from "../client/errors.ts";
import { type ConnectOptions, isIpAddress, type KeptOptions } from "../client/options.ts";
import type { Runtime, Transport, TransportHandlers } from "../client/transport.ts";
import { connectAttempt } from "./attempt.ts";
import { connectFailure, defer, describe, where } from "./common.ts";
import { WriteQueue } from "./write-queue.ts";

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

function tlsOptions(o: KeptOptions): BunTlsOptions {
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

/**
 * Opens a socket and wraps it as a Transport. `signal` (the client's connect deadline and the caller's
 * signal) gives the attempt up: see src/adapters/attempt.ts.
 */
export function bunTransport(o: KeptOptions, h: TransportHandlers, signal?: AbortSignal): Promise<Transport> {
  return connectAttempt<Transport, BunSocket>(signal, (s) => s.terminate(), (a) => {
    let socket: BunSocket | undefined;
    let queue: WriteQueue | undefined;
    let connected = false;
    let ending = false;
    let closed = false;
    let failure: unknown;

    const established = (s: BunSocket) => {
      connected = true;
      socket = s;
      queue = new WriteQueue(s, o.writeHighWaterMark, {
        onDrain: () => h.onDrain(),
        // With a backlog, end() leaves it to the queue to end the socket once it has written it.
        onIdle: () => {
          if (ending) s.end();
        },
        onError: (e) => {
          failure ??= e;
          s.terminate();
        },
      });
      a.resolve(transport);
    };

    const handler: BunSocketHandler = {
      binaryType: "uint8array",
      open(s) {
        // Bun.connect takes no signal: a socket that opens after an abort is closed here (track throws).
        try {
          a.track(s);
        } catch {
          return;
        }
        s.setNoDelay?.(true);
        // With a handshake callback, TLS sockets open before the handshake: wait for it.
        if (!o.tls) established(s);
      },
      handshake(s, success, authorizationError) {
        if (a.settled) return; // aborted meanwhile: the socket is being closed
        if (success) {
          established(s);
        } else {
          failure = authorizationError;
          a.reject(new TransportError(`Could not connect to ${where(o)}: TLS handshake failed: ${describe(authorizationError)}`, { cause: authorizationError }));
        }
      },
      data(_s, bytes) {
        if (!closed) h.onData(bytes);
      },
      drain() {
        if (!closed) queue?.drain();
      },
      error(s, e) {
        // A failed TLS session: the connection cannot be trusted any more.
        failure ??= e;
        s.terminate();
      },
      close(_s, e) {
        if (closed) return;
        closed = true;
        queue?.clear();
        // Bun calls no callback after close: onClose is the last handler call.
        if (connected) h.onClose(failure ?? e);
        else a.reject(connectFailure(o, failure ?? e ?? new Error("the connection closed during the TLS handshake")));
      },
      connectError(_s, e) {
        closed = true;
        a.reject(connectFailure(o, e));
      },
    };

    const transport: Transport = {
      write: (bytes) => (closed || ending || !queue ? true : queue.write(bytes)), // nothing will be written any more; nothing to wait for either
      get bufferedAmount() {
        return queue?.bufferedAmount ?? 0;
      },
      end() {
        if (closed || ending) return;
        ending = true;
        if (queue?.empty !== false) socket?.end();
      },
      destroy() {
        if (closed) return;
        queue?.clear();
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
    opened.catch((e: unknown) => a.reject(connectFailure(o, e)));
  });
}

export const bunRuntime: Runtime = {
  connect: bunTransport,
  now: () => performance.now(),
  defer,
  platform: `Bun ${Bun?.version ?? "(unknown version)"}`,
};

/**
 * Connects to RabbitMQ from Bun.
 * @example
 * import { connect } from "warren/bun";
 * const conn = await connect("amqp://guest:guest@127.0.0.1:5672/%2f?heartbeat=30");
 */
export function connect(url?: string | readonly string[] | ConnectOptions, options?: ConnectOptions): Promise<Connection> {
  return connectWith(bunRuntime, url, options);
}

export * from "../client/index.ts";
