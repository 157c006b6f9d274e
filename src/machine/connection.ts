/**
 * The sans-IO AMQP 0-9-1 client connection: the whole client side of the protocol as a deterministic state
 * machine.
 *
 * Theory of operation
 * -------------------
 * The machine never touches a socket, a clock, a timer or a promise. Its caller (an adapter) runs this loop:
 *
 *   1. bytes arrive        → `handleInput(bytes, now)`; the stream ended → `handleEnd(now)`
 *   2. the timer fires     → `handleTimeout(now)`
 *   3. the app asks        → commands: `openChannel`, `call`, `send`, `publish`, `closeChannel`, `close`, …
 *   4. after any of these  → drain `pollTransmit(now)` to the socket, re-arm one timer at `pollTimeout()`,
 *                            dispatch `pollEvent()` until it returns undefined.
 *
 * Commands only enqueue: they write frames into the outbound buffer and return at once with an id (a request
 * id, a channel number, a publish sequence number) that a later event settles. Time is always a parameter,
 * and commands take none: what they start is timed from the `pollTransmit(now)` that hands out their bytes
 * (the wait for connection.close-ok, the heartbeat's idea of when we last sent).
 *
 * Rules it keeps:
 * - Broker behaviour never throws. A broker that breaks the protocol gets the connection.close the spec
 *   prescribes (501 frame error … 505 unexpected frame), and the application gets events.
 * - Caller misuse throws a UsageError synchronously and changes nothing.
 * - Every request and every confirm-mode publish settles exactly once (see events.ts); `connectionClosed` is
 *   the last event.
 * - Frames of one message (method, header, body…) are written in one call, so messages on different
 *   channels never interleave inside one another.
 * - This file owns the library's only inbound buffer (the FrameDecoder).
 */
import { DecodeError, EncodeError } from "../codec/errors.ts";
import type { FieldTable } from "../codec/amqp/field-table.ts";
import { encodeContent, encodeHeaderFrame, encodeHeartbeatFrame, encodeMethodFrame, type Frame, PROTOCOL_HEADER } from "../codec/amqp/frames.ts";
import { FrameDecoder } from "../codec/amqp/frame-decoder.ts";
import { METHODS, type Method, type MethodInfo, type MethodName } from "../codec/amqp/methods.generated.ts";
import type { BasicProperties } from "../codec/amqp/properties.ts";
import { Writer } from "../codec/writer.ts";
import { utf8Length } from "../codec/utf8.ts";
import { ChannelState, type Outgoing } from "./channel.ts";
import { UsageError } from "./errors.ts";
import type { CloseReason, Message, MachineEvent, ReturnEvent } from "./events.ts";
import { type MachineOptions, negotiateTune, resolveOptions, type ResolvedOptions } from "./options.ts";
import { chooseMechanism, saslResponse } from "./sasl.ts";

const METHOD_INFO = new Map<string, MethodInfo>(METHODS.map((m) => [m.name, m]));

/** Synchronous methods an application may `call` (with no-wait off). */
const CALLABLE = new Set<MethodName>([
  "channel.flow",
  "exchange.declare",
  "exchange.delete",
  "exchange.bind",
  "exchange.unbind",
  "queue.declare",
  "queue.bind",
  "queue.unbind",
  "queue.purge",
  "queue.delete",
  "basic.qos",
  "basic.consume",
  "basic.cancel",
  "basic.get",
  "basic.recover",
  "confirm.select",
  "tx.select",
  "tx.commit",
  "tx.rollback",
]);

/** Asynchronous methods an application may `send`; the callable ones may be sent too with no-wait on. */
const SENDABLE = new Set<MethodName>(["basic.ack", "basic.nack", "basic.reject", "basic.recover-async"]);

const REPLY = { CHANNEL_ERROR: 504, UNEXPECTED_FRAME: 505, COMMAND_INVALID: 503, FRAME_ERROR: 501, CONTENT_TOO_LARGE: 311, NOT_ALLOWED: 530 };

/** Announced to the broker as client property `version`. */
export const WARREN_VERSION = "0.1.0";

/**
 * When a timer fires this much after the heartbeat deadline, the host was busy and input may be waiting
 * behind the timer in the event loop: judge again this much later, after that input has been handled.
 */
const LATE_TIMER_MS = 100;

/** warren's capabilities, announced in connection.start-ok (RabbitMQ's client capabilities). */
const CAPABILITIES: FieldTable = {
  publisher_confirms: true,
  exchange_exchange_bindings: true,
  "basic.nack": true,
  consumer_cancel_notify: true,
  "connection.blocked": true,
  authentication_failure_close: true,
  per_consumer_qos: true,
  direct_reply_to: true,
};

type ConnectionState =
  /** Sent the protocol header; waiting for connection.start. */
  | "awaitingStart"
  /** Sent start-ok; waiting for secure or tune. */
  | "awaitingTune"
  /** Sent tune-ok and open; waiting for open-ok. */
  | "awaitingOpenOk"
  | "open"
  /** Sent connection.close; waiting for close-ok. */
  | "closing"
  | "closed";

function hasNoWait(m: Method): boolean {
  const f = m as unknown as { noWait?: boolean; nowait?: boolean };
  return f.noWait === true || f.nowait === true;
}

