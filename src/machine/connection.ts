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
 * - Caller misuse throws a CommandError synchronously and changes nothing.
 * - Every request and every confirm-mode publish settles exactly once (see events.ts); `connectionClosed` is
 *   the last event. Failures say their scope: the channel's own close, or the connection's.
 * - Frames of one message (method, header, body…) are written in one call, so messages on different
 *   channels never interleave inside one another.
 * - This file owns the library's only inbound buffer (the FrameDecoder).
 *
 * The pieces, joined through `MachineCore` (core.ts) so none imports this file: handshake.ts (the handshake
 * table), lifecycle.ts (closing and ending), timers.ts (every deadline), pipeline.ts (channel work out),
 * inbound.ts (channel frames in), content.ts (message reassembly), channel.ts (per-channel state and
 * confirms), channel-zero.ts (blocked, update-secret), transmit.ts (output).
 */
import { DecodeError } from "../codec/errors.ts";
import type { FieldTable } from "../codec/amqp/field-table.ts";
import { encodeHeartbeatFrame, encodeMethodFrame, type Frame, PROTOCOL_HEADER } from "../codec/amqp/frames.ts";
import { FrameDecoder } from "../codec/amqp/frame-decoder.ts";
import type { Method } from "../codec/amqp/methods.generated.ts";
import type { PublishProperties } from "../codec/amqp/properties.ts";
import { ChannelState, freeChannelId } from "./channel.ts";
import { ChannelZero } from "./channel-zero.ts";
import { Lifecycle } from "./lifecycle.ts";
import { EventQueue, reason, REPLY, truncateUtf8 } from "./core.ts";
import { CommandError } from "./errors.ts";
import type { MachineEvent } from "./events.ts";
import { Handshake, type HandshakeHost, WARREN_VERSION } from "./handshake.ts";
import { ChannelInput } from "./inbound.ts";
import { type MachineOptions, resolveOptions, type ResolvedOptions, type Tuned } from "./options.ts";
import { assertCallable, assertSendable, failQueued, Pipeline } from "./pipeline.ts";
import { TIMER, Timers } from "./timers.ts";
import { Transmit } from "./transmit.ts";

export { WARREN_VERSION, truncateUtf8 };

export class ConnectionMachine {
  private readonly options: ResolvedOptions;
  private readonly decoder: FrameDecoder;
  private readonly transmit = new Transmit();
  private readonly events = new EventQueue();
  private readonly timers: Timers;
  private readonly handshake: Handshake;
  private readonly pipeline: Pipeline;
  private readonly inbound: ChannelInput;
  private readonly channelZero: ChannelZero;
  private readonly core: HandshakeHost;

