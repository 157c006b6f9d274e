/**
 * A Runtime (src/client/transport.ts) whose transport is an in-process FakePeer: no sockets, no real
 * network, and every byte either side sends visible to the test.
 *
 * - Client writes reach the peer synchronously; the peer's auto-replies come back in a microtask.
 * - A peer's `send`/`batch` is one `onData` call, made synchronously from the test. An exception thrown out
 *   of `onData`/`onDrain`/`onClose` is caught here and reported with `reportEscape` (a process-level failure
 *   under `useProcessGuard`), then the transport carries on as Node's socket would after an uncaught
 *   exception handler ran.
 * - `end()` and `destroy()` close the transport in a microtask and then call `onClose` once, like a socket.
 * - The factory takes the connect `signal` (third argument): aborted before or while connecting, the
 *   connect rejects with `signal.reason`; once connected the signal no longer matters (the client destroys a
 *   transport it gave up on), as src/adapters/attempt.ts specifies for every adapter.
 * - `pauseReading: false` builds a transport without `pauseReading`, like WebSocket's.
 *
 * @example
 * const { conn, peer } = await openConnection();
 * const ch = await conn.openChannel();
 * const declared = ch.queueDeclare("q");
 * await peer.expectMethod("queue.declare");
 * peer.send(ch.id, method("queue.declare-ok", { queue: "q" }));
 * await declared;
 */
import { connectWith } from "../../src/client/connect.ts";
import type { Connection } from "../../src/client/connection.ts";
import type { ConnectOptions, KeptOptions } from "../../src/client/options.ts";
import type { Runtime, Transport, TransportHandlers } from "../../src/client/transport.ts";
import { FakePeer, type PeerScript } from "./fake-peer.ts";
import { reportEscape } from "./process-guard.ts";

/** Connect options including those the client is gaining (signal, logger); cast where the type lags. */
export type HarnessConnectOptions = ConnectOptions & {
  signal?: AbortSignal;
  logger?: { warn(message: string, error?: unknown): void };
};

export interface FakeRuntimeOptions {
  /** "open" (default): connect at once; "hang": the connect never completes (until aborted). */
  connect?: "open" | "hang";
  /** false: a transport without pauseReading (like WebSocket). Default true. */
  pauseReading?: boolean;
  /**
   * "per-connection": every transport gets a fresh FakePeer (same script) — a broker that a recovering
   * client reconnects to; `runtime.peer` is the latest. Default "one": every transport shares the first.
   */
  peers?: "one" | "per-connection";
}

export class FakeTransport implements Transport {
  readonly #peer: FakePeer;
  readonly #handlers: TransportHandlers;
  /** Bytes the client wrote, in order. */
  readonly writes: Uint8Array[] = [];
  ended = false;
  destroyed = false;
  /** True once `onClose` was called. */
  closed = false;
  /** The last value passed to pauseReading. */
  paused = false;
  readonly pauseReading: ((paused: boolean) => void) | undefined;

  constructor(peer: FakePeer, handlers: TransportHandlers, canPause: boolean) {
    this.#peer = peer;
    this.#handlers = handlers;
    this.pauseReading = canPause ? (paused) => void (this.paused = paused) : undefined;
    peer.attach({
      deliver: (bytes) => {
        if (this.closed) return;
        this.#call("onData", () => this.#handlers.onData(bytes));
      },
      close: (error) => this.#close(error),
    });
  }

  get bufferedAmount(): number {
    return 0;
  }

  write(bytes: Uint8Array): boolean {
    if (this.ended || this.destroyed) return true;
    this.writes.push(bytes);
    // The transport owns the bytes now; the peer decodes a copy, as a kernel would have.
    this.#peer.receive(bytes.slice());
    return true;
  }

  end(): void {
    if (this.ended || this.destroyed) return;
    this.ended = true;
    queueMicrotask(() => this.#close(undefined));
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    queueMicrotask(() => this.#close(undefined));
  }

  #close(error: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.#call("onClose", () => this.#handlers.onClose(error));
  }

  #call(what: string, f: () => void): void {
    try {
      f();
    } catch (e) {
      reportEscape(`exception thrown out of the transport's ${what}`, e);
    }
  }
}