function reason(initiator: CloseReason["initiator"], replyCode: number, replyText: string, classId = 0, methodId = 0): CloseReason {
  return { initiator, replyCode, replyText, classId, methodId };
}

export class ConnectionMachine {
  private readonly options: ResolvedOptions;
  /**
   * The password lives in an ES private field (invisible to util.inspect and JSON) and only until the
   * connection is open; `options.password` is blanked.
   */
  #password: string;
  private readonly decoder: FrameDecoder;
  private readonly out = new Writer();
  private readonly events: MachineEvent[] = [];
  private eventHead = 0;

  private state: ConnectionState = "awaitingStart";
  private readonly channels = new Map<number, ChannelState>();
  private nextRequestId = 1;
  private closeReason: CloseReason | undefined;
  /** connection.update-secret requests: in flight first. */
  private secretRequests: number[] = [];

  private frameMax: number;
  private channelMax = 0xffff;
  private heartbeatMs = 0;
  private lastSent: number;
  private lastReceived: number;
  private heartbeatQueued = false;
  private handshakeDeadline: number | undefined;
  private closeDeadline: number | undefined;
  /** A connection.close is queued; its close-ok deadline starts when it is transmitted. */
  private closeDeadlinePending = false;
  /** A late heartbeat timer postpones judging the peer to this time. */
  private deadJudgedAt: number | undefined;
  private nextChannelHint = 1;

  /**
   * Creates a connection and queues the protocol header; call `pollTransmit` to get it.
   * @param now the current time in milliseconds (any monotonic clock)
   * @example
   * const m = new ConnectionMachine({ username: "guest", password: "guest" }, clock());
   * socket.write(m.pollTransmit(clock())!);
   */
  constructor(options: MachineOptions = {}, now: number) {
    const resolved = resolveOptions(options);
    this.#password = resolved.password;
    this.options = { ...resolved, password: "" };
    this.lastSent = now;
    this.lastReceived = now;
    this.frameMax = this.options.frameMax;
    this.decoder = new FrameDecoder({ frameMax: this.options.frameMax });
    if (this.options.handshakeTimeout > 0) this.handshakeDeadline = now + this.options.handshakeTimeout;
    this.out.raw(PROTOCOL_HEADER);
  }

  // -------------------------------------------------------------------------------------------------------
  // Queries

  /** True once the handshake is done and until the connection starts closing. */
  get isOpen(): boolean {
    return this.state === "open";
  }
  /** True after `connectionClosed` was emitted. */
  get isClosed(): boolean {
    return this.state === "closed";
  }
  /** Negotiated frame_max (the requested one until tuning). */
  get negotiatedFrameMax(): number {
    return this.frameMax;
  }
  /** Bytes written by commands and not yet taken by `pollTransmit`. */
  get pendingTransmit(): number {
    return this.out.length;
  }
  /** Whether channel `id` is open for use. */
  isChannelOpen(id: number): boolean {
    return this.channels.get(id)?.lifecycle === "open";
  }
  /** Whether the channel is in confirm mode (confirm.select sent). */
  isConfirmMode(id: number): boolean {
    return this.channels.get(id)?.confirm === true;
  }

  // -------------------------------------------------------------------------------------------------------
  // Inputs

  /**
   * Feeds bytes read from the transport. The machine keeps a reference to `bytes`: the caller must not
   * modify them afterwards.
   */
  handleInput(bytes: Uint8Array, now: number): void {
    if (this.state === "closed" || bytes.length === 0) return;
    this.lastReceived = now;
    this.deadJudgedAt = undefined;
    this.decoder.push(bytes);
    for (;;) {
      let frame: Frame | undefined;
      try {
        frame = this.decoder.next();
      } catch (e) {
        const err = e instanceof DecodeError ? e : new DecodeError("FRAME_INVALID", String(e));
        // The stream has lost its framing: say why, and stop without waiting for a close-ok we could not read.
        this.abortConnection(err.replyCode, err.message);
        return;
      }
      if (frame === undefined) return;
      this.handleFrame(frame);
      if (this.isClosed) return;
    }
  }

  /** The transport ended: the peer closed it, or it failed. */
  handleEnd(now: number): void {
    if (this.state === "closed") return;
    if (this.state === "closing" && this.closeReason) {
      this.finish(this.closeReason);
      return;
    }
    let text = "connection lost: the transport closed";
    if (this.state === "awaitingStart") text = "connection closed by the peer before the AMQP handshake (is it an AMQP 0-9-1 broker?)";
    else if (this.state === "awaitingTune") text = "connection closed by the broker during authentication (wrong credentials or mechanism?)";
    else if (this.state === "awaitingOpenOk") text = "connection closed by the broker while opening the virtual host";
    this.finish(reason("transport", 0, text));
  }

  /**
   * The caller stopped (true) or resumed (false) reading from the transport — say, for a consumer that fell
   * behind. Silence from the broker proves nothing while we are not listening, so the dead-peer check is
   * suspended meanwhile and starts afresh on resume. (Our own heartbeats still go out.)
   */
  handleReadPaused(paused: boolean, now: number): void {
    this.readPaused = paused;
    if (!paused) {
      this.lastReceived = now;
      this.deadJudgedAt = undefined;
    }
  }
  private readPaused = false;

