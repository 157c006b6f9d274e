/**
 * The small interface between the client and a runtime's sockets. An adapter (src/adapters/*) implements it
 * in a few dozen lines: bytes in, bytes out, backpressure, close. No frame parsing happens in a transport.
 */
import type { ResolvedConnectOptions } from "./options.ts";

/** What the client gives a transport to report to. */
export interface TransportHandlers {
  /** Bytes arrived. The transport hands them over: it must not reuse or modify them afterwards. */
  onData(bytes: Uint8Array): void;
  /**
   * The write buffer fell to the client's writeHighWaterMark: after `write` returned false, and also when a
   * write completes (a buffer over the client's mark may still be under the transport's own).
   */
  onDrain(): void;
  /** The transport closed; `error` when it failed rather than ended. Called once. */
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
 * unreachable, TLS failure) — the client adds the connect timeout around it.
 */
export type TransportFactory = (options: ResolvedConnectOptions, handlers: TransportHandlers) => Promise<Transport>;

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
