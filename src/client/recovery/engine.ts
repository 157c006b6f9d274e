/**
 * Automatic recovery's control loop: after a connection loss nobody asked for, wait (backoff with jitter,
 * first retry at once), connect again, replay what the application set up, and tell whoever waits.
 *
 * The loop knows nothing of AMQP: the connection gives it `connectAgain` (a new machine and transport up to
 * the end of the handshake) and `replay` (channels, topology, consumers). One round runs at a time; a loss
 * during a round (a reconnect attempt that fails, or the new connection dropping while it replays) starts
 * the next attempt of the same round. Every wait is abortable: `stop()` (the application's close) ends it.
 *
 * Publishes and requests made while recovering wait in `whenRecovered(signal)`, bounded by the publish
 * timeout and the caller's signal, and by how many may wait at once.
 */
import { NotConnectedError } from "../errors.ts";
import { nextDelay, type ReconnectPolicy, sleep } from "./backoff.ts";

export type RecoveryState = "open" | "recovering" | "closed";

export interface RecoveryOptions {
  /** How long a publish or request made while disconnected waits for the connection, in ms. Default 30000. */
  readonly waitTimeout: number;
  /** How many may wait at once; past it they fail at once with NotConnectedError. Default 10000. */
  readonly maxWaiting: number;
  readonly reconnect: ReconnectPolicy;
  /** What becomes of confirm-mode publishes whose outcome is lost with a connection. */
  readonly unconfirmed: "reject" | "resend";
  /** Whether the first connect retries too (with the same policy) when no host answers. */
  readonly retryFirstConnect: boolean;
}

export interface ReconnectingInfo {
  /** 1 for the first retry. */
  readonly attempt: number;
  /** How long warren waits before this attempt, in ms. */
  readonly delay: number;
  /** Why the previous attempt (or the connection) failed. */
  readonly cause: unknown;
}

export interface RecoveryHost {
  /** Opens a new connection to the broker (transport and handshake); rejects when that fails. */
  connectAgain(signal: AbortSignal): Promise<void>;
  /** Replays channels, topology and consumers on the new connection; rejects when the connection drops meanwhile. */
  replay(): Promise<void>;
  /** Whether an error from `connectAgain` means retrying is pointless (bad credentials, unknown vhost). */
  isFatal(error: unknown): boolean;
  reconnecting(info: ReconnectingInfo): void;
  recovered(): void;
  /** The policy gave up (attempts or time exhausted, or a fatal error): the connection closes for good. */
  gaveUp(error: unknown): void;
  now(): number;
}

interface Waiter {
  resolve(): void;
  reject(e: Error): void;
}

export class Recovery {
  readonly #host: RecoveryHost;
  readonly #options: RecoveryOptions;
  #state: RecoveryState = "open";
  /** Aborts the current round's sleep or connect attempt. */
  #abort: AbortController | undefined;
  /** Bumped by every loss: a round whose number is stale stops. */
  #round = 0;
  #lastCause: unknown;
  readonly #waiters = new Set<Waiter>();

  constructor(host: RecoveryHost, options: RecoveryOptions) {
    this.#host = host;
    this.#options = options;
  }

  get state(): RecoveryState {
    return this.#state;
  }

  /** The connection was lost (or lost again while recovering): recover. */
  lost(cause: unknown): void {
    if (this.#state === "closed") return;
    this.#lastCause = cause;
    if (this.#state === "recovering") {
      // A loss during the replay: the running round notices (its replay rejects) and tries again.
      return;
    }
    this.#state = "recovering";
    const round = ++this.#round;
    this.#run(round).catch((e: unknown) => this.#giveUp(round, e)); // #run handles its own failures; this is a last resort
  }

  /** The application closed the connection: stop recovering; whoever waits fails. */
  stop(error: Error): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#round++;
    this.#abort?.abort(error);
    // What waits was never sent: say so, whatever stopped the recovery.
    const notSent = error instanceof NotConnectedError ? error : new NotConnectedError(`not sent: ${error.message}`, { cause: error });
    for (const w of [...this.#waiters]) w.reject(notSent);
    this.#waiters.clear();
  }

  /** Resolves once the connection is open again (at once when it is); rejects with NotConnectedError. */
  whenRecovered(signal: AbortSignal | undefined, what: string): Promise<void> {
    if (this.#state === "open") return Promise.resolve();
    if (this.#state === "closed") return Promise.reject(new NotConnectedError(`${what} not sent: the connection is closed`));
    if (this.#waiters.size >= this.#options.maxWaiting) {
      return Promise.reject(new NotConnectedError(`${what} not sent: ${this.#options.maxWaiting} operations are already waiting for the connection to recover`));
    }
    if (signal?.aborted) return Promise.reject(new NotConnectedError(`${what} not sent: aborted while the connection was recovering`, { cause: signal.reason }));
    return new Promise<void>((resolve, reject) => {
      const ms = this.#options.waitTimeout;
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.#waiters.delete(waiter);
      };
      const waiter: Waiter = {
        resolve: () => (done(), resolve()),
        reject: (e) => (done(), reject(e)),
      };
      const timer = setTimeout(() => waiter.reject(new NotConnectedError(`${what} not sent: the connection did not recover within ${ms} ms`, { cause: this.#lastCause })), ms);
      const onAbort = () => waiter.reject(new NotConnectedError(`${what} not sent: aborted while the connection was recovering`, { cause: signal?.reason }));
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.add(waiter);
    });
  }

  async #run(round: number): Promise<void> {
    const started = this.#host.now();
    for (let attempt = 1; ; attempt++) {
      const delay = nextDelay(this.#options.reconnect, attempt, Math.random, this.#host.now() - started);
      if (delay === undefined) return this.#giveUp(round, this.#lastCause);
      this.#host.reconnecting({ attempt, delay, cause: this.#lastCause });
      const abort = (this.#abort = new AbortController());
      try {
        if (delay > 0) await sleep(delay, abort.signal);
        if (round !== this.#round) return;
        await this.#host.connectAgain(abort.signal);
        if (round !== this.#round) return;
        await this.#host.replay();
      } catch (e) {
        if (round !== this.#round) return;
        this.#lastCause = e;
        if (this.#host.isFatal(e)) return this.#giveUp(round, e);
        continue;
      }
      if (round !== this.#round) return;
      this.#state = "open";
      this.#abort = undefined;
      this.#host.recovered();
      for (const w of [...this.#waiters]) w.resolve();
      return;
    }
  }

  #giveUp(round: number, error: unknown): void {
    if (round !== this.#round) return;
    const e = error instanceof Error ? error : new NotConnectedError(`connection lost: ${String(error)}`);
    this.stop(new NotConnectedError(`not sent: the connection could not be recovered (${e.message})`, { cause: e }));
    this.#host.gaveUp(e);
  }
}
