/**
 * The adapter loop from the machine's theory of operation, written once for every runtime: one machine over
 * one transport.
 *
 *   input   → machine.handleInput → drain transmits, dispatch events, re-arm the one timer
 *   timer   → machine.handleTimeout → the same
 *   command → the flush policy: requests (which wait for a reply) leave at the end of the current synchronous
 *             code, publishes and acks at the end of the event-loop turn, so a burst shares one socket write
 *
 * Rules it keeps:
 * - Nothing thrown inside reaches the runtime. An exception in a transport callback, the timer or a flush is
 *   a bug in warren, not something to hand to the runtime (Node would crash the process, Bun and Deno close
 *   the socket, a WebSocket carry on half-dispatched): the connection ends as one transport failure instead,
 *   and every event is still dispatched, so everything pending settles.
 * - A reconnect (`attach`) starts a new generation: callbacks of an older transport are ignored.
 */
import type { ConnectionMachine } from "../machine/connection.ts";
import type { MachineEvent } from "../machine/events.ts";
import { describeError, TransportError } from "./errors.ts";
import type { Runtime, Transport, TransportHandlers } from "./transport.ts";

/** What the driver reports to its connection. */
export interface DriverHost {
  /** One event of the machine. A throw is a bug: the driver then fails the connection as a transport failure. */
  handleEvent(e: MachineEvent): void;
  /** The machine is closed and what it had to say was handed to the transport. */
  machineClosed(): void;
  /** Why the transport failed (the socket's error, or warren's own), for the close error. */
  transportFailed(cause: unknown): void;
  /** Something went wrong while cleaning up after an internal failure: logged, nothing else to do. */
  warn(message: string, error: unknown): void;
}

interface Writer {
  resolve(): void;
  reject(e: Error): void;
}

export class Driver {
  readonly #runtime: Runtime;
  readonly #writeHighWaterMark: number;
  readonly #host: DriverHost;
  #machine: ConnectionMachine;
  #transport: Transport | undefined;
  #generation = 0;
  #flushScheduled = false;
  #requestFlushScheduled = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #writers: Writer[] = [];
  #transportFull = false;
  #internalError: unknown;
  #failingInternally = false;

  constructor(runtime: Runtime, machine: ConnectionMachine, writeHighWaterMark: number, host: DriverHost) {
    this.#runtime = runtime;
    this.#machine = machine;
    this.#writeHighWaterMark = writeHighWaterMark;
    this.#host = host;
  }

  get machine(): ConnectionMachine {
    return this.#machine;
  }

  get transport(): Transport | undefined {
    return this.#transport;
  }

  /** The transport that now carries the machine's bytes (undefined: none, or it is gone). */
  set transport(t: Transport | undefined) {
    this.#transport = t;
    this.#transportFull = false;
  }

  /** Which machine the callbacks of a transport belong to. */
  get generation(): number {
    return this.#generation;
  }

  /** A new machine, for a reconnect: the old transport is dropped and its callbacks are ignored from now on. */
  attach(machine: ConnectionMachine): void {
    this.clearTimer();
    this.destroyTransport();
    this.#generation++;
    this.#machine = machine;
  }

  /** Callbacks for a transport of the current machine. */
  handlers(): TransportHandlers {
    const gen = this.#generation;
    const current = () => gen === this.#generation;
    return {
      onData: (bytes) => current() && this.guarded(() => {
        this.#machine.handleInput(bytes, this.#runtime.now());
        this.afterMachine();
      }),
      onDrain: () => current() && this.guarded(() => {
        this.#transportFull = false;
        this.flush();
        this.#wakeWriters();
      }),
      onClose: (error) => current() && this.guarded(() => {
        this.#transportFull = false;
        if (!this.#machine.isClosed) {
          if (error !== undefined) this.#host.transportFailed(error);
          this.#machine.handleEnd(this.#runtime.now());
        }
        this.#transport = undefined;
        this.afterMachine();
      }),
    };
  }

  /** Closes the transport at once (a given-up connect, a reconnect). */
  destroyTransport(): void {
    const t = this.#transport;
    this.#transport = undefined;
    t?.destroy();
  }

