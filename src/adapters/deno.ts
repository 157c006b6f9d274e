/**
 * The Deno transport: TCP (Deno.connect), TLS (Deno.startTls / Deno.connectTls) and unix sockets, and
 * `connect` bound to it.
 *
 * Thin, like the Node adapter: bytes read go to the client untouched, writes go out in order, Nagle is off.
 * Deno's sockets are promise-based, so two small loops stand in for Node's stream machinery:
 *
 * - The read loop hands each read to the client and never reuses a buffer it handed over (the machine
 *   keeps references to input chunks). A read that filled at least half of the buffer hands over the buffer
 *   itself and a new one is allocated; a smaller read is copied out to its exact size and the buffer is kept,
 *   so a 20-byte read does not pin 64 KiB for as long as the machine holds on to it.
 * - The write queue writes one chunk at a time; `conn.write` may write only part of a chunk, so the rest is
 *   written before the next chunk. `bufferedAmount` counts what is queued and not yet written; `write`
 *   returns false past writeHighWaterMark, and `onDrain` is reported whenever a chunk completes with the
 *   queue at or below the mark.
 *
 * What Deno cannot do per connection, and is refused with a UsageError rather than done half-way:
 * `tls.verify = false` (Deno.connectTls has no option to skip chain verification), an encrypted key
 * (`tls.passphrase`), TLS over a unix socket (Deno.startTls takes only TCP connections), and a client
 * certificate together with a `tls.servername` other than the host (only Deno.connectTls takes a client
 * certificate, and it checks the certificate against the host it dials).
 *
 * Deno's own types are not visible to tsc (which checks this file with Node's types), so the few Deno
 * APIs used are declared below; under `deno check` a type-level test verifies that Deno's real namespace
 * satisfies those declarations.
 */
import { connectWith, type Connection } from "../client/connection.ts";
import { TransportError, UsageError } from "../client/errors.ts";
import type { ConnectOptions, ResolvedConnectOptions, TlsOptions } from "../client/options.ts";
import type { Runtime, Transport, TransportHandlers } from "../client/transport.ts";

// ---------------------------------------------------------------------------------------------------------
// The subset of the Deno namespace this adapter uses.

interface DenoConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}
interface DenoTcpConn extends DenoConn {
  setNoDelay(noDelay?: boolean): void;
}
interface DenoTlsConn extends DenoConn {
  handshake(): Promise<unknown>;
}
interface DenoNet {
  connect(options: { hostname: string; port: number; transport?: "tcp"; signal?: AbortSignal }): Promise<DenoTcpConn>;
  connect(options: { transport: "unix"; path: string }): Promise<DenoConn>;
  connectTls(options: { hostname: string; port: number; caCerts?: string[]; cert?: string; key?: string }): Promise<DenoTlsConn>;
  startTls(conn: DenoTcpConn, options: { hostname: string; caCerts?: string[] }): Promise<DenoTlsConn>;
  readonly version: { readonly deno: string };
}

/** Deno's real namespace under `deno check`; the declaration above under tsc. */
type RealDeno = typeof globalThis extends { Deno: infer D } ? D : DenoNet;
type Fits<T extends DenoNet> = T;
/** Fails `deno check` if Deno's API no longer fits the declarations this file relies on. */
type _DenoFits = Fits<RealDeno>;

const Deno = (globalThis as unknown as { Deno: DenoNet }).Deno;

// ---------------------------------------------------------------------------------------------------------

/** Size of each read. Larger reads mean fewer promise round trips for big message bodies. */
const READ_SIZE = 64 * 1024;

const utf8 = new TextDecoder();
const pem = (v: string | Uint8Array): string => (typeof v === "string" ? v : utf8.decode(v));

function where(o: ResolvedConnectOptions): string {
  return o.socketPath !== undefined ? `unix:${o.socketPath}` : `${o.hostname}:${o.port}`;
}

function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = (e as { code?: unknown }).code;
  return `${typeof code === "string" ? code : e.name}: ${e.message}`;
}

