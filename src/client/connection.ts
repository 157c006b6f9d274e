/**
 * The client connection: turns a ConnectionMachine's events into promises, channels and consumers, and
 * recovers from a lost connection. The loop between machine and transport is driver.ts; the commands
 * channels send, commands.ts; the recovery loop and replay, recovery/.
 *
 * Rules it keeps:
 * - Every promise handed out settles: the machine settles each request exactly once (reply or failure), and
 *   a closed connection fails whatever is still pending. The scope of a failure (channel or connection) is
 *   the one its event carries; nothing re-reads the machine's state afterwards to guess it.
 * - Nothing the broker or the network does throws out of a transport callback or the timer. Dispatch never
 *   throws (clean-up sends go through `trySend`); should anything inside warren throw anyway, the connection
 *   ends as one transport failure, on every runtime alike.
 * - The connection keeps no copy of the machine's state: open/closed is the machine's.
 */
import type { FieldTable } from "../codec/amqp/field-table.ts";
import type { Method, RequestName } from "../codec/amqp/methods.generated.ts";
import type { PublishProperties } from "../codec/amqp/properties.ts";
import { ConnectionMachine } from "../machine/connection.ts";
import type { CloseReason, MachineEvent } from "../machine/events.ts";
import { Channel, type ChannelHost, type Reply, type Request } from "./channel.ts";
import { asyncDispose } from "./dispose.ts";
import { Emitter } from "./emitter.ts";
import {
  AbortError,
  ChannelClosedError,
  ConnectionClosedError,
  connectionError,
  describeError,
  errorFromClose,
  isPermanentConnectError,
  isWarrenError,
  OutcomeUnknownError,
  type WarrenError,
} from "./errors.ts";
import type { Consumer } from "./consumer.ts";
import { type ReconnectingInfo, Recovery, type RecoveryHost } from "./recovery/engine.ts";
import { ReplayInterrupted, replayConnection, type ReplayReport } from "./recovery/replay.ts";
import { Topology } from "./recovery/topology.ts";
import { type Endpoint, HostRotation } from "./recovery/hosts.ts";
import { nextDelay, type ReconnectPolicy, sleep } from "./recovery/backoff.ts";
import { ConnectAttempt } from "./connect-attempt.ts";
import { PendingRequests } from "./requests.ts";
import { type KeptOptions, keptOptions, brokerAddress, machineOptions } from "./options.ts";
import type { Runtime } from "./transport.ts";
import { Commands } from "./commands.ts";
import { OnceLog } from "./once-log.ts";
import { Driver } from "./driver.ts";

export type ConnectionEvents = {
  /** The connection closed; `error` unless the application closed it. */
  close: (error?: WarrenError) => void;
  /** The broker stopped reading from this connection's publishers (resource alarm). */
  blocked: (reason: string) => void;
  unblocked: () => void;
  /**
   * Reading from the socket stopped (true) because a consumer fell far behind, or resumed (false). While it is
   * stopped nothing arrives for any channel of this connection; a prefetch (basicQos) keeps it from happening.
   */
  readPaused: (paused: boolean) => void;
  /** The connection was lost and is being recovered (automatic recovery); `error` says why. */
  disconnected: (error: WarrenError) => void;
  /** A reconnect attempt is about to start, after `delay` ms. */
  reconnecting: (info: ReconnectingInfo) => void;
  /** The connection is back: channels, topology and consumers were replayed; `report` lists renamed queues and failed steps. */
  recovered: (report: ReplayReport) => void;
  /** Recovery gave up (attempts or time exhausted, or bad credentials); `close` follows. */
  recoveryFailed: (error: WarrenError) => void;
};

