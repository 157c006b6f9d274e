/**
 * One connect attempt under the client's AbortSignal: the part of every TransportFactory that is not about
 * a particular runtime's sockets (see TransportFactory in src/client/transport.ts).
 *
 * The client owns the one connect deadline (connectionTimeout) and the caller's `connect({ signal })`, and
 * passes a signal that aborts on either; a transport keeps no timer of its own. The rules, kept here once:
 *
 * - already aborted: the attempt rejects with `signal.reason` and opens nothing (`open` is not called);
 * - aborted while the attempt runs (TCP connect, TLS handshake, WebSocket upgrade): it rejects at once with
 *   `signal.reason` and closes the socket being set up, which interrupts whatever step was waiting on it; a
 *   socket that only arrives afterwards (a runtime connect call that takes no signal) is closed as it
 *   arrives;
 * - a failed attempt leaves nothing open: the tracked socket is closed whatever the reason;
 * - once the attempt has resolved or rejected, the signal no longer matters: the client destroys a
 *   transport it no longer wants.
 *
 * Runtime-neutral: standard APIs only (AbortSignal, Promise).
 */

/** What the code opening a transport gets to report with. */
export interface Attempt<T, S> {
  /** The client's signal, or one that never aborts when none was given. */
  readonly signal: AbortSignal;
  /** True once the attempt resolved or rejected (an abort rejects it). */
  readonly settled: boolean;
  /** The transport is ready: the attempt resolves with it, and the signal stops mattering. */
  resolve(transport: T): void;
  /** The attempt failed: it rejects, and the tracked socket is closed. Later calls are ignored. */
  reject(error: unknown): void;
  /**
   * Registers the socket being set up (each step's, replacing the previous one), to be closed if the
   * attempt is aborted. On an attempt already over it closes `socket` and throws (`signal.reason` when that
   * is why), so that code resuming after an `await` stops there.
   */
  track<U extends S>(socket: U): U;
}

/**
 * Runs `open` as one connect attempt under `signal` (see the file comment). `open` settles the attempt
 * through `resolve`/`reject`; an exception or a rejected promise from it rejects the attempt. `close` closes
 * a socket `open` tracked; an exception from it is ignored (the socket was closed already).
 * @example
 * return connectAttempt(signal, (s: net.Socket) => s.destroy(), (a) => {
 *   const socket = a.track(net.connect(port, host));
 *   socket.once("connect", () => a.resolve(wrap(socket)));
 *   socket.once("error", (e) => a.reject(e));
 * });
 */
export function connectAttempt<T, S>(
  signal: AbortSignal | undefined,
  close: (socket: S) => void,
  open: (attempt: Attempt<T, S>) => void | Promise<void>,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    // A missing signal (a caller that passes none) never aborts.
    const s = signal ?? new AbortController().signal;
    if (s.aborted) {
      reject(s.reason);
      return;
    }
    let settled = false;
    let current: S | undefined;
    const closeQuietly = (socket: S) => {
      try {
        close(socket);
      } catch {
        // closed already
      }
    };
    const settle = () => {
      settled = true;
      s.removeEventListener("abort", onAbort);
    };
    const onAbort = () => attempt.reject(s.reason);
    const attempt: Attempt<T, S> = {
      signal: s,
      get settled() {
        return settled;
      },
      resolve(transport) {
        if (settled) return;
        settle();
        current = undefined;
        resolve(transport);
      },
      reject(error) {
        if (settled) return;
        settle();
        reject(error);
        // Rejected first, closed second: whatever the close makes the socket report comes too late to count.
        const socket = current;
        current = undefined;
        if (socket !== undefined) closeQuietly(socket);
      },
      track<U extends S>(socket: U): U {
        if (settled) {
          closeQuietly(socket);
          throw s.aborted ? s.reason : new Error("the connect attempt is over");
        }
        current = socket;
        return socket;
      },
    };
    s.addEventListener("abort", onAbort, { once: true });
    try {
      const running = open(attempt);
      if (running !== undefined) running.catch((e: unknown) => attempt.reject(e));
    } catch (e) {
      attempt.reject(e);
    }
  });
}