/** Refuses the TLS settings Deno cannot honour, naming what to do instead. */
function checkTls(o: ResolvedConnectOptions, t: TlsOptions): void {
  const refuse = (what: string) => {
    throw new UsageError(`Cannot connect to ${where(o)} with Deno: ${what}`);
  };
  if (t.verify === false) {
    refuse(
      "tls.verify = false is not supported (Deno.connectTls always verifies the server's certificate). " +
        "Pass the broker's CA as tls.ca, and tls.servername if the certificate names another host; " +
        "or run Deno with --unsafely-ignore-certificate-errors and leave tls.verify unset",
    );
  }
  if (o.socketPath !== undefined) refuse("TLS over a unix socket is not supported (Deno.startTls takes only TCP connections)");
  if (t.passphrase !== undefined) refuse("an encrypted private key (tls.passphrase) is not supported; pass the key decrypted");
  if ((t.cert === undefined) !== (t.key === undefined)) refuse("tls.cert and tls.key must be given together");
  if (t.cert !== undefined && t.servername !== undefined && t.servername !== o.hostname) {
    refuse("a client certificate cannot be combined with a tls.servername other than the host (Deno.startTls takes no client certificate)");
  }
}

/**
 * One connection attempt. The client stops waiting after connectionTimeout, but cannot cancel a transport
 * that has not resolved yet: a TLS handshake with a peer that never answers would stay pending, and keep
 * Deno's event loop alive, for good. So the attempt gives up on its own at the same deadline: it aborts the
 * TCP connect and closes the socket being set up, which interrupts the handshake.
 */
interface Attempt {
  readonly signal: AbortSignal;
  /** Registers the socket being set up, to be closed if the attempt is given up. */
  track<C extends DenoConn>(conn: C): C;
}

async function openTls(o: ResolvedConnectOptions, a: Attempt): Promise<DenoTlsConn> {
  const t = o.tlsOptions;
  checkTls(o, t);
  const caCerts = t.ca === undefined ? undefined : (Array.isArray(t.ca) ? t.ca : [t.ca]).map(pem);
  let conn: DenoTlsConn;
  if (t.cert !== undefined && t.key !== undefined) {
    // Only connectTls takes a client certificate. Its TCP socket keeps Nagle on: TlsConn has no setNoDelay.
    conn = a.track(await Deno.connectTls({ hostname: o.hostname, port: o.port, ...(caCerts && { caCerts }), cert: pem(t.cert), key: pem(t.key) }));
  } else {
    // TCP first, then TLS on it: so Nagle can be turned off, and so the name checked (and sent as SNI) can
    // differ from the host dialled. An IP is checked against the certificate's IP addresses, without SNI.
    const tcp = a.track(await Deno.connect({ hostname: o.hostname, port: o.port, signal: a.signal }));
    tcp.setNoDelay(true);
    try {
      conn = a.track(await Deno.startTls(tcp, { hostname: t.servername ?? o.hostname, ...(caCerts && { caCerts }) }));
    } catch (e) {
      tcp.close();
      throw e;
    }
  }
  // Deno handshakes lazily, on the first read or write; do it now so a bad certificate fails the connect.
  try {
    await conn.handshake();
  } catch (e) {
    try {
      conn.close();
    } catch {
      // closed by the attempt's deadline
    }
    throw new TransportError(`Could not connect to ${where(o)}: TLS handshake failed: ${describe(e)}`, { cause: e });
  }
  return conn;
}

async function openConn(o: ResolvedConnectOptions, a: Attempt): Promise<DenoConn> {
  if (o.tls) return openTls(o, a);
  if (o.socketPath !== undefined) return Deno.connect({ transport: "unix", path: o.socketPath });
  const conn = await Deno.connect({ hostname: o.hostname, port: o.port, signal: a.signal });
  // The client already coalesces a turn's frames into one write; Nagle would only delay them.
  conn.setNoDelay(true);
  return conn;
}

/** Opens a socket, giving up after connectionTimeout (see Attempt). */
async function openWithDeadline(o: ResolvedConnectOptions): Promise<DenoConn> {
  const abort = new AbortController();
  let current: DenoConn | undefined;
  const timer =
    o.connectionTimeout > 0
      ? setTimeout(() => {
          abort.abort();
          try {
            current?.close();
          } catch {
            // already closed
          }
        }, o.connectionTimeout)
      : undefined;
  const attempt: Attempt = { signal: abort.signal, track: (c) => (current = c) };
  try {
    const conn = await openConn(o, attempt);
    if (abort.signal.aborted) {
      try {
        conn.close();
      } catch {
        // closed by the deadline already
      }
      throw new TransportError(`Could not connect to ${where(o)} within ${o.connectionTimeout} ms`);
    }
    return conn;
  } finally {
    clearTimeout(timer);
  }
}