  /** True while the socket's buffer is over the high-water mark. */
  get backpressured(): boolean {
    const buffered = (this.#transport?.bufferedAmount ?? 0) + this.#machine.pendingTransmit;
    return this.#transportFull || buffered > this.#writeHighWaterMark;
  }

  /** Resolves when publishing may go on (undefined: at once). */
  writable(): Promise<void> | undefined {
    if (!this.backpressured) return undefined;
    return new Promise((resolve, reject) => this.#writers.push({ resolve, reject }));
  }

  /** Fails every publisher waiting for the socket to drain; returns whether there was one. */
  rejectWriters(error: Error): boolean {
    const writers = this.#writers;
    this.#writers = [];
    for (const w of writers) w.reject(error);
    return writers.length > 0;
  }

  /** A request was queued: its bytes leave at the end of the current synchronous code (a microtask). */
  flushForRequest(): void {
    if (this.#requestFlushScheduled) return;
    this.#requestFlushScheduled = true;
    queueMicrotask(() => this.guarded(() => {
      this.#requestFlushScheduled = false;
      this.flush();
      this.#armTimer();
    }));
  }

  /** A publish or an ack was queued: it leaves at the end of the event-loop turn, with the rest of the turn's. */
  scheduleFlush(): void {
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      this.#runtime.defer(() => this.guarded(() => {
        this.#flushScheduled = false;
        this.afterMachine();
      }));
    }
    // Past the high-water mark, write now rather than let the machine's buffer grow for a whole turn.
    if (this.#machine.pendingTransmit > this.#writeHighWaterMark) this.flush();
  }

  /** Runs `f` from a runtime callback: an exception ends the connection as a transport failure. */
  guarded(f: () => void): void {
    try {
      f();
    } catch (e) {
      this.#failInternally(e);
    }
  }

  /** After the machine changed: write, dispatch, re-arm; let go of the transport once the machine is closed. */
  afterMachine(): void {
    this.flush();
    this.#dispatch();
    if (this.#internalError !== undefined) {
      const e = this.#internalError;
      this.#internalError = undefined;
      this.#failInternally(e);
      return;
    }
    this.#armTimer();
    if (this.#machine.isClosed) this.#finish();
  }

  flush(): void {
    const t = this.#transport;
    if (!t) return;
    const bytes = this.#machine.pollTransmit(this.#runtime.now());
    if (bytes === undefined) return;
    if (!t.write(bytes)) this.#transportFull = true;
    else this.#wakeWriters();
  }

  clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #failInternally(e: unknown): void {
    if (this.#failingInternally) return;
    this.#failingInternally = true;
    try {
      this.#host.transportFailed(new TransportError(`warren failed while handling the connection: ${describeError(e)}`, { cause: e }));
      this.destroyTransport();
      if (!this.#machine.isClosed) this.#machine.handleEnd(this.#runtime.now());
      this.#internalError = undefined;
      this.#dispatch();
      this.#finish();
    } catch (again) {
      this.#host.warn(`failed while closing after an internal error: ${describeError(again)}`, again);
    } finally {
      this.#failingInternally = false;
    }
  }

  /** Hands every event to the connection. One receiver failing does not stop the rest from being settled. */
  #dispatch(): void {
    const m = this.#machine;
    for (let e = m.pollEvent(); e !== undefined; e = m.pollEvent()) {
      try {
        this.#host.handleEvent(e);
      } catch (err) {
        this.#internalError ??= err;
      }
    }
  }

  #wakeWriters(): void {
    if (this.#writers.length === 0 || this.backpressured) return;
    const writers = this.#writers;
    this.#writers = [];
    for (const w of writers) w.resolve();
  }

  #armTimer(): void {
    const at = this.#machine.pollTimeout();
    if (at === undefined) {
      this.clearTimer();
      return;
    }
    // Only move the timer earlier; a timer that fires before a moved-later deadline just re-arms.
    if (at >= this.#timerAt) return;
    this.clearTimer();
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.guarded(() => this.#onTimer()), Math.max(0, at - this.#runtime.now()));
  }

  #onTimer(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.#machine.handleTimeout(this.#runtime.now());
    this.afterMachine();
  }

  /** The machine is closed: let the transport go once what is queued (a close-ok, say) has been written. */
  #finish(): void {
    this.clearTimer();
    const t = this.#transport;
    if (t) {
      this.#transport = undefined;
      t.end();
    }
    this.#host.machineClosed();
  }
}