export class Connection extends Emitter<ConnectionEvents> implements ChannelHost {
  /** Automatic recovery, unless turned off; the password is kept (privately) only for it. */
  readonly #recovery: Recovery | undefined;
  /**
   * The hosts to connect to and which to try next (the nodes of a cluster). Kept — with their passwords — while
   * connecting and, with recovery, for reconnecting; dropped once open otherwise.
   */
  #rotation: HostRotation | undefined;
  /** The host in use, or being tried. */
  #endpoint: Endpoint;
  /** A connect attempt is under way (the first connect, trying host after host): its machine's end is not the connection's. */
  #attempting = true;
  /** Recovery ended (closed by the application, or given up): the connection's end was reported already. */
  #endedForGood = false;
  /** What the application declared, for replay after a reconnect. */
  readonly #topology: Topology<Consumer> | undefined;
  #lastReplay: ReplayReport = { renamedQueues: [], failures: [], resent: 0 };
  #everOpened = false;
  readonly #runtime: Runtime;
  /** The machine, its transport, and the loop between them (a new machine after each reconnect). */
  readonly #driver: Driver;
  readonly #internalFailureWarning = {};
  #options: KeptOptions; // no password: only machines get it (see #newMachine)
  readonly #log: OnceLog;
  #resend = false;
  /** The policy the first connect retries with (recovery.retryFirstConnect), else undefined. */
  #firstConnectRetry: ReconnectPolicy | undefined;
  readonly #pending = new PendingRequests();
  readonly #commands: Commands;
  readonly #channels = new Map<number, Channel>();
  #transportErrorCause: unknown;
  #blocked: string | undefined;
  #closeError: WarrenError | undefined;
  /** The connect attempt was given up (timeout, abort): end quietly, emit nothing. */
  #abandoned = false;
  #serverProperties: FieldTable = {};
  #ready: { resolve(): void; reject(e: Error): void } | undefined;
  readonly #closedPromise: Promise<void>;
  #resolveClosed!: () => void;
  readonly #readPausers = new Set<object>();
  readonly #readPauseWarning = {};
  /** Channels whose failure reached an awaiting promise since their last close. */
  readonly #failureSeen = new Set<number>();
  #connectionFailureSeen = false;

