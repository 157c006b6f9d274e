/**
 * The small interface between the client and a runtime's sockets. An adapter (src/adapters/*) implements it
 * in a few dozen lines: bytes in, bytes out, backpressure, close. No frame parsing happens in a transport.
 */
import type { KeptOptions } from "./options.ts";

/** What a transport is told: the connect options without the password (authentication is the machine's). */
export type TransportOptions = KeptOptions;

/**
 * What the client gives a transport to report to. None of them throws: the client catches what goes wrong
 * inside and turns it into one transport failure, the same on every runtime, so a transport needs no
 * try/catch around them. A transport calls them only after its factory resolved, `onClose` exactly once,
 * and none after `onClose`.
 */
export interface TransportHandlers {
  /** Bytes arrived. The transport hands them over: it must not reuse or modify them afterwards. */
  onData(bytes: Uint8Array): void;
  /**
   * The write buffer fell to the client's writeHighWaterMark: after `write` returned false, and also when a
   * write completes (a buffer over the client's mark may still be under the transport's own).
   */
  onDrain(): void;
  /** The transport closed; `error` when it failed rather than ended. Called once, and last. */
  onClose(error?: unknown): void;
}

export interface Transport {
  /**
   * Queues bytes for sending; the transport owns them from now on. Returns false when its buffer is above
   * the high-water mark (the client then waits for `onDrain` before publishing more).
   */
  write(bytes: Uint8Array): boolean;
  /** Bytes queued and not yet handed to the operating system. */
  readonly bufferedAmount: number;
  /** Flushes what is queued, then closes. */
  end(): void;
  /** Closes at once, dropping what is queued. */
  destroy(): void;
  /** Stops (true) or resumes (false) reading, for consumers that cannot keep up. */
  pauseReading?(paused: boolean): void;
}

/**
 * Opens a transport to the broker described by `options`. Rejects with a TransportError (refused,
 * unreachable, TLS failure), or a UsageError for options the runtime cannot honour.
 *
 * `signal` is the client's: it aborts at the one connect deadline (connectionTimeout), which the client
 * owns, or when the caller's `connect({ signal })` aborts. A transport keeps no connect timer of its own;
 * it gives the attempt up as soon as the signal fires:
 * - already aborted: reject with `signal.reason` at once, opening nothing;
 * - aborted mid-way (TCP connect, TLS handshake, WebSocket upgrade): close what was opened and reject with
 *   `signal.reason` at once, without waiting for the socket to report its close (the client turns the
 *   reason into the right error: ConnectTimeoutError, AbortError);
 * - once the promise has resolved the signal no longer matters: the client calls `destroy()` on a
 *   transport it no longer wants.
 * The adapters share these rules in src/adapters/attempt.ts.
 */
export type TransportFactory = (options: TransportOptions, handlers: TransportHandlers, signal: AbortSignal) => Promise<Transport>;

/** What a runtime supplies besides sockets. */
export interface Runtime {
  connect: TransportFactory;
  /** A monotonic clock in milliseconds. */
  now(): number;
  /** Runs `fn` once the current turn of the event loop is over (coalesces writes). */
  defer(fn: () => void): void;
  /** Client properties describing the runtime, e.g. { platform: "Node.js v20.20.2" }. */
  platform: string;
}
