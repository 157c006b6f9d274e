/**
 * The client connection: drives a ConnectionMachine over a Transport and turns its events into promises.
 *
 * The adapter loop from the machine's theory of operation lives here, once for every runtime:
 *   input  → machine.handleInput → drain transmits, dispatch events, re-arm the timer
 *   command (from a Channel) → schedule one flush for the end of this turn of the event loop, so the frames
 *   of many publishes leave in one socket write.
 *
 * Every promise handed out settles: the machine settles each request exactly once (reply or failure), and
 * a closed connection fails whatever is still pending.
 */
import type { FieldTable } from "../codec/amqp/field-table.ts";
import { ConnectionMachine } from "../machine/connection.ts";
import { UsageError as MachineUsageError } from "../machine/errors.ts";
import type { CloseReason, MachineEvent, ReplyEvent } from "../machine/events.ts";
import { Channel, type ChannelHost } from "./channel.ts";
import { Emitter } from "./emitter.ts";
import {
  AbortError,
  ChannelClosedError,
  ConnectionClosedError,
  ConnectTimeoutError,
  errorFromClose,
  HandshakeError,
  TransportError,
  UsageError,
  type WarrenError,
} from "./errors.ts";
import { type ConnectOptions, redactUrl, resolveConnectOptions, type ResolvedConnectOptions } from "./options.ts";
import type { Runtime, Transport } from "./transport.ts";

export type ConnectionEvents = {
  /** The connection closed; `error` unless the application closed it. */
  close: (error?: WarrenError) => void;
  /** The broker stopped reading from this connection's publishers (resource alarm). */
  blocked: (reason: string) => void;
  unblocked: () => void;
};

interface PendingRequest {
  resolve(e: ReplyEvent): void;
  reject(e: Error): void;
}

const asyncDispose: typeof Symbol.asyncDispose = (Symbol as { asyncDispose?: symbol }).asyncDispose as typeof Symbol.asyncDispose ?? (Symbol.for("Symbol.asyncDispose") as typeof Symbol.asyncDispose);

export class Connection extends Emitter<ConnectionEvents> implements ChannelHost {
  /** @internal */
  readonly machine: ConnectionMachine;
  readonly #runtime: Runtime;
  readonly #options: ResolvedConnectOptions;
  #transport: Transport | undefined;
  readonly #pending = new Map<number, PendingRequest>();
  readonly #channels = new Map<number, Channel>();
  #flushScheduled = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #drainWaiters: { resolve(): void; reject(e: Error): void }[] = [];
  #transportFull = false;
  #blocked: string | undefined;
  #closeError: WarrenError | undefined;
  #closedFlag = false;
  #serverProperties: FieldTable = {};
  #ready: { resolve(): void; reject(e: Error): void } | undefined;
  #closedPromise: Promise<void>;
  #resolveClosed!: () => void;

  /** Use `connect()` from "warren" (or an adapter) instead. */
  constructor(runtime: Runtime, options: ResolvedConnectOptions) {
    super();
    this.#runtime = runtime;
    this.#options = options;
    this.#closedPromise = new Promise((resolve) => (this.#resolveClosed = resolve));
    const clientProperties: FieldTable = { platform: runtime.platform, ...options.clientProperties };
    if (options.connectionName !== undefined) clientProperties.connection_name = options.connectionName;
    this.machine = new ConnectionMachine(
      {
        username: options.username,
        password: options.password,
        vhost: options.vhost,
        mechanism: options.authMechanism,
        ...(options.heartbeat !== undefined && { heartbeat: options.heartbeat }),
        ...(options.frameMax !== undefined && { frameMax: options.frameMax }),
        ...(options.channelMax !== undefined && { channelMax: options.channelMax }),
        ...(options.maxBodySize !== undefined && { maxBodySize: options.maxBodySize }),
        handshakeTimeout: 0, // the connect timeout below covers TCP, TLS and the handshake together
        clientProperties,
      },
      runtime.now(),
    );
  }