  /** Call when the time from `pollTimeout()` has come (late is fine, early is a no-op). */
  handleTimeout(now: number): void {
    if (this.state === "closed") return;
    if (this.handshakeDeadline !== undefined && now >= this.handshakeDeadline) {
      this.finish(reason("transport", 0, `connection timed out: the AMQP handshake did not finish within ${this.options.handshakeTimeout} ms`));
      return;
    }
    if (this.closeDeadline !== undefined && now >= this.closeDeadline) {
      this.finish(this.closeReason ?? reason("client", 200, "closed"));
      return;
    }
    if (this.heartbeatMs > 0 && this.state !== "closing") {
      const deadAt = this.readPaused ? Infinity : (this.deadJudgedAt ?? this.lastReceived + 2 * this.heartbeatMs);
      if (now >= deadAt) {
        if (this.deadJudgedAt === undefined && now - deadAt > LATE_TIMER_MS) {
          // The timer fired late, so the host was busy; input may be queued behind it. Look again shortly.
          this.deadJudgedAt = now + LATE_TIMER_MS;
        } else {
          this.abortConnection(0, `missed heartbeats: nothing received from the broker for ${now - this.lastReceived} ms`, "transport");
          return;
        }
      }
      if (!this.heartbeatQueued && now >= this.lastSent + this.heartbeatMs / 2) {
        encodeHeartbeatFrame(this.out);
        this.heartbeatQueued = true;
      }
    }
  }

  // -------------------------------------------------------------------------------------------------------
  // Outputs

  /** Bytes to write to the transport, now owned by the caller; undefined when there are none. */
  pollTransmit(now: number): Uint8Array | undefined {
    if (this.out.length === 0) return undefined;
    this.lastSent = now;
    this.heartbeatQueued = false;
    if (this.closeDeadlinePending) {
      this.closeDeadlinePending = false;
      this.closeDeadline = now + this.options.closeTimeout;
    }
    return this.out.finish();
  }

  /** The earliest time `handleTimeout` must be called, or undefined for none. Re-read after every call. */
  pollTimeout(): number | undefined {
    if (this.state === "closed") return undefined;
    let t = Infinity;
    if (this.handshakeDeadline !== undefined) t = Math.min(t, this.handshakeDeadline);
    if (this.closeDeadline !== undefined) t = Math.min(t, this.closeDeadline);
    if (this.heartbeatMs > 0 && this.state !== "closing") {
      if (!this.readPaused) t = Math.min(t, this.deadJudgedAt ?? this.lastReceived + 2 * this.heartbeatMs);
      if (!this.heartbeatQueued) t = Math.min(t, this.lastSent + this.heartbeatMs / 2);
    }
    return t === Infinity ? undefined : t;
  }

  /** The next event, or undefined when there is none. */
  pollEvent(): MachineEvent | undefined {
    if (this.eventHead >= this.events.length) return undefined;
    const e = this.events[this.eventHead++]!;
    if (this.eventHead === this.events.length) {
      this.events.length = 0;
      this.eventHead = 0;
    }
    return e;
  }

  // -------------------------------------------------------------------------------------------------------
  // Commands

  /**
   * Opens a channel on the next free id after the last one handed out (wrapping at channel_max), so a
   * just-closed id is not reused at once. The request settles with channel.open-ok (or fails).
   * @example const { channel, requestId } = m.openChannel();
   */
  openChannel(): { channel: number; requestId: number } {
    this.assertOpen();
    let id = 0;
    for (let i = 0; i < this.channelMax; i++) {
      const candidate = ((this.nextChannelHint - 1 + i) % this.channelMax) + 1;
      if (!this.channels.has(candidate)) {
        id = candidate;
        break;
      }
    }
    if (id === 0) throw new UsageError("CHANNEL_LIMIT", `Cannot open a channel: all ${this.channelMax} channels are in use`);
    this.nextChannelHint = (id % this.channelMax) + 1;
    const ch = new ChannelState(id);
    this.channels.set(id, ch);
    const requestId = this.nextRequestId++;
    ch.inFlight = { requestId, method: { name: "channel.open", classId: 20, methodId: 10 }, responses: ["channel.open-ok"] };
    encodeMethodFrame(this.out, id, ch.inFlight.method);
    return { channel: id, requestId };
  }

  /**
   * Sends a synchronous method (queue.declare, basic.consume, confirm.select, …) with no-wait off. Requests
   * on one channel go out one at a time, in order. Returns the request id its `reply` event will carry.
   */
  call(channel: number, method: Method): number {
    const ch = this.usableChannel(channel);
    if (!CALLABLE.has(method.name) || hasNoWait(method)) {
      throw new UsageError("INVALID_METHOD", `Cannot call ${method.name}${hasNoWait(method) ? " with no-wait set (use send)" : ": it is not a synchronous client request"}`);
    }
    const requestId = this.nextRequestId;
    if (ch.idle) this.writeCall(ch, requestId, method);
    else {
      this.checkEncodable(method);
      ch.queue.push({ kind: "call", requestId, method });
    }
    this.nextRequestId++;
    if (method.name === "confirm.select") ch.confirm = true;
    return requestId;
  }

