/**
 * The small helpers every adapter shares: how an address and a socket error are named in a message, the
 * one wrapping of a failed connect into a TransportError, and the `defer` of Runtime.
 *
 * Runtime-neutral: standard APIs only, so that the WebSocket adapter (browsers) can use it as well as the
 * Node, Deno and Bun ones. Like every adapter file it may import from src/client; src/client imports nothing
 * from here.
 */
import { describeError, TransportError, UsageError } from "../client/errors.ts";
import type { KeptOptions } from "../client/options.ts";

/**
 * The address a connection dials, for error messages.
 * @example where(resolveConnectOptions("amqp://localhost:5673")); // "localhost:5673"
 */
export function where(o: KeptOptions): string {
  return o.socketPath !== undefined ? `unix:${o.socketPath}` : `${o.hostname}:${o.port}`;
}

/** A socket error as one line (see describeError). */
export const describe = describeError;

/**
 * What a failed connect rejects with: a TransportError naming the address and the cause. An error that is
 * already a TransportError, or a UsageError (options this runtime cannot honour), is passed on as it is.
 * @example connectFailure(o, e); // TransportError("Could not connect to 127.0.0.1:1: ECONNREFUSED: Connection refused")
 */
export function connectFailure(o: KeptOptions, e: unknown): Error {
  if (e instanceof TransportError || e instanceof UsageError) return e;
  return new TransportError(`Could not connect to ${where(o)}: ${describe(e)}`, { cause: e });
}

/**
 * Runs `fn` after the current task, without the ≥ 1–4 ms clamp runtimes put on `setTimeout(fn, 0)`.
 * `setImmediate` where it exists (Node, Deno 2, Bun: it runs after the current turn and its I/O, a few µs a
 * hop); elsewhere (browsers) a MessageChannel, whose messages are tasks of their own. Not `queueMicrotask`:
 * that would run before the awaiting code of the same turn has queued its publishes, and the point of
 * deferring is to coalesce a turn's frames into one write.
 * @example defer(() => console.log("after this turn"));
 */
export const defer: (fn: () => void) => void = (() => {
  const g = globalThis as { setImmediate?: (fn: () => void) => unknown };
  if (typeof g.setImmediate === "function") {
    const setImmediate = g.setImmediate;
    return (fn: () => void) => void setImmediate(fn);
  }
  if (typeof MessageChannel === "function") {
    let queue: (() => void)[] = [];
    let channel: MessageChannel | undefined;
    const run = () => {
      const fns = queue;
      queue = [];
      for (const fn of fns) fn();
    };
    return (fn: () => void) => {
      if (channel === undefined) {
        channel = new MessageChannel();
        channel.port1.onmessage = run;
      }
      queue.push(fn);
      if (queue.length === 1) channel.port2.postMessage(null);
    };
  }
  return (fn: () => void) => void setTimeout(fn, 0);
})();