  /** @internal Opens the transport and runs the handshake. */
  async open(): Promise<this> {
    const timeoutMs = this.#options.connectionTimeout;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ready = new Promise<void>((resolve, reject) => (this.#ready = { resolve, reject }));
    const timeout = new Promise<never>((_, reject) => {
      if (timeoutMs > 0) {
        timer = setTimeout(
          () => reject(new ConnectTimeoutError(`Could not connect to ${this.#where()} within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }
    });
    timeout.catch(() => undefined);
    try {
      const transport = this.#runtime.connect(this.#options, {
        onData: (bytes) => this.#onData(bytes),
        onDrain: () => this.#onDrain(),
        onClose: (error) => this.#onTransportClose(error),
      });
      transport.catch(() => undefined);
      // If the timeout wins, a transport that connects later must still be closed.
      transport.then((t) => { if (this.#closedFlag) t.destroy(); }, () => undefined);
      this.#transport = await Promise.race([transport, timeout]);
      this.#flush();
      await Promise.race([ready, timeout]);
      return this;
    } catch (e) {
      this.#abandon(e);
      throw e;
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  /** Gives up a connection attempt: nothing stays open, nothing stays pending. */
  #abandon(e: unknown): void {
    if (!this.#closedFlag) {
      this.#closedFlag = true;
      this.#closeError = e instanceof Error ? (e as WarrenError) : undefined;
      this.#clearTimer();
      this.#transport?.destroy();
      this.#resolveClosed();
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Public API

  /** Opens a channel. */
  async openChannel(o: { signal?: AbortSignal } = {}): Promise<Channel> {
    if (this.#closedFlag) throw this.#closedError();
    if (o.signal?.aborted) throw new AbortError("openChannel aborted before it was sent", { cause: o.signal.reason });
    const { channel, requestId } = this.command(() => this.machine.openChannel());
    const ch = new Channel(this, channel);
    this.#channels.set(channel, ch);
    this.flushForRequest();
    await this.waitReply(requestId, o.signal, () => {
      // Opened after the caller gave up: close it rather than leave a channel nobody holds.
      if (o.signal?.aborted) ch.close().catch(() => undefined);
    });
    return ch;
  }

  /** Closes the connection and every channel on it. Resolves once the broker confirmed (or the timeout). */
  async close(): Promise<void> {
    if (!this.#closedFlag) {
      this.machine.close();
      this.#afterMachine();
    }
    await this.#closedPromise;
  }

  /** connection.update-secret: hands the broker a refreshed credential (e.g. an OAuth 2 token). */
  async updateSecret(newSecret: string, reason = "refresh", o: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#closedFlag) throw this.#closedError();
    const requestId = this.command(() => this.machine.updateSecret(new TextEncoder().encode(newSecret), reason));
    this.flushForRequest();
    await this.waitReply(requestId, o.signal);
  }

  /** Resolves when publishing may go on: at once unless the socket's buffer is over the high-water mark. */
  writable(): Promise<void> | undefined {
    if (!this.backpressured) return undefined;
    if (this.#closedFlag) return Promise.reject(this.#closedError());
    return new Promise((resolve, reject) => this.#drainWaiters.push({ resolve, reject }));
  }

  /** True while the socket's buffer is over the high-water mark. */
  get backpressured(): boolean {
    const buffered = (this.#transport?.bufferedAmount ?? 0) + this.machine.pendingTransmit;
    return this.#transportFull || buffered > this.#options.writeHighWaterMark;
  }

  /** True once the connection is closed. */
  get closed(): boolean {
    return this.#closedFlag;
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
    return { host: this.#options.hostname, port: this.#options.port, vhost: this.#options.vhost, username: this.#options.username, closed: this.#closedFlag };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }

  // ---------------------------------------------------------------------------------------------------
  // ChannelHost

  /** @internal */
  command<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (e instanceof MachineUsageError) {
        if (e.code === "CONNECTION_CLOSED" || e.code === "NOT_OPEN") throw this.#closedError();
        if (e.code === "CHANNEL_CLOSED") throw new ChannelClosedError(e.message);
        throw new UsageError(e.message);
      }
      throw e;
    }
  }

  /**
   * @internal `onReply` runs synchronously when the reply is dispatched — before deliveries that arrived in
   * the same read (a consumer must be registered before its first basic.deliver) — and also when the
   * waiter was aborted, so the caller can undo what the broker did anyway.
   */
  waitReply(requestId: number, signal: AbortSignal | undefined, onReply?: (e: ReplyEvent) => void): Promise<ReplyEvent> {
    return new Promise<ReplyEvent>((resolve, reject) => {
      if (!signal) {
        this.#pending.set(requestId, { resolve: onReply ? (e) => (onReply(e), resolve(e)) : resolve, reject });
        return;
      }
      const onAbort = () => {
        // The request is on the wire; its reply will be ignored when it comes (but still shown to onReply).
        if (!this.#pending.delete(requestId)) return;
        if (onReply) this.#pending.set(requestId, { resolve: onReply, reject: () => undefined });
        reject(new AbortError("operation aborted", { cause: signal.reason }));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#pending.set(requestId, {
        resolve: (e) => {
          signal.removeEventListener("abort", onAbort);
          onReply?.(e);
          resolve(e);
        },
        reject: (e) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        },
      });
      // An already-aborted signal never fires "abort".
      if (signal.aborted) onAbort();
    });
  }

  /** @internal */
  pauseReading(who: object, paused: boolean): void {
    const before = this.#readPausers.size > 0;
    if (paused) this.#readPausers.add(who);
    else this.#readPausers.delete(who);
    const after = this.#readPausers.size > 0;
    if (before === after || !this.#transport?.pauseReading) return;
    this.#transport.pauseReading(after);
    this.machine.handleReadPaused(after, this.#runtime.now());
    this.#afterMachine();
  }
  #readPausers = new Set<object>();

  /**
   * @internal Requests (declare, consume, get, …) wait for a reply, so their bytes leave at the end of the
   * current synchronous code (a microtask) — a burst issued together still shares one write — rather than
   * at the end of the event-loop turn like publishes and acks.
   */
  flushForRequest(): void {
    if (this.#requestFlushScheduled) return;
    this.#requestFlushScheduled = true;
    queueMicrotask(() => {
      this.#requestFlushScheduled = false;
      this.#flush();
      this.#armTimer();
    });
  }
  #requestFlushScheduled = false;

  /** @internal */
  scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    this.#runtime.defer(() => {
      this.#flushScheduled = false;
      this.#afterMachine();
    });
    // Past the high-water mark, write now rather than let the machine's buffer grow for a whole turn.
    if (this.machine.pendingTransmit > this.#options.writeHighWaterMark) this.#flush();
  }

  // ---------------------------------------------------------------------------------------------------
  // The loop

  #onData(bytes: Uint8Array): void {
    this.machine.handleInput(bytes, this.#runtime.now());
    this.#afterMachine();
  }

  #onDrain(): void {
    this.#transportFull = false;
    this.#flush();
    this.#wakeWriters();
  }

  #onTransportClose(error: unknown): void {
    this.#transportFull = false;
    if (!this.machine.isClosed) {
      this.machine.handleEnd(this.#runtime.now());
      if (error !== undefined) this.#transportErrorCause = error;
    }
    this.#transport = undefined;
    this.#afterMachine();
  }
  #transportErrorCause: unknown;

  #onTimer(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.machine.handleTimeout(this.#runtime.now());
    this.#afterMachine();
  }

  /** After the machine changed: write, dispatch, re-arm. */
  #afterMachine(): void {
    this.#flush();
    this.#dispatch();
    this.#armTimer();
    if (this.machine.isClosed) this.#finish();
  }

  #flush(): void {
    const t = this.#transport;
    if (!t) return;
    const bytes = this.machine.pollTransmit(this.#runtime.now());
    if (bytes === undefined) return;
    if (!t.write(bytes)) this.#transportFull = true;
    else this.#wakeWriters();
  }

  #wakeWriters(): void {
    if (this.#drainWaiters.length === 0 || this.backpressured) return;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w.resolve();
  }

  #armTimer(): void {
    const at = this.machine.pollTimeout();
    if (at === undefined) {
      this.#clearTimer();
      return;
    }
    // Only move the timer earlier; a timer that fires before a moved-later deadline just re-arms.
    if (at >= this.#timerAt) return;
    this.#clearTimer();
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#onTimer(), Math.max(0, at - this.#runtime.now()));
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #dispatch(): void {
    for (let e = this.machine.pollEvent(); e !== undefined; e = this.machine.pollEvent()) this.#handleEvent(e);
  }

  #handleEvent(e: MachineEvent): void {
    switch (e.type) {
      case "handshakeDone":
        this.#serverProperties = e.serverProperties;
        this.#ready?.resolve();
        this.#ready = undefined;
        return;
      case "reply": {
        const p = this.#pending.get(e.requestId);
        if (p) {
          this.#pending.delete(e.requestId);
          p.resolve(e);
        }
        return;
      }
      case "requestFailed": {
        const p = this.#pending.get(e.requestId);
        if (p) {
          this.#pending.delete(e.requestId);
          p.reject(errorFromClose(this.machine.isClosed ? "connection" : "channel", e.reason));
        }
        return;
      }
      case "delivery":
        this.#channels.get(e.channel)?.onDelivery(e);
        return;
      case "return":
        this.#channels.get(e.channel)?.onReturn(e);
        return;
      case "publishConfirmed":
        this.#channels.get(e.channel)?.onConfirm(e);
        return;
      case "publishFailed":
        this.#channels.get(e.channel)?.onPublishFailed(e.seq, errorFromClose(this.machine.isClosed ? "connection" : "channel", e.reason));
        return;
      case "consumerCancelled":
        this.#channels.get(e.channel)?.onConsumerCancelled(e.consumerTag);
        return;
      case "channelFlow":
        this.#channels.get(e.channel)?.onFlow(e.active);
        return;
      case "channelClosed": {
        const ch = this.#channels.get(e.channel);
        this.#channels.delete(e.channel);
        ch?.onClosed(e.reason, this.machine.isClosed);
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

  #onConnectionClosed(reason: CloseReason): void {
    const clean = reason.initiator === "client" && reason.replyCode === 200;
    this.#closeError = this.#connectError(reason);
    if (this.#ready) {
      this.#ready.reject(this.#closeError);
      this.#ready = undefined;
    }
    this.#closedFlag = true;
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id);
      p.reject(this.#closeError);
    }
    // A publish waiting for the socket to drain will never be sent: say so.
    for (const w of this.#drainWaiters) w.reject(this.#closeError);
    this.#drainWaiters = [];
    this.emit("close", clean ? undefined : this.#closeError);
  }

  /** Errors during the handshake get names that say what to fix. */
  #connectError(reason: CloseReason): WarrenError {
    const handshaking = this.#ready !== undefined;
    if (handshaking && reason.initiator === "protocol" && reason.replyCode === 0) {
      return new HandshakeError(`Could not connect to ${this.#where()}: ${reason.replyText}`);
    }
    const cause = this.#transportErrorCause;
    if (cause !== undefined && reason.initiator === "transport") {
      // The socket's own error (a TLS alert, a reset) says more than the machine's guess about why it ended.
      const text = handshaking ? `Could not connect to ${this.#where()}: ${describe(cause)}` : `Connection to ${this.#where()} lost: ${describe(cause)}`;
      return new TransportError(text, { cause });
    }
    return errorFromClose("connection", reason);
  }

  /** The machine is closed: let the transport go once what is queued (a close-ok, say) has been written. */
  #finish(): void {
    this.#clearTimer();
    const t = this.#transport;
    if (t) {
      this.#transport = undefined;
      t.end();
    }
    this.#resolveClosed();
  }

  #closedError(): WarrenError {
    return this.#closeError ?? new ConnectionClosedError("Connection closed");
  }

  #where(): string {
    const o = this.#options;
    return o.socketPath ? `unix:${o.socketPath}` : `${o.tls ? "amqps" : "amqp"}://${o.hostname.includes(":") ? `[${o.hostname}]` : o.hostname}:${o.port}`;
  }
}

function describe(e: unknown): string {
  const code = (e as { code?: unknown }).code;
  const message = e instanceof Error ? e.message : String(e);
  return (typeof code === "string" && !message.includes(code) ? `${code}: ${message}` : message).trim();
}

/**
 * Connects with the given runtime. Each adapter's `connect` calls this with its own Runtime.
 * The URL's password never appears in an error message.
 */
export async function connectWith(runtime: Runtime, url?: string | ConnectOptions, options?: ConnectOptions): Promise<Connection> {
  let resolved: ResolvedConnectOptions;
  if (typeof url === "string") resolved = resolveConnectOptions(url, options);
  else resolved = resolveConnectOptions(undefined, { ...url, ...options });
  let conn: Connection;
  try {
    conn = new Connection(runtime, resolved);
  } catch (e) {
    // An out-of-range option (heartbeat, frameMax, …) as the machine reports it: the client's own UsageError,
    // so `isWarrenError` and `code` work as for every other failure.
    if (e instanceof MachineUsageError) throw new UsageError(e.message);
    throw e;
  }
  return conn.open();
}

export { redactUrl };