/** Opens a connection and wraps it as a Transport. */
export async function denoTransport(o: ResolvedConnectOptions, h: TransportHandlers): Promise<Transport> {
  let conn: DenoConn;
  try {
    conn = await openWithDeadline(o);
  } catch (e) {
    if (e instanceof TransportError || e instanceof UsageError) throw e;
    throw new TransportError(`Could not connect to ${where(o)}: ${describe(e)}`, { cause: e });
  }

  const hwm = o.writeHighWaterMark;
  const queue: Uint8Array[] = [];
  let head = 0;
  let buffered = 0;
  let writing = false;
  let ending = false;
  /** Set once the socket is being closed on purpose: a read interrupted by that is not a failure. */
  let closing = false;
  let failure: unknown;
  let paused = false;
  let resume: (() => void) | undefined;

  const close = () => {
    if (closing) return;
    closing = true;
    queue.length = head = buffered = 0;
    resume?.();
    try {
      conn.close();
    } catch {
      // already closed
    }
  };

  const pump = async () => {
    writing = true;
    try {
      while (head < queue.length && !closing) {
        const chunk = queue[head]!;
        let written = 0;
        while (written < chunk.byteLength) {
          // A partial write is normal under load: write the rest before anything queued after it.
          const n = await conn.write(written === 0 ? chunk : chunk.subarray(written));
          if (closing) return;
          written += n;
          buffered -= n;
        }
        queue[head++] = EMPTY;
        if (head === queue.length) queue.length = head = 0;
        if (buffered <= hwm) h.onDrain();
      }
    } catch (e) {
      if (!closing) {
        failure ??= e;
        close();
      }
      return;
    } finally {
      writing = false;
    }
    if (ending) close();
  };

  const readLoop = async () => {
    let buf = new Uint8Array(READ_SIZE);
    try {
      while (!closing) {
        if (paused) {
          await new Promise<void>((r) => (resume = r));
          resume = undefined;
          continue;
        }
        const n = await conn.read(buf);
        if (n === null) break;
        if (n === 0 || closing) continue;
        let chunk: Uint8Array;
        if (n >= READ_SIZE / 2) {
          chunk = buf.subarray(0, n);
          buf = new Uint8Array(READ_SIZE);
        } else {
          chunk = buf.slice(0, n);
        }
        h.onData(chunk);
      }
    } catch (e) {
      // Closing the socket interrupts the pending read; only an unexpected error is a failure.
      if (!closing) failure ??= e;
    }
    close();
    h.onClose(failure);
  };

  const transport: Transport = {
    write(bytes) {
      if (closing || ending) return true; // nothing will be written any more; nothing to wait for either
      if (bytes.byteLength === 0) return buffered <= hwm;
      queue.push(bytes);
      buffered += bytes.byteLength;
      if (!writing) void pump();
      return buffered <= hwm;
    },
    get bufferedAmount() {
      return buffered;
    },
    end() {
      if (closing || ending) return;
      ending = true;
      if (!writing) close();
    },
    destroy: close,
    pauseReading(p) {
      paused = p;
      if (!p) resume?.();
    },
  };
  void readLoop();
  return transport;
}

const EMPTY = new Uint8Array(0);

type ImmediateFn = (fn: () => void) => unknown;
const setImmediateFn = (globalThis as { setImmediate?: ImmediateFn }).setImmediate;

export const denoRuntime: Runtime = {
  connect: denoTransport,
  now: () => performance.now(),
  // Deno 2 provides setImmediate: it runs after the current turn and its I/O, like Node's, at about 20 µs
  // a hop. setTimeout(fn, 0) would coalesce the same writes but is clamped to ≥ 1 ms (4 ms when nested),
  // which makes every request/reply round trip slower; it is only the fallback.
  defer: setImmediateFn ? (fn) => void setImmediateFn(fn) : (fn) => void setTimeout(fn, 0),
  platform: `Deno ${Deno?.version.deno ?? "(unknown version)"}`,
};

/**
 * Connects to RabbitMQ from Deno (needs --allow-net; --allow-read too for a unix socket).
 * @example
 * import { connect } from "./src/adapters/deno.ts";
 * const conn = await connect("amqp://guest:guest@127.0.0.1:5672/%2f?heartbeat=30");
 */
export function connect(url?: string | ConnectOptions, options?: ConnectOptions): Promise<Connection> {
  return connectWith(denoRuntime, url, options);
}

export * from "../client/index.ts";