  private readonly life: Lifecycle;
  private readonly channels = new Map<number, ChannelState>();
  private nextRequestId = 1;
  private frameMax: number;
  private channelMax = 0xffff;
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
    this.options = { ...resolved, password: "" };
    this.frameMax = resolved.frameMax;
    this.decoder = new FrameDecoder({ frameMax: resolved.frameMax });
    const timers = (this.timers = new Timers(now, resolved.handshakeTimeout, resolved.closeTimeout));
    this.life = new Lifecycle({
      out: this.transmit.out,
      timers,
      saidHello: () => this.life.state !== "handshake" || this.handshake.state !== "awaitingStart",
      forgetSecrets: () => this.handshake.forget(),
      settleAll: (why) => {
        for (const ch of [...this.channels.values()]) this.inbound.closeChannel(ch, why, "connection");
        this.channelZero.failAll(why);
      },
      emit: (e) => this.events.push(e),
    });
    const core = (this.core = this.makeCore());
    this.handshake = new Handshake(core, resolved.password);
    this.pipeline = new Pipeline(core);
    this.inbound = new ChannelInput(core, this.pipeline, this.channels);
    this.channelZero = new ChannelZero(core);
    this.transmit.out.raw(PROTOCOL_HEADER);
  }

  /** The interface the pieces act through (see core.ts). */
  private makeCore(): HandshakeHost {
    const self = this;
    return {
      options: this.options,
      out: this.transmit.out,
      get frameMax() {
        return self.frameMax;
      },
      emit: (e) => this.events.push(e),
      writeMethod: (channel, m) => encodeMethodFrame(this.transmit.out, channel, m),
      writeSecret: (m) => this.transmit.writeSecret(0, m),
      protocolError: (code, text, m) => this.life.protocolError(code, text, m),
      abort: (code, why) => this.life.abort(code, why),
      tuned: (t) => this.onTuned(t),
      opened: (props) => this.onOpened(props),
    };
  }

  // -------------------------------------------------------------------------------------------------------
  // Queries

  /** True once the handshake is done and until the connection starts closing. */
  get isOpen(): boolean {
    return this.life.state === "open";
  }
  /** True after `connectionClosed` was emitted. */
  get isClosed(): boolean {
    return this.life.state === "closed";
  }
  /** Negotiated frame_max (the requested one until tuning). */
  get negotiatedFrameMax(): number {
    return this.frameMax;
  }
  /** Bytes written by commands and not yet taken by `pollTransmit`. */
  get pendingTransmit(): number {
    return this.transmit.length;
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
    if (this.life.state === "closed" || bytes.length === 0) return;
    this.timers.received(now);
    this.decoder.push(bytes);
    for (;;) {
      let frame: Frame | undefined;
      try {
        frame = this.decoder.next();
      } catch (e) {
        const err = e instanceof DecodeError ? e : new DecodeError("FRAME_INVALID", String(e));
        // The stream has lost its framing: say why, and stop without waiting for a close-ok we could not read.
        this.life.abort(err.replyCode, reason("protocol", err.replyCode, err.message));
        return;
      }
      if (frame === undefined) return;
      this.handleFrame(frame);
      if (this.isClosed) return;
    }
  }

  /** The transport ended: the peer closed it, or it failed. */
  handleEnd(now: number): void {
    void now;
    if (this.life.state === "closed") return;
    if (this.life.state === "closing" && this.life.closeReason) {
      this.life.finish(this.life.closeReason);
      return;
    }
    const text = this.life.state === "handshake" ? this.handshake.endedText() : "connection lost: the transport closed";
    this.life.finish(reason("transport", 0, text));
  }

  /**
   * The caller stopped (true) or resumed (false) reading from the transport — say, for a consumer that fell
   * behind. Silence from the broker proves nothing while we are not listening, so the dead-peer check is
   * suspended meanwhile and starts afresh on resume. (Our own heartbeats still go out.)
   */
  handleReadPaused(paused: boolean, now: number): void {
    this.timers.setReadPaused(paused, now);
  }

  /** Call when the time from `pollTimeout()` has come (late is fine, early is a no-op). */
  handleTimeout(now: number): void {
    if (this.life.state === "closed") return;
    const t = this.timers;
    if (t.due(TIMER.handshake, now)) {
      this.life.finish(reason("transport", 0, `connection timed out: the AMQP handshake did not finish within ${this.options.handshakeTimeout} ms`));
      return;
    }
    if (t.due(TIMER.closeOk, now)) {
      this.life.finish(this.life.closeReason ?? reason("client", 200, "closed"));
      return;
    }
    if (t.due(TIMER.deadPeer, now) && t.judgePeer(now)) {
      this.life.abort(0, reason("transport", 0, `missed heartbeats: nothing received from the broker for ${t.silentFor(now)} ms`));
      return;
    }
    if (t.due(TIMER.heartbeat, now)) {
      encodeHeartbeatFrame(this.transmit.out);
      t.heartbeatWritten();
    }
  }

  // -------------------------------------------------------------------------------------------------------
  // Outputs

  /** Bytes to write to the transport, now owned by the caller; undefined when there are none. */
  pollTransmit(now: number): Uint8Array | undefined {
    const bytes = this.transmit.take();
    if (bytes !== undefined) this.timers.sent(now);
    return bytes;
  }

  /** The earliest time `handleTimeout` must be called, or undefined for none. Re-read after every call. */
  pollTimeout(): number | undefined {
    return this.timers.earliest();
  }

  /** The next event, or undefined when there is none. */
  pollEvent(): MachineEvent | undefined {
    return this.events.shift();
  }

  // -------------------------------------------------------------------------------------------------------
  // Commands

  /**
   * Opens a channel on the next free id after the last one handed out (wrapping at channel_max), so a
   * just-closed id is not reused at once. The request settles with channel.open-ok (or fails).
   * `preferred` asks for that channel number (it must be free and within channel_max).
   * @example const { channel, requestId } = m.openChannel();
   */
  openChannel(preferred?: number): { channel: number; requestId: number } {
    this.assertOpen();
    let id: number;
    if (preferred !== undefined) {
      // A channel that must keep its number (a client recovering a connection reopens its channels as they were).
      if (!Number.isInteger(preferred) || preferred < 1 || preferred > this.channelMax) {
        throw new CommandError("INVALID_ARGUMENT", `Cannot open channel ${preferred}: channel numbers go from 1 to ${this.channelMax}`);
      }
      if (this.channels.has(preferred)) throw new CommandError("INVALID_ARGUMENT", `Cannot open channel ${preferred}: it is in use`);
      id = preferred;
    } else {
      id = freeChannelId(this.channels, this.nextChannelHint, this.channelMax);
      if (id === 0) throw new CommandError("CHANNEL_LIMIT", `Cannot open a channel: all ${this.channelMax} channels are in use`);
    }
    this.nextChannelHint = (id % this.channelMax) + 1;
    const ch = new ChannelState(id);
    this.channels.set(id, ch);
    const requestId = this.nextRequestId++;
    this.pipeline.call(ch, requestId, { name: "channel.open", classId: 20, methodId: 10 });
    return { channel: id, requestId };
  }

  /**
   * Sends a synchronous method (queue.declare, basic.consume, confirm.select, …) with no-wait off. Requests
   * on one channel go out one at a time, in order. Returns the request id its `reply` event will carry.
   */
  call(channel: number, method: Method): number {
    const ch = this.usableChannel(channel);
    assertCallable(method);
    const requestId = this.nextRequestId;
    this.pipeline.call(ch, requestId, method);
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
    assertSendable(method);
    this.pipeline.send(ch, method);
    if (method.name === "confirm.select") ch.confirm = true;
  }

  /**
   * Publishes a message: method, header and body frames written together (or, behind a request in flight,
   * encoded now into bytes the machine owns: the caller may reuse `body` and `properties` at once). In confirm
   * mode returns the publish's sequence number (from 1 per channel), which a `publishConfirmed` or
   * `publishFailed` event settles; otherwise returns 0.
   */
  publish(channel: number, exchange: string, routingKey: string, body: Uint8Array, properties: PublishProperties = {}, mandatory = false, immediate = false): number {
    const ch = this.usableChannel(channel);
    this.pipeline.publish(ch, { name: "basic.publish", classId: 60, methodId: 40, exchange, routingKey, mandatory, immediate }, properties, body);
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
    if (!ch || ch.lifecycle === "closing") throw new CommandError("CHANNEL_CLOSED", `Cannot close channel ${channel}: it is not open`);
    checkReplyCode(replyCode);
    const why = reason("client", replyCode, replyText);
    this.pipeline.writeNow(channel, { name: "channel.close", classId: 20, methodId: 40, replyCode, replyText, failingClassId: 0, failingMethodId: 0 });
    const requestId = this.nextRequestId++;
    failQueued(this.core, ch, why, "channel");
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
    if (this.life.state === "closing" || this.life.state === "closed") return;
    checkReplyCode(replyCode);
    const why = reason("client", replyCode, replyText);
    if (this.life.state !== "open") this.life.finish(why);
    else this.life.startClosing(why);
  }

  /** connection.update-secret (e.g. a refreshed OAuth 2 token). The request settles with update-secret-ok. */
  updateSecret(newSecret: Uint8Array, reasonText: string): number {
    this.assertOpen();
    this.pipeline.writeNow(0, { name: "connection.update-secret", classId: 10, methodId: 70, newSecret, reason: reasonText });
    const requestId = this.nextRequestId++;
    this.channelZero.secretSent(requestId);
    return requestId;
  }

  // -------------------------------------------------------------------------------------------------------
  // Frames in

  private handleFrame(frame: Frame): void {
    if (frame.type === 8) return; // heartbeat: receiving it was the point
    if (frame.type === "protocol-header") {
      this.life.finish(reason("protocol", 0, `the server does not speak AMQP 0-9-1: it answered with protocol version ${frame.major}-${frame.minor}-${frame.revision}`));
      return;
    }
    if (frame.channel === 0) {
      if (frame.type !== 1) this.life.protocolError(REPLY.UNEXPECTED_FRAME, `unexpected content frame on channel 0`);
      else this.handleConnectionMethod(frame.method);
      return;
    }
    if (this.life.state === "closing") return; // after connection.close only close/close-ok count (channel 0)
    if (this.life.state !== "open") {
      this.life.protocolError(REPLY.UNEXPECTED_FRAME, `frame on channel ${frame.channel} before the connection is open`);
      return;
    }
    const ch = this.channels.get(frame.channel);
    if (!ch) this.life.protocolError(REPLY.CHANNEL_ERROR, `frame on channel ${frame.channel}, which is not open`);
    else if (frame.type === 1) this.inbound.method(ch, frame.method);
    else if (frame.type === 2) this.inbound.content.header(ch, frame.classId, frame.bodySize, frame.properties);
    else this.inbound.content.body(ch, frame.payload);
  }

  private handleConnectionMethod(m: Method): void {
    if (m.name === "connection.close") {
      // Answer close-ok, even while closing ourselves (both sides closed at once), then we are done.
      encodeMethodFrame(this.transmit.out, 0, { name: "connection.close-ok", classId: 10, methodId: 51 });
      this.life.finish(reason("broker", m.replyCode, m.replyText, m.failingClassId, m.failingMethodId));
      return;
    }
    if (this.life.state === "closing") {
      if (m.name === "connection.close-ok") this.life.finish(this.life.closeReason!);
      return; // after connection.close only close/close-ok count
    }
    if (this.life.state === "handshake") this.handshake.handle(m);
    else this.channelZero.handle(m);
  }

  private onTuned(t: Tuned): void {
    this.channelMax = t.channelMax;
    this.frameMax = t.frameMax;
    this.decoder.frameMax = t.frameMax;
    this.timers.startHeartbeats(t.heartbeat * 1000);
  }

  private onOpened(serverProperties: FieldTable): void {
    this.life.state = "open";
    this.timers.handshakeDone();
    const { channelMax, frameMax } = this;
    this.events.push({ type: "handshakeDone", serverProperties, channelMax, frameMax, heartbeat: this.timers.heartbeat / 1000 });
  }

  // -------------------------------------------------------------------------------------------------------
  // Helpers

  private assertOpen(): void {
    if (this.life.state === "open") return;
    if (this.life.state === "closing" || this.life.state === "closed") throw new CommandError("CONNECTION_CLOSED", "The connection is closed");
    throw new CommandError("NOT_OPEN", "The connection is not open yet: wait for handshakeDone");
  }

  private usableChannel(id: number): ChannelState {
    this.assertOpen();
    const ch = this.channels.get(id);
    if (!ch || ch.lifecycle === "closing") throw new CommandError("CHANNEL_CLOSED", `Channel ${id} is closed`);
    return ch;
  }
}

function checkReplyCode(code: number): void {
  if (!Number.isInteger(code) || code < 0 || code > 0xffff) throw new CommandError("INVALID_ARGUMENT", `Reply code ${code} is not a 16-bit integer`);
}