  /**
   * Sends an asynchronous method (basic.ack, basic.nack, basic.reject, basic.recover-async) or a synchronous
   * one with no-wait set. Nothing answers it.
   */
  send(channel: number, method: Method): void {
    const ch = this.usableChannel(channel);
    if (!SENDABLE.has(method.name) && !(CALLABLE.has(method.name) && hasNoWait(method))) {
      throw new UsageError("INVALID_METHOD", `Cannot send ${method.name}: only asynchronous methods, or requests with no-wait set, are sent without a reply`);
    }
    if (method.name === "basic.consume" && method.consumerTag === "") {
      throw new UsageError("INVALID_ARGUMENT", "Cannot send basic.consume with no-wait and no consumer tag: the broker's generated tag would never be known");
    }
    if (ch.idle) this.writeSend(ch, method);
    else {
      this.checkEncodable(method);
      ch.queue.push({ kind: "send", method });
    }
    if (method.name === "confirm.select") ch.confirm = true;
  }

  /**
   * Publishes a message: method, header and body frames written together. In confirm mode returns the
   * publish's sequence number (from 1 per channel), which a `publishConfirmed` or `publishFailed` event
   * settles; otherwise returns 0.
   */
  publish(
    channel: number,
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: BasicProperties = {},
    mandatory = false,
    immediate = false,
  ): number {
    const ch = this.usableChannel(channel);
    const method: Method = { name: "basic.publish", classId: 60, methodId: 40, exchange, routingKey, mandatory, immediate };
    if (ch.idle) {
      try {
        encodeContent(this.out, channel, method, properties, body, this.frameMax);
      } catch (e) {
        throw this.usageFromEncode(e);
      }
    } else {
      this.checkEncodable(method, properties);
      ch.queue.push({ kind: "publish", method, properties, body });
    }
    if (!ch.confirm) return 0;
    const seq = ch.nextSeq++;
    ch.unconfirmed.set(seq, mandatory || immediate ? { exchange, routingKey } : null);
    return seq;
  }

  /**
   * Closes a channel. Requests queued behind the in-flight one fail at once; the in-flight one and unconfirmed
   * publishes fail when channel.close-ok arrives. The returned request settles with channel.close-ok.
   */
  closeChannel(channel: number, replyCode = 200, replyText = "Goodbye"): number {
    this.assertOpen();
    const ch = this.channels.get(channel);
    if (!ch || ch.lifecycle === "closing") throw new UsageError("CHANNEL_CLOSED", `Cannot close channel ${channel}: it is not open`);
    checkReplyCode(replyCode);
    const why = reason("client", replyCode, replyText);
    this.encodeOrThrow(channel, { name: "channel.close", classId: 20, methodId: 40, replyCode, replyText, failingClassId: 0, failingMethodId: 0 });
    const requestId = this.nextRequestId++;
    this.failQueued(ch, why);
    ch.lifecycle = "closing";
    ch.closeRequestId = requestId;
    ch.closeReason = why;
    return requestId;
  }

  /**
   * Closes the connection (connection.close, then waits up to `closeTimeout` for close-ok). Before the
   * handshake is done it just ends. Closing twice is a no-op.
   */
  close(replyCode = 200, replyText = "Goodbye"): void {
    if (this.state === "closing" || this.state === "closed") return;
    checkReplyCode(replyCode);
    const why = reason("client", replyCode, replyText);
    if (this.state !== "open") {
      this.finish(why);
      return;
    }
    this.startClosing(why, replyCode, replyText, 0, 0);
  }

  /** connection.update-secret (e.g. a refreshed OAuth 2 token). The request settles with update-secret-ok. */
  updateSecret(newSecret: Uint8Array, reasonText: string): number {
    this.assertOpen();
    this.encodeOrThrow(0, { name: "connection.update-secret", classId: 10, methodId: 70, newSecret, reason: reasonText });
    const requestId = this.nextRequestId++;
    this.secretRequests.push(requestId);
    return requestId;
  }

  // -------------------------------------------------------------------------------------------------------
  // Frames in

  private handleFrame(frame: Frame): void {
    if (frame.type === 8) return; // heartbeat: receiving it was the point
    if (frame.type === "protocol-header") {
      this.finish(
        reason("protocol", 0, `the server does not speak AMQP 0-9-1: it answered with protocol version ${frame.major}-${frame.minor}-${frame.revision}`),
      );
      return;
    }
    if (frame.channel === 0) {
      if (frame.type !== 1) {
        this.protocolError(REPLY.UNEXPECTED_FRAME, `unexpected content frame on channel 0`);
        return;
      }
      this.handleConnectionMethod(frame.method);
      return;
    }
    if (this.state === "closing") return; // after connection.close only close/close-ok count (channel 0)
    if (this.state !== "open") {
      this.protocolError(REPLY.UNEXPECTED_FRAME, `frame on channel ${frame.channel} before the connection is open`);
      return;
    }
    const ch = this.channels.get(frame.channel);
    if (!ch) {
      this.protocolError(REPLY.CHANNEL_ERROR, `frame on channel ${frame.channel}, which is not open`);
      return;
    }
    if (frame.type === 1) this.handleChannelMethod(ch, frame.method);
    else if (frame.type === 2) this.handleHeader(ch, frame.classId, frame.bodySize, frame.properties);
    else this.handleBody(ch, frame.payload);
  }

