/**
 * One connect attempt's deadline, owned by the client for every runtime: connectionTimeout and the
 * application's `connect({ signal })` folded into one AbortSignal that the transport honours (it gives up its
 * TCP connect, TLS handshake or WebSocket upgrade at once), and a promise that rejects when it fires, for
 * racing the handshake.
 */
import { AbortError, ConnectTimeoutError } from "./errors.ts";

export class ConnectAttempt {
  readonly #controller = new AbortController();
  readonly #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #user: AbortSignal | undefined;
  readonly #onUserAbort: () => void;
  /** Rejects with the reason once the attempt is given up. */
  readonly failed: Promise<never>;

  /** `where` names the broker in the errors. Throws an AbortError at once when `user` is already aborted. */
  constructor(where: string, timeoutMs: number, user: AbortSignal | undefined) {
    if (user?.aborted) throw new AbortError("connect aborted before it started", { cause: user.reason });
    this.#user = user;
    this.#onUserAbort = () => this.abort(new AbortError(`connecting to ${where} was aborted`, { cause: user?.reason }));
    user?.addEventListener("abort", this.#onUserAbort, { once: true });
    this.#timer = timeoutMs > 0 ? setTimeout(() => this.abort(new ConnectTimeoutError(`Could not connect to ${where} within ${timeoutMs} ms`)), timeoutMs) : undefined;
    const signal = this.#controller.signal;
    this.failed = new Promise<never>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }));
    this.failed.catch(() => undefined);
  }

  /** What the transport is given: it aborts on the timeout, the application's abort, or `abort()`. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Gives up, so that a transport still connecting stops too. */
  abort(reason: unknown): void {
    if (!this.#controller.signal.aborted) this.#controller.abort(reason);
  }

  /** The attempt is over, either way: the timer and the listener go. */
  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#user?.removeEventListener("abort", this.#onUserAbort);
  }
}