export class FakeRuntime implements Runtime {
  /** The peers made, in order (one unless `peers: "per-connection"`). */
  readonly peers: FakePeer[];
  readonly #script: PeerScript;
  readonly platform = "warren test harness";
  /** Every options object the client passed to connect. */
  readonly connectCalls: KeptOptions[] = [];
  /** The transports made, in order. */
  readonly transports: FakeTransport[] = [];
  /** Signals passed to connect (undefined where the client passed none). */
  readonly signals: (AbortSignal | undefined)[] = [];
  readonly #options: FakeRuntimeOptions;

  constructor(script: PeerScript = {}, options: FakeRuntimeOptions = {}) {
    this.peers = [new FakePeer(script)];
    this.#script = script;
    this.#options = options;
  }

  /** The latest peer: the one the latest transport talks to. */
  get peer(): FakePeer {
    return this.peers[this.peers.length - 1]!;
  }

  /** The latest transport. */
  get transport(): FakeTransport | undefined {
    return this.transports[this.transports.length - 1];
  }

  now = (): number => performance.now();

  defer = (fn: () => void): void => {
    setImmediate(fn);
  };

  connect = (options: KeptOptions, handlers: TransportHandlers, signal?: AbortSignal): Promise<Transport> => {
    this.connectCalls.push(options);
    this.signals.push(signal);
    return new Promise<Transport>((resolve, reject) => {
      // The signal matters until the attempt settles; after that the client destroys what it does not want.
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => reject(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      if (this.#options.connect === "hang") return;
      queueMicrotask(() => {
        signal?.removeEventListener("abort", onAbort);
        if (signal?.aborted) return reject(signal.reason);
        if (this.#options.peers === "per-connection" && this.peer.attached) this.peers.push(new FakePeer(this.#script));
        const transport = new FakeTransport(this.peer, handlers, this.#options.pauseReading !== false);
        this.transports.push(transport);
        resolve(transport);
      });
    });
  };
}

/** A FakeRuntime and the client connected over it (the handshake answered by the peer). */
export async function openConnection(
  options: HarnessConnectOptions = {},
  script: PeerScript = {},
  runtimeOptions: FakeRuntimeOptions = {},
): Promise<{ runtime: FakeRuntime; peer: FakePeer; conn: Connection }> {
  const runtime = new FakeRuntime(script, runtimeOptions);
  const conn = await connectWith(runtime, { connectionTimeout: 2000, recovery: false, ...options } as ConnectOptions);
  return { runtime, peer: runtime.peer, conn };
}

/** Starts a connect over a new FakeRuntime without awaiting it (for tests of the connect itself). */
export function startConnect(
  options: HarnessConnectOptions = {},
  script: PeerScript = {},
  runtimeOptions: FakeRuntimeOptions = {},
): { runtime: FakeRuntime; peer: FakePeer; connecting: Promise<Connection> } {
  const runtime = new FakeRuntime(script, runtimeOptions);
  const connecting = connectWith(runtime, { connectionTimeout: 2000, recovery: false, ...options } as ConnectOptions);
  connecting.catch(() => undefined);
  return { runtime, peer: runtime.peer, connecting };
}

/** Lets queued microtasks and deferred flushes run (a few turns of the event loop). */
export async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** The error `p` rejects with; fails if it resolves or stays pending past `ms`. */
export async function rejectionOf(p: Promise<unknown>, ms = 1000, what = "the operation"): Promise<Error & { code?: string; replyCode?: number }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), ms)));
  try {
    const r = await Promise.race([p.then(() => "resolved" as const, (e: unknown) => ({ error: e })), timeout]);
    if (r === "timeout") throw new Error(`${what} did not settle within ${ms} ms`);
    if (r === "resolved") throw new Error(`expected ${what} to reject, it resolved`);
    return r.error as Error & { code?: string; replyCode?: number };
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves with `p`'s value; fails if it rejects or stays pending past `ms`. */
export async function settledWithin<T>(p: Promise<T>, ms = 1000, what = "the operation"): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
