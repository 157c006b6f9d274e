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
 * - Writes go through the WriteQueue shared with Bun (src/adapters/write-queue.ts): one `conn.write` at a
 *   time, the rest of a partial write before the next chunk, `write` false past writeHighWaterMark and
 *   `onDrain` whenever a write completes with the queue at or below the mark.
 *
 * No timer: the client's signal gives a connect attempt up (src/adapters/attempt.ts). Closing the socket
 * being set up interrupts a TLS handshake the peer never answers, so nothing keeps Deno running; but Deno
 * itself then keeps the TCP socket open until the peer answers or hangs up (a TlsConn closed mid-handshake
 * is shut down by a background task that first waits for the handshake, with no timeout) — no Deno API
 * reaches the TCP socket once Deno.startTls has taken it.
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
import { connectWith } from "../client/connect.ts";
import type { Connection } from "../client/connection.ts";
import { TransportError, UsageError } from "../client/errors.ts";
import type { ConnectOptions, KeptOptions, TlsOptions } from "../client/options.ts";
import type { Runtime, Transport, TransportHandlers } from "../client/transport.ts";
import { type Attempt, connectAttempt } from "./attempt.ts";
import { connectFailure, defer, describe, where } from "./common.ts";
import { WriteQueue } from "./write-queue.ts";

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

/** Refuses the TLS settings Deno cannot honour, naming what to do instead. */
function checkTls(o: KeptOptions, t: TlsOptions): void {
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

/** The connect attempt (src/adapters/attempt.ts) as the socket-opening steps see it. */
type DenoAttempt = Attempt<Transport, DenoConn>;

async function openTls(o: KeptOptions, a: DenoAttempt): Promise<DenoConn> {
  const t = o.tlsOptions;
  checkTls(o, t);
  const caCerts = t.ca === undefined ? undefined : (Array.isArray(t.ca) ? t.ca : [t.ca]).map(pem);
  let conn: DenoTlsConn;
  if (t.cert !== undefined && t.key !== undefined) {
    // Only connectTls takes a client certificate (and no signal: track closes it if it arrives too late).
    // Its TCP socket keeps Nagle on: TlsConn has no setNoDelay.
    conn = a.track(await Deno.connectTls({ hostname: o.hostname, port: o.port, ...(caCerts && { caCerts }), cert: pem(t.cert), key: pem(t.key) }));
  } else {
    // TCP first, then TLS on it: so Nagle can be turned off, and so the name checked (and sent as SNI) can
    // differ from the host dialled. An IP is checked against the certificate's IP addresses, without SNI.
    const tcp = a.track(await Deno.connect({ hostname: o.hostname, port: o.port, signal: a.signal }));
    tcp.setNoDelay(true);
    conn = a.track(await Deno.startTls(tcp, { hostname: t.servername ?? o.hostname, ...(caCerts && { caCerts }) }));
  }
  // Deno handshakes lazily, on the first read or write; do it now so a bad certificate fails the connect.
  // An abort closes conn, which ends a handshake the peer never answers.
  try {
    await conn.handshake();
  } catch (e) {
    throw new TransportError(`Could not connect to ${where(o)}: TLS handshake failed: ${describe(e)}`, { cause: e });
  }
  return conn;
}

async function openConn(o: KeptOptions, a: DenoAttempt): Promise<DenoConn> {
  if (o.tls) return openTls(o, a);
  if (o.socketPath !== undefined) return a.track(await Deno.connect({ transport: "unix", path: o.socketPath }));
  const conn = a.track(await Deno.connect({ hostname: o.hostname, port: o.port, signal: a.signal }));
  // The client already coalesces a turn's frames into one write; Nagle would only delay them.
  conn.setNoDelay(true);
  return conn;
}

/**
 * Opens a connection and wraps it as a Transport. `signal` (the client's connect deadline and the caller's
 * signal) gives the attempt up: see src/adapters/attempt.ts.
 */
export function denoTransport(o: KeptOptions, h: TransportHandlers, signal?: AbortSignal): Promise<Transport> {
  return connectAttempt<Transport, DenoConn>(signal, (c) => c.close(), async (a) => {
    let conn: DenoConn;
    try {
      conn = await openConn(o, a);
    } catch (e) {
      a.reject(connectFailure(o, e));
      return;
    }
    // Nothing awaited from here on: the attempt cannot be aborted between this point and resolve().
    a.resolve(wrap(conn, o.writeHighWaterMark, h));
  });
}

/** The Transport over an open connection: the write queue, the read loop, and closing. */
function wrap(conn: DenoConn, hwm: number, h: TransportHandlers): Transport {
  let ending = false;
  /** Set once the socket is being closed on purpose: a read interrupted by that is not a failure. */
  let closing = false;
  let failure: unknown;
  let paused = false;
  let resume: (() => void) | undefined;

  const close = () => {
    if (closing) return;
    closing = true;
    queue.clear();
    resume?.();
    try {
      conn.close();
    } catch {
      // already closed
    }
  };

  const queue = new WriteQueue(conn, hwm, {
    onDrain: () => h.onDrain(),
    onIdle: () => {
      if (ending) close();
    },
    onError: (e) => {
      failure ??= e;
      close();
    },
  });

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
    // The read loop is the only caller of onData and ends here: onClose is the last handler call.
    h.onClose(failure);
  };

  const transport: Transport = {
    write: (bytes) => (closing || ending ? true : queue.write(bytes)),
    get bufferedAmount() {
      return queue.bufferedAmount;
    },
    end() {
      if (closing || ending) return;
      ending = true;
      if (queue.empty) close();
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

export const denoRuntime: Runtime = {
  connect: denoTransport,
  now: () => performance.now(),
  defer,
  platform: `Deno ${Deno?.version.deno ?? "(unknown version)"}`,
};

/**
 * Connects to RabbitMQ from Deno (needs --allow-net; --allow-read too for a unix socket).
 * @example
 * import { connect } from "./src/adapters/deno.ts";
 * const conn = await connect("amqp://guest:guest@127.0.0.1:5672/%2f?heartbeat=30");
 */
export function connect(url?: string | readonly string[] | ConnectOptions, options?: ConnectOptions): Promise<Connection> {
  return connectWith(denoRuntime, url, options);
}

export * from "../client/index.ts";