  private handleConnectionMethod(m: Method): void {
    switch (m.name) {
      case "connection.start":
        if (this.state !== "awaitingStart") break;
        this.serverProperties = m.serverProperties;
        this.onStart(m.versionMajor, m.versionMinor, m.mechanisms);
        return;
      case "connection.secure":
        if (this.state !== "awaitingTune") break;
        this.writeConnection({ name: "connection.secure-ok", classId: 10, methodId: 21, response: this.response() });
        return;
      case "connection.tune":
        if (this.state !== "awaitingTune") break;
        this.onTune(m.channelMax, m.frameMax, m.heartbeat);
        return;
      case "connection.open-ok":
        if (this.state !== "awaitingOpenOk") break;
        this.state = "open";
        this.handshakeDeadline = undefined;
        this.#password = ""; // not needed any more
        this.emit({
          type: "handshakeDone",
          serverProperties: this.serverProperties,
          channelMax: this.channelMax,
          frameMax: this.frameMax,
          heartbeat: this.heartbeatMs / 1000,
        });
        return;
      case "connection.close": {
        // Answer close-ok, even while closing ourselves (both sides closed at once), then we are done.
        this.writeConnection({ name: "connection.close-ok", classId: 10, methodId: 51 });
        this.finish(reason("broker", m.replyCode, m.replyText, m.failingClassId, m.failingMethodId));
        return;
      }
      case "connection.close-ok":
        if (this.state !== "closing") break;
        this.finish(this.closeReason!);
        return;
      case "connection.blocked":
        if (this.state === "closing") return;
        this.emit({ type: "blocked", reason: m.reason });
        return;
      case "connection.unblocked":
        if (this.state === "closing") return;
        this.emit({ type: "unblocked" });
        return;
      case "connection.update-secret-ok": {
        if (this.state === "closing") return;
        const requestId = this.secretRequests.shift();
        if (requestId === undefined) break;
        this.emit({ type: "reply", channel: 0, requestId, method: m, message: undefined });
        return;
      }
      default:
        if (this.state === "closing") return;
        this.protocolError(REPLY.COMMAND_INVALID, `${m.name} is not valid on channel 0`, m);
        return;
    }
    if (this.state === "closing") return;
    this.protocolError(REPLY.UNEXPECTED_FRAME, `unexpected ${m.name} (connection ${this.state})`, m);
  }

  private serverProperties: FieldTable = {};

  private onStart(major: number, minor: number, mechanisms: Uint8Array): void {
    if (major !== 0 || minor !== 9) {
      this.finish(reason("protocol", 0, `the broker speaks AMQP ${major}-${minor}, not 0-9`));
      return;
    }
    const offered = new TextDecoder().decode(mechanisms).split(" ").filter(Boolean);
    const mechanism = chooseMechanism(offered, this.options.mechanism);
    if (mechanism === undefined) {
      const wanted = this.options.mechanism ?? "PLAIN or AMQPLAIN";
      this.finish(reason("protocol", 0, `authentication mechanism ${wanted} is not offered by the broker (it offers ${offered.join(", ") || "none"})`));
      return;
    }
    this.mechanism = mechanism;
    this.writeConnection({
      name: "connection.start-ok",
      classId: 10,
      methodId: 11,
      clientProperties: { product: "warren", version: WARREN_VERSION, ...this.options.clientProperties, capabilities: CAPABILITIES },
      mechanism,
      response: this.response(),
      locale: "en_US",
    });
    this.state = "awaitingTune";
  }

  private mechanism: "PLAIN" | "AMQPLAIN" | "EXTERNAL" = "PLAIN";