  /**
   * Use `connect()` from "warren" (or an adapter) instead. `endpoints` are the hosts to try, each with its
   * resolved options (the first one's settings — recovery, logger, high-water mark — apply to all).
   */
  constructor(runtime: Runtime, endpoints: readonly Endpoint[], hostOrder: "in-order" | "shuffle" = "in-order") {
    super();
    this.#runtime = runtime;
    this.#rotation = new HostRotation(endpoints, { order: hostOrder, random: Math.random });
    this.#endpoint = this.#rotation.next(runtime.now());
    const options = this.#endpoint.options;
    this.#options = keptOptions(options);
    this.#log = new OnceLog(options.logger);
    this.#closedPromise = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#driver = new Driver(runtime, this.#newMachine(), options.writeHighWaterMark, {
      handleEvent: (e) => this.#handleEvent(e),
      machineClosed: () => {
        if (!this.#attempting && this.#recovery?.state !== "recovering") this.#resolveClosed();
      },
      transportFailed: (cause) => (this.#transportErrorCause ??= cause),
      warn: (message, error) => this.warnUnobserved(this.#internalFailureWarning, message, error),
    });
    this.#commands = new Commands(this.#driver, this.#pending, () => this.#closedError());
    if (options.recovery !== undefined) {
      this.#topology = new Topology<Consumer>();
      this.#recovery = new Recovery(this.#recoveryHost(), options.recovery);
      this.#resend = options.recovery.unconfirmed === "resend";
      if (options.recovery.retryFirstConnect) this.#firstConnectRetry = options.recovery.reconnect;
    }
  }

  /** A machine for the current endpoint (the only place its password is handed on). */
  #newMachine(): ConnectionMachine {
    return new ConnectionMachine(machineOptions(this.#endpoint.options, this.#runtime.platform), this.#runtime.now());
  }

  /** Moves to another host: a new machine for it, the old transport dropped. */
  #useEndpoint(endpoint: Endpoint): void {
    this.#endpoint = endpoint;
    this.#options = keptOptions(endpoint.options);
    this.#driver.attach(this.#newMachine());
  }

  /** @internal The current machine (a new one after each reconnect). */
  get machine(): ConnectionMachine {
    return this.#driver.machine;
  }

  /**
   * @internal Opens the transport and runs the handshake, within connectionTimeout and until `signal`
   * aborts. The transport gets one AbortSignal for both, so it gives up at once too.
   */
  async open(signal: AbortSignal | undefined): Promise<this> {
    const rotation = this.#rotation!;
    const retry = this.#firstConnectRetry;
    const started = this.#runtime.now();
    for (let tried = 1, round = 1; ; tried++) {
      try {
        await this.#connectTransport(signal);
        break;
      } catch (e) {
        rotation.failed(this.#endpoint, this.#runtime.now());
        if (signal?.aborted || isPermanentConnectError(e)) throw this.#abandon(e);
        if (tried >= rotation.endpoints.length) {
          // Every host failed once more: with retryFirstConnect, wait as the reconnect policy says, then go round again.
          const delay = retry ? nextDelay(retry, round++, Math.random, this.#runtime.now() - started) : undefined;
          if (delay === undefined) throw this.#abandon(e);
          tried = 0;
          this.#dropAttempt();
          try {
            if (delay > 0) await sleep(delay, signal);
          } catch {
            throw this.#abandon(new AbortError("connect aborted while waiting to try again", { cause: e }));
          }
        } else this.#dropAttempt();
        this.#useEndpoint(rotation.next(this.#runtime.now()));
      }
    }
    rotation.succeeded(this.#endpoint);
    this.#attempting = false;
    this.#everOpened = true;
    if (!this.#recovery) {
      // Nothing will reconnect: let the passwords go (the machine blanked its own copy once open).
      this.#rotation = undefined;
      this.#endpoint = { label: this.#endpoint.label, options: Object.assign(keptOptions(this.#endpoint.options), { password: "" }) };
    }
    return this;
  }

  /** A connect attempt failed: its transport goes, and its machine ends (settling what it had). */
  #dropAttempt(): void {
    this.#driver.destroyTransport();
    if (!this.machine.isClosed) {
      this.machine.handleEnd(this.#runtime.now());
      this.#driver.afterMachine();
    }
  }

  /** Opens a transport for the current machine and waits for its handshake, within connectionTimeout. */
  async #connectTransport(signal: AbortSignal | undefined): Promise<void> {
    const gen = this.#driver.generation;
    const attempt = new ConnectAttempt(this.#where(), this.#options.connectionTimeout, signal);
    const ready = new Promise<void>((resolve, reject) => (this.#ready = { resolve, reject }));
    ready.catch(() => undefined);
    try {
      const transport = this.#runtime.connect(this.#options, this.#driver.handlers(), attempt.signal);
      // A transport that connects after we gave up (or moved on to another attempt) must still be closed.
      transport.then((t) => { if (this.#abandoned || gen !== this.#driver.generation) t.destroy(); }, () => undefined);
      this.#driver.transport = await Promise.race([transport, attempt.failed]);
      this.#driver.flush();
      await Promise.race([ready, attempt.failed]);
    } catch (e) {
      attempt.abort(e);
      throw e;
    } finally {
      attempt.dispose();
    }
  }

  /** Gives up a connection attempt: nothing stays open, nothing stays pending, no event is emitted. */
  #abandon(e: unknown): unknown {
    if (this.#abandoned) return e;
    this.#abandoned = true;
    this.#rotation = undefined;
    this.#recovery?.stop(e instanceof Error ? e : new ConnectionClosedError(String(e)));
    this.#closeError = e instanceof Error ? (e as WarrenError) : undefined;
    this.#ready = undefined;
    this.#driver.clearTimer();
    this.#driver.destroyTransport();
    this.#driver.guarded(() => {
      if (!this.machine.isClosed) this.machine.handleEnd(this.#runtime.now());
      this.#driver.afterMachine();
    });
    this.#resolveClosed();
    return e;
  }

  // ---------------------------------------------------------------------------------------------------
  // Public API

  /** Opens a channel. */
  async openChannel(o: { signal?: AbortSignal } = {}): Promise<Channel> {
    if (o.signal?.aborted) throw new AbortError("openChannel aborted before it was sent", { cause: o.signal.reason });
    if (this.recovering) await this.whenRecovered(o.signal, "openChannel");
    let opened: { channel: number; requestId: number };
    try {
      opened = this.machine.openChannel();
    } catch (e) {
      throw this.#commands.error(e);
    }
    const { channel, requestId } = opened;
    const ch = new Channel(this, channel);
    this.#channels.set(channel, ch);
    this.#driver.flushForRequest();
    await this.#pending.wait(requestId, o.signal, () => {
      // Opened after the caller gave up: close it rather than leave a channel nobody holds.
      if (o.signal?.aborted) ch.close().catch(() => undefined);
    });
    return ch;
  }

  /** Closes the connection and every channel on it. Resolves once the broker confirmed (or the timeout). */
  async close(): Promise<void> {
    if (this.#recovery?.state === "recovering") {
      // Between two connections (or in the middle of a reconnect attempt): stop, and end everything here.
      this.#recovery.stop(new ConnectionClosedError("Connection closed by the application while it was recovering"));
      this.#endForGood(undefined);
      if (!this.machine.isClosed) this.machine.close(); // a reconnect attempt under way
      this.#driver.afterMachine();
    } else if (!this.machine.isClosed) {
      this.machine.close();
      this.#driver.afterMachine();
    }
    await this.#closedPromise;
  }

  /** connection.update-secret: hands the broker a refreshed credential (e.g. an OAuth 2 token). */
  async updateSecret(newSecret: string, reason = "refresh", o: { signal?: AbortSignal } = {}): Promise<void> {
    if (o.signal?.aborted) throw new AbortError("updateSecret aborted before it was sent", { cause: o.signal.reason });
    await this.#commands.updateSecret(new TextEncoder().encode(newSecret), reason, o.signal);
  }

  /** Resolves when publishing may go on: at once unless the socket's buffer is over the high-water mark. */
  writable(): Promise<void> | undefined {
    if (!this.#driver.backpressured) return undefined;
    if (this.machine.isClosed) return Promise.reject(this.#closedError());
    return this.#driver.writable();
  }

  /** True while the socket's buffer is over the high-water mark. */
  get backpressured(): boolean {
    return this.#driver.backpressured;
  }

  /** True once the connection is closed. */
  get closed(): boolean {
    return this.machine.isClosed && this.#recovery?.state !== "recovering";
  }

  /** "open", "recovering" (between a connection loss and its recovery), or "closed". */
  get state(): "open" | "recovering" | "closed" {
    return this.closed ? "closed" : this.recovering ? "recovering" : "open";
  }

  /** @internal Whether confirm-mode publishes keep a copy, to be sent again if their outcome is lost (recovery's `unconfirmed: "resend"`). */
  get resendUnconfirmed(): boolean {
    return this.#resend;
  }

  /** @internal True between a connection loss and its recovery. */
  get recovering(): boolean {
    return this.#recovery?.state === "recovering";
  }

  /** @internal Resolves once the connection is open again; rejects with NotConnectedError past the wait timeout. */
  whenRecovered(signal: AbortSignal | undefined, what: string): Promise<void> {
    return this.#recovery?.whenRecovered(signal, what) ?? Promise.resolve();
  }

  /** @internal */
  get topology(): Topology<Consumer> | undefined {
    return this.#topology;
  }

  /** Resolves when the connection has closed, for whatever reason. Never rejects. */
  get closedPromise(): Promise<void> {
    return this.#closedPromise;
  }

  /** The broker's connection.start properties (product, version, capabilities, …). */
  get serverProperties(): FieldTable {
    return this.#serverProperties;
  }

  /** The reason given by connection.blocked while the broker blocks publishers; undefined otherwise. */
  get blocked(): string | undefined {
    return this.#blocked;
  }

  async [asyncDispose](): Promise<void> {
    await this.close();
  }

  /** A description safe to log: never includes the password. */
  override toString(): string {
    return `Connection(${this.#where()}, vhost "${this.#options.vhost}", user "${this.#options.username}")`;
  }
  toJSON(): object {
    return { host: this.#options.hostname, port: this.#options.port, vhost: this.#options.vhost, username: this.#options.username, closed: this.closed };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }

  // ---------------------------------------------------------------------------------------------------
  // ChannelHost: the operations a channel may ask for, and the one flush policy

  /** @internal */
  request<N extends RequestName>(channel: number, method: Request<N>, signal: AbortSignal | undefined, onReply?: (e: Reply<N>) => void): Promise<Reply<N>> {
    return this.#commands.request(channel, method, signal, onReply);
  }

  /** @internal */
  send(channel: number, method: Method): void {
    this.#commands.send(channel, method);
  }

  /** @internal */
  trySend(channel: number, method: Method): boolean {
    return this.#commands.trySend(channel, method);
  }

  /** @internal */
  publish(channel: number, exchange: string, routingKey: string, body: Uint8Array, properties: PublishProperties, mandatory: boolean, immediate: boolean): number {
    return this.#commands.publish(channel, exchange, routingKey, body, properties, mandatory, immediate);
  }

  /** @internal */
  async reopenChannel(channel: number): Promise<void> {
    await this.#commands.openChannel(channel, undefined);
  }

  /** @internal */
  closeChannel(channel: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.recovering) {
      // No connection to send channel.close on: the channel just ends, and is not reopened.
      const ch = this.#channels.get(channel);
      this.#channels.delete(channel);
      ch?.onClosed(undefined, new ChannelClosedError(`Channel ${channel} closed by the application`), true);
      return Promise.resolve();
    }
    return this.#commands.closeChannel(channel, signal);
  }

  /** @internal */
  get canPauseReading(): boolean {
    return this.#driver.transport?.pauseReading !== undefined;
  }

  /** @internal */
  pauseReading(who: object, paused: boolean): void {
    const before = this.#readPausers.size > 0;
    if (paused) this.#readPausers.add(who);
    else this.#readPausers.delete(who);
    const after = this.#readPausers.size > 0;
    const transport = this.#driver.transport;
    if (before === after || !transport?.pauseReading) return;
    transport.pauseReading(after);
    this.machine.handleReadPaused(after, this.#runtime.now());
    this.emit("readPaused", after);
    if (after && this.listenerCount("readPaused") === 0) {
      this.warnUnobserved(
        this.#readPauseWarning,
        `stopped reading from ${this.#where()}: a consumer fell thousands of messages behind, so nothing arrives for any channel until it catches up; set a prefetch with basicQos (logged once per connection)`,
      );
    }
  }

  /** @internal */
  warnUnobserved(source: object, message: string, error?: unknown): void {
    this.#log.warn(source, message, error);
  }

  #handleEvent(e: MachineEvent): void {
    switch (e.type) {
      case "handshakeDone":
        this.#serverProperties = e.serverProperties;
        this.#ready?.resolve();
        this.#ready = undefined;
        return;
      case "reply":
        this.#pending.resolve(e);
        return;
      case "requestFailed":
        if (this.#pending.reject(e.requestId, errorFromClose(e.scope, e.reason))) this.#noteFailureSeen(e.scope, e.channel);
        return;
      case "delivery":
        this.#channels.get(e.channel)?.onDelivery(e);
        return;
      case "return":
        this.#channels.get(e.channel)?.onReturn(e);
        return;
      case "publishConfirmed":
        this.#channels.get(e.channel)?.onConfirm(e);
        return;
      case "publishFailed": {
        // Lost with a connection that will be recovered: the broker may or may not have it.
        const recoverable = e.scope === "connection" && this.#willRecover(e.reason);
        const error = recoverable
          ? new OutcomeUnknownError(`The outcome of publish #${e.seq} on channel ${e.channel} is unknown: the connection was lost before the broker confirmed it (${e.reason.replyText})`)
          : errorFromClose(e.scope, e.reason);
        if (this.#channels.get(e.channel)?.onPublishFailed(e.seq, error, recoverable)) this.#noteFailureSeen(e.scope, e.channel);
        return;
      }
      case "consumerCancelled":
        this.#channels.get(e.channel)?.onConsumerCancelled(e.consumerTag);
        return;
      case "channelFlow":
        this.#channels.get(e.channel)?.onFlow(e.active);
        return;
      case "channelClosed": {
        const ch = this.#channels.get(e.channel);
        if (ch && e.scope === "connection" && this.#willRecover(e.reason)) {
          ch.onConnectionLost(); // it lives on, and is reopened when the connection recovers
          return;
        }
        this.#channels.delete(e.channel);
        const seen = this.#failureSeen.delete(e.channel) || e.scope === "connection"; // the connection reports its own failure
        const rejection = errorFromClose(e.scope, e.reason);
        ch?.onClosed(isClean(e.reason) ? undefined : rejection, rejection, seen);
        return;
      }
      case "blocked":
        this.#blocked = e.reason;
        this.emit("blocked", e.reason);
        return;
      case "unblocked":
        this.#blocked = undefined;
        this.emit("unblocked");
        return;
      case "connectionClosed":
        this.#onConnectionClosed(e.reason);
        return;
    }
  }

  #noteFailureSeen(scope: "channel" | "connection", channel: number): void {
    if (scope === "channel") this.#failureSeen.add(channel);
    else this.#connectionFailureSeen = true;
  }

  #onConnectionClosed(reason: CloseReason): void {
    const clean = isClean(reason);
    if (!this.#abandoned) this.#closeError = connectionError(reason, { where: this.#where(), handshaking: this.#ready !== undefined, cause: this.#transportErrorCause });
    this.#transportErrorCause = undefined;
    const error = this.#closedError();
    // A connect attempt that failed (the first connect's, or a reconnect's), or a loss to recover from: not the
    // connection's end. Whoever runs the attempt decides what comes next.
    const attemptEnded = this.#attempting || this.#endedForGood || this.#recovery?.state === "recovering";
    if (attemptEnded || this.#willRecover(reason)) {
      this.#ready?.reject(error);
      this.#ready = undefined;
      this.#pending.rejectAll(error);
      this.#driver.rejectWriters(error);
      if (!attemptEnded) {
        this.#rotation?.failed(this.#endpoint, this.#runtime.now()); // try another host first
        this.emit("disconnected", error);
        this.#recovery!.lost(error);
      }
      return;
    }
    this.#recovery?.stop(error);
    let seen = this.#connectionFailureSeen || this.#abandoned || this.listenerCount("close") > 0;
    if (this.#ready) {
      this.#ready.reject(error);
      this.#ready = undefined;
      seen = true;
    }
    if (this.#pending.rejectAll(error)) seen = true;
    // A publish waiting for the socket to drain will never be sent: say so.
    if (this.#driver.rejectWriters(error)) seen = true;
    if (this.#abandoned) return;
    this.emit("close", clean ? undefined : error);
    if (!clean && !seen) this.warnUnobserved(this, `connection to ${this.#where()} closed: ${error.message} (add a "close" listener to handle this)`, error);
  }

  /**
   * Whether a connection that ended for `reason` is recovered: when recovery is on, the connection had opened,
   * and the application did not close it — except for bad credentials or an unknown vhost, which no retry fixes.
   */
  #willRecover(reason: CloseReason): boolean {
    if (!this.#recovery || !this.#everOpened || this.#abandoned || this.#recovery.state === "closed") return false;
    if (reason.initiator === "client") return false;
    return !(reason.initiator === "broker" && (reason.replyCode === 403 || reason.replyCode === 530));
  }

  /** Recovery stopped (the application closed, or the policy gave up): every channel ends, then the connection. */
  #endForGood(error: WarrenError | undefined): void {
    if (this.#endedForGood) return;
    this.#endedForGood = true;
    const rejection = error ?? new ConnectionClosedError("Connection closed by the application");
    for (const ch of [...this.#channels.values()]) ch.onClosed(error, rejection, true);
    this.#channels.clear();
    this.#closeError = rejection;
    this.#driver.clearTimer();
    this.emit("close", error);
    this.#resolveClosed();
  }

  /** Reopens every channel (same numbers, same settings), then replays the topology and consumers. */
  async #replay(): Promise<void> {
    const gen = this.#driver.generation;
    const lost = () => gen !== this.#driver.generation || this.machine.isClosed;
    try {
      this.#lastReplay = await replayConnection([...this.#channels.values()], this.#commands, this.#topology!, lost);
    } catch (e) {
      // Lost again mid-replay: what the application may see (if recovery gives up now) is that loss itself.
      if (e instanceof ReplayInterrupted) throw this.#closedError();
      throw e;
    }
    if (this.listenerCount("recovered") === 0) {
      for (const f of this.#lastReplay.failures) this.warnUnobserved(f, `recovery: ${f.step} failed: ${describeError(f.error)} (the "recovered" event reports these)`, f.error);
    }
  }

  /** What the recovery loop (recovery/engine.ts) needs from the connection. */
  #recoveryHost(): RecoveryHost {
    return {
      connectAgain: async (signal) => {
        this.#useEndpoint(this.#rotation!.next(this.#runtime.now()));
        try {
          await this.#connectTransport(signal);
        } catch (e) {
          // This attempt's transport and machine are dropped; the loop decides what comes next.
          this.#rotation!.failed(this.#endpoint, this.#runtime.now());
          this.#dropAttempt();
          throw e;
        }
        this.#rotation!.succeeded(this.#endpoint);
      },
      replay: () => this.#replay(),
      isFatal: isPermanentConnectError,
      reconnecting: (info) => this.emit("reconnecting", info),
      recovered: () => this.emit("recovered", this.#lastReplay),
      gaveUp: (e) => {
        const error = isWarrenError(e) ? e : new ConnectionClosedError(`Connection lost and not recovered: ${describeError(e)}`, { cause: e });
        this.emit("recoveryFailed", error);
        this.#endForGood(error);
      },
      now: () => this.#runtime.now(),
    };
  }

  #closedError(): WarrenError {
    return this.#closeError ?? new ConnectionClosedError("Connection closed");
  }

  #where(): string {
    return brokerAddress(this.#options);
  }
}

function isClean(reason: CloseReason): boolean {
  return reason.initiator === "client" && reason.replyCode === 200;
}
