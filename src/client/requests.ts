/**
 * The requests a connection is waiting on: one promise per machine request id, settled by the machine's
 * `reply` or `requestFailed` event — or by the connection closing, for whatever is still left.
 *
 * An AbortSignal stops the wait, not the request (it is on the wire already): the reply is still shown to the
 * request's `onReply`, so the caller can undo what the broker did anyway (cancel a consumer nobody holds,
 * give back a message nobody will read).
 */
import type { ReplyEvent } from "../machine/events.ts";
import { AbortError } from "./errors.ts";

interface Waiter {
  resolve(e: ReplyEvent): void;
  reject(e: Error): void;
  /** False once the application stopped waiting: a failure then reaches nobody. */
  readonly observed: boolean;
}

const IGNORE = () => undefined;

export class PendingRequests {
  readonly #waiters = new Map<number, Waiter>();

  /**
   * The reply to `requestId`. `onReply` runs synchronously when the reply is dispatched — before deliveries
   * that arrived in the same read (a consumer must be registered before its first basic.deliver) — and also
   * when the wait was aborted.
   */
  wait(requestId: number, signal: AbortSignal | undefined, onReply?: (e: ReplyEvent) => void): Promise<ReplyEvent> {
    return new Promise<ReplyEvent>((resolve, reject) => {
      if (!signal) {
        this.#waiters.set(requestId, { resolve: onReply ? (e) => (onReply(e), resolve(e)) : resolve, reject, observed: true });
        return;
      }
      const onAbort = () => {
        if (!this.#waiters.delete(requestId)) return;
        if (onReply) this.#waiters.set(requestId, { resolve: onReply, reject: IGNORE, observed: false });
        reject(new AbortError("operation aborted", { cause: signal.reason }));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiters.set(requestId, {
        resolve: (e) => {
          signal.removeEventListener("abort", onAbort);
          onReply?.(e);
          resolve(e);
        },
        reject: (e) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        },
        observed: true,
      });
      // An already-aborted signal never fires "abort".
      if (signal.aborted) onAbort();
    });
  }

  /** The machine answered request `e.requestId`. */
  resolve(e: ReplyEvent): void {
    const w = this.#waiters.get(e.requestId);
    if (!w) return;
    this.#waiters.delete(e.requestId);
    w.resolve(e);
  }

  /** Request `requestId` failed; returns whether the application was still waiting for it. */
  reject(requestId: number, error: Error): boolean {
    const w = this.#waiters.get(requestId);
    if (!w) return false;
    this.#waiters.delete(requestId);
    w.reject(error);
    return w.observed;
  }

  /** The connection is gone: every request still waiting fails. Returns whether anyone was waiting. */
  rejectAll(error: Error): boolean {
    let observed = false;
    for (const [id, w] of this.#waiters) {
      this.#waiters.delete(id);
      if (w.observed) observed = true;
      w.reject(error);
    }
    return observed;
  }
}