  private response(): Uint8Array {
    return saslResponse(this.mechanism, this.options.username, this.#password);
  }

  private onTune(channelMax: number, frameMax: number, heartbeat: number): void {
    const tuned = negotiateTune(this.options, { channelMax, frameMax, heartbeat });
    if (typeof tuned === "string") {
      this.startClosing(reason("protocol", REPLY.NOT_ALLOWED, tuned, 10, 30), REPLY.NOT_ALLOWED, tuned, 10, 30);
      return;
    }
    this.channelMax = tuned.channelMax;
    this.frameMax = tuned.frameMax;
    this.heartbeatMs = tuned.heartbeat * 1000;
    this.decoder.frameMax = tuned.frameMax;
    this.writeConnection({ name: "connection.tune-ok", classId: 10, methodId: 31, ...tuned });
    this.writeConnection({ name: "connection.open", classId: 10, methodId: 40, virtualHost: this.options.vhost });
    this.state = "awaitingOpenOk";
  }

  private handleChannelMethod(ch: ChannelState, m: Method): void {
    if (ch.assembly !== undefined) {
      this.protocolError(REPLY.UNEXPECTED_FRAME, `${m.name} on channel ${ch.id} while a message's content was arriving`, m);
      return;
    }
    if (ch.lifecycle === "closing") {
      this.handleClosingChannelMethod(ch, m);
      return;
    }
    switch (m.name) {
      case "basic.deliver":
      case "basic.return":
        ch.assembly = { method: m, properties: undefined, bodySize: 0, body: undefined, received: 0, requestId: 0 };
        return;
      case "basic.ack":
      case "basic.nack":
        this.onConfirm(ch, m.deliveryTag, m.multiple, m.name === "basic.ack");
        return;
      case "basic.cancel":
        // The broker cancelled a consumer (consumer_cancel_notify).
        ch.consumers.delete(m.consumerTag);
        if (!m.noWait) this.writeMethod(ch.id, { name: "basic.cancel-ok", classId: 60, methodId: 31, consumerTag: m.consumerTag });
        this.emit({ type: "consumerCancelled", channel: ch.id, consumerTag: m.consumerTag });
        return;
      case "channel.flow":
        this.writeMethod(ch.id, { name: "channel.flow-ok", classId: 20, methodId: 21, active: m.active });
        this.emit({ type: "channelFlow", channel: ch.id, active: m.active });
        return;
      case "channel.close":
        this.writeMethod(ch.id, { name: "channel.close-ok", classId: 20, methodId: 41 });
        this.closeChannelState(ch, reason("broker", m.replyCode, m.replyText, m.failingClassId, m.failingMethodId));
        return;
    }
    const inFlight = ch.inFlight;
    if (inFlight === undefined || !inFlight.responses.includes(m.name)) {
      this.protocolError(REPLY.UNEXPECTED_FRAME, `unexpected ${m.name} on channel ${ch.id}${inFlight ? ` (waiting for a reply to ${inFlight.method.name})` : ""}`, m);
      return;
    }
    if (m.name === "basic.get-ok") {
      ch.assembly = { method: m, properties: undefined, bodySize: 0, body: undefined, received: 0, requestId: inFlight.requestId };
      return; // the reply is emitted when its content is complete
    }
    this.onReply(ch, m, undefined);
  }

  /** After we sent channel.close: only close-ok (and the broker's own close) matter; acks still settle. */
  private handleClosingChannelMethod(ch: ChannelState, m: Method): void {
    switch (m.name) {
      case "channel.close-ok": {
        const requestId = ch.closeRequestId;
        ch.closeRequestId = 0;
        if (requestId !== 0) this.emit({ type: "reply", channel: ch.id, requestId, method: m, message: undefined });
        this.closeChannelState(ch, ch.closeReason!);
        return;
      }
      case "channel.close":
        this.writeMethod(ch.id, { name: "channel.close-ok", classId: 20, methodId: 41 });
        return;
      case "basic.ack":
      case "basic.nack":
        this.onConfirm(ch, m.deliveryTag, m.multiple, m.name === "basic.ack");
        return;
      default:
        if (METHOD_INFO.get(m.name)?.content) {
          // its header and body frames follow: take them in, then drop the message
          ch.assembly = { method: m, properties: undefined, bodySize: 0, body: undefined, received: 0, requestId: 0 };
        }
        return;
    }
  }

  private onReply(ch: ChannelState, m: Method, message: Message | undefined): void {
    const inFlight = ch.inFlight!;
    ch.inFlight = undefined;
    switch (m.name) {
      case "channel.open-ok":
        ch.lifecycle = "open";
        break;
      case "basic.consume-ok":
        ch.consumers.add(m.consumerTag);
        break;
      case "basic.cancel-ok":
        ch.consumers.delete(m.consumerTag);
        break;
    }
    this.emit({ type: "reply", channel: ch.id, requestId: inFlight.requestId, method: m, message });
    this.flushQueue(ch);
  }

  private onConfirm(ch: ChannelState, deliveryTag: number | bigint, multiple: boolean, ack: boolean): void {
    for (const seq of ch.settle(deliveryTag, multiple)) {
      const returned = ch.returned.get(seq);
      if (returned) ch.returned.delete(seq);
      this.emit({ type: "publishConfirmed", channel: ch.id, seq, ack, returned });
    }
  }

  private handleHeader(ch: ChannelState, classId: number, bodySize: number | bigint, properties: BasicProperties): void {
    const a = ch.assembly;
    if (a === undefined || a.properties !== undefined) {
      this.protocolError(REPLY.UNEXPECTED_FRAME, `content header on channel ${ch.id} without a method to carry it`);
      return;
    }
    if (classId !== a.method.classId) {
      this.protocolError(REPLY.UNEXPECTED_FRAME, `content header for class ${classId} after ${a.method.name}`);
      return;
    }
    if (typeof bodySize === "bigint" || bodySize > this.options.maxBodySize) {
      // Too large to accept. Closing the channel makes the broker requeue it; nothing is lost or allocated.
      ch.assembly = undefined;
      if (ch.lifecycle !== "closing") {
        const text = `message body of ${bodySize} bytes is over the ${this.options.maxBodySize}-byte limit (maxBodySize)`; // < 255 bytes
        this.writeMethod(ch.id, { name: "channel.close", classId: 20, methodId: 40, replyCode: REPLY.CONTENT_TOO_LARGE, replyText: text, failingClassId: a.method.classId, failingMethodId: a.method.methodId });
        this.failQueued(ch, reason("protocol", REPLY.CONTENT_TOO_LARGE, text));
        ch.lifecycle = "closing";
        ch.closeRequestId = 0;
        ch.closeReason = reason("protocol", REPLY.CONTENT_TOO_LARGE, text, a.method.classId, a.method.methodId);
      }
      this.skipBody(ch, bodySize);
      return;
    }
    a.properties = properties;
    a.bodySize = bodySize;
    if (bodySize === 0) this.completeAssembly(ch, new Uint8Array(0));
  }

  /** Body frames still to come for an oversize message are dropped as they arrive. */
  private skipBody(ch: ChannelState, bodySize: number | bigint): void {
    ch.skipping = typeof bodySize === "bigint" ? Number.MAX_SAFE_INTEGER : bodySize;
  }

  private handleBody(ch: ChannelState, payload: Uint8Array): void {
    if (ch.skipping > 0) {
      ch.skipping -= payload.length;
      return;
    }
    const a = ch.assembly;
    if (a === undefined || a.properties === undefined) {
      this.protocolError(REPLY.UNEXPECTED_FRAME, `content body on channel ${ch.id} without a content header`);
      return;
    }
    const end = a.received + payload.length;
    if (end > a.bodySize) {
      this.protocolError(REPLY.FRAME_ERROR, `content body on channel ${ch.id} is longer than the ${a.bodySize} bytes its header announced`);
      return;
    }
    if (a.received === 0 && end === a.bodySize) {
      this.completeAssembly(ch, payload.slice()); // one frame: copy, so the message does not pin the read buffer
      return;
    }
    a.body ??= new Uint8Array(a.bodySize);
    a.body.set(payload, a.received);
    a.received = end;
    if (end === a.bodySize) this.completeAssembly(ch, a.body);
  }

  private completeAssembly(ch: ChannelState, body: Uint8Array): void {
    const a = ch.assembly!;
    ch.assembly = undefined;
    if (ch.lifecycle === "closing") return; // content that was in flight when we closed: dropped, the broker requeues
    const message: Message = { properties: a.properties!, body };
    const m = a.method;
    switch (m.name) {
      case "basic.deliver":
        this.emit({
          type: "delivery",
          channel: ch.id,
          consumerTag: m.consumerTag,
          deliveryTag: m.deliveryTag,
          redelivered: m.redelivered,
          exchange: m.exchange,
          routingKey: m.routingKey,
          message,
        });
        return;
      case "basic.get-ok":
        this.onReply(ch, m, message);
        return;
      case "basic.return": {
        const publishSeq = ch.confirm ? ch.matchReturn(m.exchange, m.routingKey) : undefined;
        const event: ReturnEvent = {
          type: "return",
          channel: ch.id,
          replyCode: m.replyCode,
          replyText: m.replyText,
          exchange: m.exchange,
          routingKey: m.routingKey,
          message,
          publishSeq,
        };
        if (publishSeq !== undefined) ch.returned.set(publishSeq, event);
        this.emit(event);
        return;
      }
    }
  }

  // -------------------------------------------------------------------------------------------------------
  // Frames out

  private writeConnection(m: Method): void {
    encodeMethodFrame(this.out, 0, m);
  }

  private writeMethod(channel: number, m: Method): void {
    encodeMethodFrame(this.out, channel, m);
  }

  private writeCall(ch: ChannelState, requestId: number, method: Method): void {
    this.encodeOrThrow(ch.id, method);
    ch.inFlight = { requestId, method, responses: METHOD_INFO.get(method.name)!.responses };
  }

  private writeSend(ch: ChannelState, method: Method): void {
    this.encodeOrThrow(ch.id, method);
    if (method.name === "basic.consume") ch.consumers.add(method.consumerTag);
    else if (method.name === "basic.cancel") ch.consumers.delete(method.consumerTag);
  }

  /** Writes queued items in order until one is a request (which then waits for its reply). */
  private flushQueue(ch: ChannelState): void {
    while (ch.inFlight === undefined && ch.queue.length > 0 && ch.lifecycle === "open") {
      const item = ch.queue.shift()!;
      if (item.kind === "call") this.writeCall(ch, item.requestId, item.method);
      else if (item.kind === "send") this.writeSend(ch, item.method);
      else encodeContent(this.out, ch.id, item.method, item.properties, item.body, this.frameMax);
    }
  }

  // -------------------------------------------------------------------------------------------------------
  // Closing

  /** Fails what was queued but never sent on a channel. */
  private failQueued(ch: ChannelState, why: CloseReason): void {
    const queued: Outgoing[] = ch.queue;
    ch.queue = [];
    for (const item of queued) {
      if (item.kind === "call") this.emit({ type: "requestFailed", channel: ch.id, requestId: item.requestId, reason: why });
    }
  }

  /** A channel is gone: settle everything pending on it, forget it, report it. */
  private closeChannelState(ch: ChannelState, why: CloseReason): void {
    this.failQueued(ch, why);
    if (ch.inFlight) {
      this.emit({ type: "requestFailed", channel: ch.id, requestId: ch.inFlight.requestId, reason: why });
      ch.inFlight = undefined;
    }
    if (ch.closeRequestId !== 0) {
      this.emit({ type: "requestFailed", channel: ch.id, requestId: ch.closeRequestId, reason: why });
      ch.closeRequestId = 0;
    }
    for (const seq of ch.unconfirmed.keys()) this.emit({ type: "publishFailed", channel: ch.id, seq, reason: why });
    ch.unconfirmed.clear();
    ch.returned.clear();
    ch.consumers.clear();
    ch.assembly = undefined;
    this.channels.delete(ch.id);
    this.emit({ type: "channelClosed", channel: ch.id, reason: why });
  }

  private startClosing(why: CloseReason, replyCode: number, replyText: string, classId: number, methodId: number): void {
    this.writeConnection({ name: "connection.close", classId: 10, methodId: 50, replyCode, replyText: truncateUtf8(replyText, 255), failingClassId: classId, failingMethodId: methodId });
    this.state = "closing";
    this.closeReason = why;
    this.handshakeDeadline = undefined;
    // Commands carry no time: the wait for close-ok starts when the close is handed out by pollTransmit(now).
    this.closeDeadline = undefined;
    this.closeDeadlinePending = true;
  }

  /** The broker broke the protocol: connection.close with the matching code, then the close handshake. */
  private protocolError(replyCode: number, text: string, m?: Method): void {
    if (this.state === "closing" || this.state === "closed") return;
    const classId = m?.classId ?? 0;
    const methodId = m?.methodId ?? 0;
    this.startClosing(reason("protocol", replyCode, text, classId, methodId), replyCode, text, classId, methodId);
  }

  /** Ends at once, telling the broker why when the connection got far enough to say so. */
  private abortConnection(replyCode: number, text: string, initiator: CloseReason["initiator"] = "protocol"): void {
    if (this.state === "closed") return;
    if (this.state !== "awaitingStart" && this.state !== "closing" && replyCode > 0) {
      this.writeConnection({ name: "connection.close", classId: 10, methodId: 50, replyCode, replyText: truncateUtf8(text, 255), failingClassId: 0, failingMethodId: 0 });
    }
    this.finish(reason(initiator, replyCode, text));
  }

  /** The connection is over: fail everything pending, report every channel closed, then the connection. */
  private finish(why: CloseReason): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.handshakeDeadline = undefined;
    this.closeDeadline = undefined;
    this.heartbeatMs = 0;
    for (const ch of [...this.channels.values()]) this.closeChannelState(ch, why);
    for (const requestId of this.secretRequests) this.emit({ type: "requestFailed", channel: 0, requestId, reason: why });
    this.secretRequests = [];
    this.emit({ type: "connectionClosed", reason: why });
  }

  // -------------------------------------------------------------------------------------------------------
  // Helpers

  private emit(e: MachineEvent): void {
    this.events.push(e);
  }

  private assertOpen(): void {
    if (this.state === "open") return;
    if (this.state === "closing" || this.state === "closed") throw new UsageError("CONNECTION_CLOSED", "The connection is closed");
    throw new UsageError("NOT_OPEN", "The connection is not open yet: wait for handshakeDone");
  }

  private usableChannel(id: number): ChannelState {
    this.assertOpen();
    const ch = this.channels.get(id);
    if (!ch || ch.lifecycle === "closing") throw new UsageError("CHANNEL_CLOSED", `Channel ${id} is closed`);
    return ch;
  }

  /** Writes a method frame, or throws a UsageError for a bad argument leaving the output as it was. */
  private encodeOrThrow(channel: number, method: Method): void {
    const before = this.out.length;
    try {
      encodeMethodFrame(this.out, channel, method, this.frameMax);
    } catch (e) {
      this.out.pos = this.out.start + before;
      throw this.usageFromEncode(e);
    }
  }

  /**
   * Encodes a method (and a publish's properties) into a scratch writer, so that a bad argument throws before
   * anything is queued — not later, from inside `handleInput`, when the queue is flushed.
   */
  private checkEncodable(method: Method, properties?: BasicProperties): void {
    try {
      encodeMethodFrame(scratch, 0, method, this.frameMax);
      if (properties) encodeHeaderFrame(scratch, 0, 60, 0, properties, this.frameMax);
    } catch (e) {
      throw this.usageFromEncode(e);
    } finally {
      scratch.discard();
    }
  }

  private usageFromEncode(e: unknown): unknown {
    if (e instanceof EncodeError) return new UsageError("INVALID_ARGUMENT", e.message);
    if (e instanceof RangeError || e instanceof TypeError) return new UsageError("INVALID_ARGUMENT", e.message);
    return e;
  }
}

const scratch = new Writer(4096);

function checkReplyCode(code: number): void {
  if (!Number.isInteger(code) || code < 0 || code > 0xffff) throw new UsageError("INVALID_ARGUMENT", `Reply code ${code} is not a 16-bit integer`);
}

/** `s` cut to at most `max` bytes of UTF-8, never inside a character. */
export function truncateUtf8(s: string, max: number): string {
  if (s.length * 3 <= max || utf8Length(s) <= max) return s;
  let n = 0;
  let i = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < s.length;
    const size = c < 0x80 ? 1 : c < 0x800 ? 2 : pair ? 4 : 3;
    if (n + size > max) break;
    n += size;
    if (pair) i++;
  }
  return s.slice(0, i);
}
