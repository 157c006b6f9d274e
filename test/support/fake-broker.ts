/**
 * A scripted fake broker for the sans-IO machine: it plays RabbitMQ's side of the wire on a simulated clock,
 * with no sockets and no real time.
 *
 * - What the machine transmits (`pollTransmit(now)`) is checked to start with the protocol header, then
 *   decoded with a FrameDecoder; tests read it in order with `expectMethod`, `expectContent`, `takeFrames`.
 * - What the broker sends is built with the codec's encoders and fed to `handleInput`, optionally in small
 *   chunks (`chunking`), so a test can also prove that the split of the byte stream does not matter.
 * - Every event the machine emits is collected in `events`; tests read new ones with `expectEvent` or
 *   `takeEvents`.
 * - `advance(ms)` moves the clock and calls `handleTimeout(now)`; `end()` is the end of the stream.
 *
 * Nothing here imports vitest: the fuzz target runs this file outside the test runner, so failed
 * expectations are plain `Error`s with a message that says what was expected and what came.
 *
 * @example
 * const broker = new FakeBroker();
 * broker.handshake();
 * const ch = broker.openChannel();
 * const id = broker.machine.call(ch, method("queue.declare", { queue: "q" }));
 * broker.expectMethod("queue.declare", { channel: ch });
 * broker.reply(ch, method("queue.declare-ok", { queue: "q" }));
 * broker.expectEvent("reply").requestId === id;
 */
import { decodeFieldTable, encodeFieldTable, type FieldTable } from "../../src/codec/amqp/field-table.ts";
import { FrameDecoder } from "../../src/codec/amqp/frame-decoder.ts";
import {
  encodeBodyFrames,
  encodeHeaderFrame,
  encodeHeartbeatFrame,
  encodeMethodFrame,
  type Frame,
  PROTOCOL_HEADER,
} from "../../src/codec/amqp/frames.ts";
import { METHODS, type Method, type MethodByName, type MethodName } from "../../src/codec/amqp/methods.generated.ts";
import type { BasicProperties } from "../../src/codec/amqp/properties.ts";
import { Cursor } from "../../src/codec/cursor.ts";
import type { Int64 } from "../../src/codec/parsers.ts";
import { encodeUtf8 } from "../../src/codec/utf8.ts";
import { Writer } from "../../src/codec/writer.ts";
import { concat } from "./bytes.ts";
import { ConnectionMachine } from "../../src/machine/connection.ts";
import type { HandshakeDoneEvent, MachineEvent } from "../../src/machine/events.ts";
import type { MachineOptions } from "../../src/machine/options.ts";

// ---------------------------------------------------------------------------------------------------------
// Small helpers

/** The simulated clock: a number that only moves when a test says so. */
export class SimClock {
  now: number;
  constructor(start = 0) {
    this.now = start;
  }
  /** Moves the clock forward and returns the new time. */
  advance(ms: number): number {
    this.now += ms;
    return this.now;
  }
}

function fail(message: string): never {
  throw new Error(message);
}

/** JSON that survives bigints and bytes, for error messages. */
export function show(v: unknown): string {
  return JSON.stringify(v, (_, x: unknown) => {
    if (typeof x === "bigint") return `${x}n`;
    if (x instanceof Uint8Array) return `<${x.length} bytes>`;
    return x;
  });
}

type MethodFields<N extends MethodName> = Omit<MethodByName[N], "name" | "classId" | "methodId">;

const INFO = new Map(METHODS.map((m) => [m.name, m]));

/**
 * A whole method from its name: every argument gets its zero value (false, 0, "", empty bytes, empty table)
 * unless given.
 * @example method("queue.declare", { queue: "q", durable: true })
 */
export function method<N extends MethodName>(name: N, fields: Partial<MethodFields<N>> = {}): MethodByName[N] {
  const info = INFO.get(name) ?? fail(`no method ${name}`);
  const m: Record<string, unknown> = { name, classId: info.classId, methodId: info.methodId };
  for (const f of info.fields) {
    if (f.reserved) continue;
    switch (f.type) {
      case "bit":
        m[f.name] = false;
        break;
      case "shortstr":
        m[f.name] = "";
        break;
      case "longstr":
        m[f.name] = new Uint8Array(0);
        break;
      case "table":
        m[f.name] = {};
        break;
      default:
        m[f.name] = 0;
    }
  }
  return { ...m, ...fields } as unknown as MethodByName[N];
}

/** Bytes written by `write` into a fresh Writer. */
export function bytesOf(write: (w: Writer) => void): Uint8Array {
  const w = new Writer(256);
  write(w);
  return w.finish().slice();
}

export function methodFrame(channel: number, m: Method): Uint8Array {
  return bytesOf((w) => encodeMethodFrame(w, channel, m));
}

export function contentFrames(channel: number, m: Method, body: Uint8Array, properties: BasicProperties, frameMax: number): Uint8Array {
  // Not encodeContent: that refuses method/header frames over frameMax, and tests split bodies into tiny frames.
  return bytesOf((w) => {
    encodeMethodFrame(w, channel, m);
    encodeHeaderFrame(w, channel, m.classId, body.length, properties);
    encodeBodyFrames(w, channel, body, frameMax);
  });
}

export function headerFrame(channel: number, bodySize: Int64, properties: BasicProperties = {}): Uint8Array {
  return bytesOf((w) => encodeHeaderFrame(w, channel, 60, bodySize, properties));
}

/** One body frame carrying exactly `payload` (whatever its size). */
export function bodyFrame(channel: number, payload: Uint8Array): Uint8Array {
  return bytesOf((w) => {
    w.u8(3);
    w.u16(channel);
    w.u32(payload.length);
    w.raw(payload);
    w.u8(0xce);
  });
}

export function heartbeatFrame(): Uint8Array {
  return bytesOf((w) => encodeHeartbeatFrame(w));
}

export function utf8(s: string): Uint8Array {
  return encodeUtf8(s);
}

/** Decodes AMQPLAIN's response: field-table entries without the table's length prefix. */
export function decodeAmqplain(response: Uint8Array): FieldTable {
  const framed = new Uint8Array(4 + response.length);
  new DataView(framed.buffer).setUint32(0, response.length);
  framed.set(response, 4);
  return decodeFieldTable(new Cursor(framed));
}

/** The server properties a RabbitMQ 4 sends in connection.start (abridged). */
export function rabbitServerProperties(): FieldTable {
  return {
    product: "RabbitMQ",
    version: "4.1.0",
    platform: "Erlang/OTP 27",
    capabilities: {
      publisher_confirms: true,
      exchange_exchange_bindings: true,
      "basic.nack": true,
      consumer_cancel_notify: true,
      "connection.blocked": true,
      consumer_priorities: true,
      authentication_failure_close: true,
      per_consumer_qos: true,
      direct_reply_to: true,
    },
  };
}

/** What `handshake()` plays; every field has RabbitMQ's default. */
export interface HandshakeScript {
  mechanisms?: string;
  serverProperties?: FieldTable;
  versionMajor?: number;
  versionMinor?: number;
  channelMax?: number;
  frameMax?: number;
  heartbeat?: number;
  /** Send connection.secure with this challenge after start-ok (the machine answers secure-ok). */
  secure?: Uint8Array;
}

/** A content-bearing message the client sent: method, header and body frames, read together. */
export interface ClientContent<N extends MethodName = MethodName> {
  readonly channel: number;
  readonly method: MethodByName[N];
  readonly properties: BasicProperties;
  readonly body: Uint8Array;
  /** The body frames' payload sizes, in order. */
  readonly bodyFrameSizes: number[];
}

/** A frame as a few words, for failure messages. */
export function describeFrame(f: Frame | undefined): string {
  if (f === undefined) return "nothing";
  switch (f.type) {
    case 1:
      return `${f.method.name} on channel ${f.channel}`;
    case 2:
      return `a content header (${String(f.bodySize)} bytes) on channel ${f.channel}`;
    case 3:
      return `a ${f.payload.length}-byte body frame on channel ${f.channel}`;
    case 8:
      return "a heartbeat";
    default:
      return "a protocol header";
  }
}

// ---------------------------------------------------------------------------------------------------------
// The fake broker

export class FakeBroker {
  readonly clock: SimClock;
  readonly machine: ConnectionMachine;
  /** Every frame the machine transmitted, in order (the protocol header excluded). */
  readonly sent: Frame[] = [];
  /** Every event the machine emitted, in order. */
  readonly events: MachineEvent[] = [];
  /** Every chunk `pollTransmit` returned, as returned. */
  readonly transmits: Uint8Array[] = [];
  /** Feed broker bytes in chunks of at most this many bytes (0: each send in one piece). */
  chunking = 0;
  /** Frame size the broker splits content bodies by; defaults to the negotiated frame_max. */
  contentFrameMax: number | undefined;

  private readonly decoder = new FrameDecoder({ frameMax: 0 });
  private headerBytes: Uint8Array = new Uint8Array(0);
  private headerChecked = false;
  private readCursor = 0;
  private eventCursor = 0;

  /**
   * @param options the machine's options
   * @param start the simulated clock's start time in ms
   */
  constructor(options: MachineOptions = {}, start = 0) {
    this.clock = new SimClock(start);
    this.machine = new ConnectionMachine(options, start);
  }

  get now(): number {
    return this.clock.now;
  }

  // -------------------------------------------------------------------------------------------------------
  // Pumping

  /** Drains `pollTransmit` and `pollEvent` into `sent` and `events`. Every other call does this itself. */
  pump(): void {
    for (let out = this.machine.pollTransmit(this.now); out !== undefined; out = this.machine.pollTransmit(this.now)) {
      this.transmits.push(out);
      this.receive(out);
    }
    for (let e = this.machine.pollEvent(); e !== undefined; e = this.machine.pollEvent()) this.events.push(e);
  }

  /** True once the machine's protocol header was checked. */
  get headerReceived(): boolean {
    return this.headerChecked;
  }

  private receive(bytes: Uint8Array): void {
    let rest = bytes;
    if (!this.headerChecked) {
      const need = PROTOCOL_HEADER.length - this.headerBytes.length;
      this.headerBytes = concat([this.headerBytes, rest.subarray(0, need)]);
      rest = rest.subarray(need);
      if (this.headerBytes.length < PROTOCOL_HEADER.length) return;
      for (let i = 0; i < PROTOCOL_HEADER.length; i++) {
        if (this.headerBytes[i] !== PROTOCOL_HEADER[i]) {
          fail(`the machine must send the protocol header AMQP 0 0 9 1 first, sent ${Array.from(this.headerBytes).join(" ")}`);
        }
      }
      this.headerChecked = true;
    }
    if (rest.length === 0) return;
    this.decoder.push(rest);
    try {
      for (let f = this.decoder.next(); f !== undefined; f = this.decoder.next()) this.sent.push(f);
    } catch (e) {
      fail(`the machine transmitted bytes that are not valid frames (${e instanceof Error ? e.message : String(e)})`);
    }
  }

  // -------------------------------------------------------------------------------------------------------
  // What the client sent

  /** Frames transmitted and not yet read by an expect or take call. */
  unread(): Frame[] {
    this.pump();
    return this.sent.slice(this.readCursor);
  }

  /** Reads every unread frame. */
  takeFrames(): Frame[] {
    const out = this.unread();
    this.readCursor = this.sent.length;
    return out;
  }

  /** Reads every unread frame and returns the method frames among them as "name@channel" strings. */
  takeMethodNames(): string[] {
    return this.takeFrames().flatMap((f) => (f.type === 1 ? [`${f.method.name}@${f.channel}`] : []));
  }

  private nextFrame(): Frame | undefined {
    this.pump();
    const f = this.sent[this.readCursor];
    if (f !== undefined) this.readCursor++;
    return f;
  }

  /** The next frame the machine sent must be method `name` (on `channel` when given); returns it. */
  expectMethod<N extends MethodName>(name: N, opts: { channel?: number } = {}): MethodByName[N] {
    const f = this.nextFrame();
    if (f === undefined || f.type !== 1 || f.method.name !== name || (opts.channel !== undefined && f.channel !== opts.channel)) {
      fail(`expected the client to send ${name}${opts.channel !== undefined ? ` on channel ${opts.channel}` : ""}, it sent ${describeFrame(f)}`);
    }
    return f.method as MethodByName[N];
  }

  /** The next frames must be one whole message: the method, its header and its body frames. */
  expectContent<N extends MethodName = "basic.publish">(name: N = "basic.publish" as N, opts: { channel?: number } = {}): ClientContent<N> {
    const f = this.nextFrame();
    if (f === undefined || f.type !== 1 || f.method.name !== name || (opts.channel !== undefined && f.channel !== opts.channel)) {
      fail(`expected the client to send ${name}${opts.channel !== undefined ? ` on channel ${opts.channel}` : ""}, it sent ${describeFrame(f)}`);
    }
    const channel = f.channel;
    const h = this.nextFrame();
    if (h === undefined || h.type !== 2 || h.channel !== channel) fail(`expected a content header on channel ${channel} right after ${name}, got ${describeFrame(h)}`);
    const size = Number(h.bodySize);
    const parts: Uint8Array[] = [];
    const sizes: number[] = [];
    let got = 0;
    while (got < size) {
      const b = this.nextFrame();
      if (b === undefined || b.type !== 3 || b.channel !== channel) {
        fail(`expected body frames on channel ${channel} until ${size} bytes (have ${got}), got ${describeFrame(b)}`);
      }
      parts.push(b.payload);
      sizes.push(b.payload.length);
      got += b.payload.length;
    }
    return { channel, method: f.method as MethodByName[N], properties: h.properties, body: concat(parts), bodyFrameSizes: sizes };
  }

  /** The next frame must be a heartbeat. */
  expectHeartbeat(): void {
    const f = this.nextFrame();
    if (f === undefined || f.type !== 8) fail(`expected a heartbeat, the client sent ${describeFrame(f)}`);
  }

  /** The machine must have sent nothing since the last read. */
  expectNothingSent(): void {
    const f = this.unread()[0];
    if (f !== undefined) fail(`expected the client to send nothing, it sent ${describeFrame(f)}`);
  }

  // -------------------------------------------------------------------------------------------------------
  // What the broker sends

  /** Feeds raw bytes to the machine (in `chunking`-sized pieces when set), then pumps. */
  sendBytes(bytes: Uint8Array, chunking = this.chunking): void {
    if (chunking <= 0) this.machine.handleInput(bytes, this.now);
    else for (let at = 0; at < bytes.length; at += chunking) this.machine.handleInput(bytes.slice(at, at + chunking), this.now);
    this.pump();
  }

  /** Sends a method frame. */
  send(channel: number, m: Method): void {
    this.sendBytes(methodFrame(channel, m));
  }

  /** Sends a method frame that answers a request (same as `send`; reads like the spec). */
  reply(channel: number, m: Method): void {
    this.send(channel, m);
  }

  /** Sends a content-bearing method with its header and body frames (bodies split by `frameMax`). */
  sendContent(channel: number, m: Method, body: Uint8Array, properties: BasicProperties = {}, frameMax?: number): void {
    this.sendBytes(contentFrames(channel, m, body, properties, frameMax ?? this.contentFrameMax ?? this.machine.negotiatedFrameMax));
  }

  /** basic.deliver with its content. */
  deliver(
    channel: number,
    consumerTag: string,
    deliveryTag: Int64,
    body: Uint8Array,
    properties: BasicProperties = {},
    opts: { redelivered?: boolean; exchange?: string; routingKey?: string; frameMax?: number } = {},
  ): void {
    const m = method("basic.deliver", {
      consumerTag,
      deliveryTag,
      redelivered: opts.redelivered ?? false,
      exchange: opts.exchange ?? "",
      routingKey: opts.routingKey ?? "q",
    });
    this.sendContent(channel, m, body, properties, opts.frameMax);
  }

  /** basic.return with its content (312 NO_ROUTE unless told). */
  returnMessage(channel: number, exchange: string, routingKey: string, body: Uint8Array, properties: BasicProperties = {}, replyCode = 312, replyText = "NO_ROUTE"): void {
    this.sendContent(channel, method("basic.return", { replyCode, replyText, exchange, routingKey }), body, properties);
  }

  /** basic.get-ok with its content. */
  getOk(channel: number, deliveryTag: Int64, body: Uint8Array, properties: BasicProperties = {}, messageCount = 0): void {
    this.sendContent(channel, method("basic.get-ok", { deliveryTag, exchange: "", routingKey: "q", messageCount }), body, properties);
  }

  /** basic.ack (publisher confirm). */
  ack(channel: number, deliveryTag: Int64, multiple = false): void {
    this.send(channel, method("basic.ack", { deliveryTag, multiple }));
  }

  /** basic.nack (publisher confirm). */
  nack(channel: number, deliveryTag: Int64, multiple = false): void {
    this.send(channel, method("basic.nack", { deliveryTag, multiple, requeue: false }));
  }

  /** channel.close from the broker. */
  closeChannel(channel: number, replyCode: number, replyText: string, failingClassId = 0, failingMethodId = 0): void {
    this.send(channel, method("channel.close", { replyCode, replyText, failingClassId, failingMethodId }));
  }

  /** connection.close from the broker. */
  closeConnection(replyCode: number, replyText: string, failingClassId = 0, failingMethodId = 0): void {
    this.send(0, method("connection.close", { replyCode, replyText, failingClassId, failingMethodId }));
  }

  heartbeat(): void {
    this.sendBytes(heartbeatFrame());
  }

  /** The transport ended. */
  end(): void {
    this.machine.handleEnd(this.now);
    this.pump();
  }

  /** Moves the clock and lets the machine's timer fire (`handleTimeout(now)`). */
  advance(ms: number): void {
    this.clock.advance(ms);
    this.machine.handleTimeout(this.now);
    this.pump();
  }

  /** Moves the clock to `t` and fires the timer there. */
  advanceTo(t: number): void {
    this.advance(t - this.now);
  }

  /** Moves the clock to the machine's next deadline (`pollTimeout()`) and fires the timer there. */
  fireTimer(): number {
    const t = this.machine.pollTimeout() ?? fail("expected the machine to have a timer armed");
    this.advanceTo(Math.max(t, this.now));
    return t;
  }

  // -------------------------------------------------------------------------------------------------------
  // Events

  /** Events not yet read. */
  unreadEvents(): MachineEvent[] {
    this.pump();
    return this.events.slice(this.eventCursor);
  }

  /** Reads every unread event. */
  takeEvents(): MachineEvent[] {
    const out = this.unreadEvents();
    this.eventCursor = this.events.length;
    return out;
  }

  /** The next unread event must be of `type`; returns it. */
  expectEvent<T extends MachineEvent["type"]>(type: T): Extract<MachineEvent, { type: T }> {
    this.pump();
    const e = this.events[this.eventCursor];
    if (e === undefined || e.type !== type) fail(`expected a ${type} event, got ${e === undefined ? "none" : show(e)}`);
    this.eventCursor++;
    return e as Extract<MachineEvent, { type: T }>;
  }

  /** No event may be waiting. */
  expectNoEvent(): void {
    const e = this.unreadEvents()[0];
    if (e !== undefined) fail(`expected no event, got ${show(e)}`);
  }

  // -------------------------------------------------------------------------------------------------------
  // Scripts

  /**
   * Plays the standard handshake: start (PLAIN AMQPLAIN, RabbitMQ's capabilities) → start-ok, [secure →
   * secure-ok,] tune (2047 / 131072 / 60 unless told) → tune-ok + open, open-ok → handshakeDone.
   */
  handshake(script: HandshakeScript = {}): HandshakeDoneEvent {
    this.pump();
    if (!this.headerChecked) fail("the machine did not send the protocol header");
    this.send(
      0,
      method("connection.start", {
        versionMajor: script.versionMajor ?? 0,
        versionMinor: script.versionMinor ?? 9,
        serverProperties: script.serverProperties ?? rabbitServerProperties(),
        mechanisms: utf8(script.mechanisms ?? "PLAIN AMQPLAIN"),
        locales: utf8("en_US"),
      }),
    );
    this.expectMethod("connection.start-ok", { channel: 0 });
    if (script.secure !== undefined) {
      this.send(0, method("connection.secure", { challenge: script.secure }));
      this.expectMethod("connection.secure-ok", { channel: 0 });
    }
    this.send(0, method("connection.tune", { channelMax: script.channelMax ?? 2047, frameMax: script.frameMax ?? 131072, heartbeat: script.heartbeat ?? 60 }));
    this.expectMethod("connection.tune-ok", { channel: 0 });
    this.expectMethod("connection.open", { channel: 0 });
    this.send(0, method("connection.open-ok"));
    return this.expectEvent("handshakeDone");
  }

  /** Opens a channel: openChannel, channel.open, open-ok, its reply event. Returns the channel number. */
  openChannel(): number {
    const { channel, requestId } = this.machine.openChannel();
    this.expectMethod("channel.open", { channel });
    this.reply(channel, method("channel.open-ok"));
    const e = this.expectEvent("reply");
    if (e.requestId !== requestId || e.channel !== channel) fail(`expected the reply to channel.open ${requestId}, got ${show(e)}`);
    return channel;
  }

  /** Calls confirm.select on a channel and answers it. */
  confirmSelect(channel: number): void {
    const id = this.machine.call(channel, method("confirm.select"));
    this.expectMethod("confirm.select", { channel });
    this.reply(channel, method("confirm.select-ok"));
    const e = this.expectEvent("reply");
    if (e.requestId !== id) fail(`expected the reply to confirm.select ${id}, got ${show(e)}`);
  }

  /** Calls basic.consume and answers consume-ok with `tag`. */
  consume(channel: number, queue: string, tag: string): void {
    const id = this.machine.call(channel, method("basic.consume", { queue, consumerTag: tag }));
    this.expectMethod("basic.consume", { channel });
    this.reply(channel, method("basic.consume-ok", { consumerTag: tag }));
    const e = this.expectEvent("reply");
    if (e.requestId !== id) fail(`expected the reply to basic.consume ${id}, got ${show(e)}`);
  }

  /** The client's close, answered: m.close() must have been called. */
  finishClose(): void {
    this.expectMethod("connection.close", { channel: 0 });
    this.send(0, method("connection.close-ok"));
  }
}

/** A broker whose handshake is done, for tests that start from an open connection. */
export function connected(options: MachineOptions = {}, script: HandshakeScript = {}): FakeBroker {
  const b = new FakeBroker(options);
  b.handshake(script);
  return b;
}

/** A field table encoded on its own (length prefix included), for tests that build raw payloads. */
export function tableBytes(t: FieldTable): Uint8Array {
  return bytesOf((w) => encodeFieldTable(w, t));
}

// ---------------------------------------------------------------------------------------------------------
// Settlement bookkeeping shared by the model test and the fuzz target

/**
 * Holds the machine to events.ts's settlement rules: every request id and every confirm-mode publish settles
 * exactly once, nothing is reported on a channel after its channelClosed (until reopened), and
 * connectionClosed comes once, last. Feed it every id a command returned and every event, in order;
 * `violations` collects what went wrong.
 */
export class Ledger {
  readonly violations: string[] = [];
  /** request id → settled count */
  readonly requests = new Map<number, number>();
  /** "channel/generation/seq" → settled count */
  readonly publishes = new Map<string, number>();
  private readonly generation = new Map<number, number>();
  /** Channels the machine reported closed and that were not reopened since. */
  readonly closedChannels = new Set<number>();
  connectionClosed = 0;
  private eventsAfterClose = 0;

  /** How many times `channel` was handed out by openChannel (publish keys carry it). */
  generationOf(channel: number): number {
    return this.generation.get(channel) ?? 0;
  }

  /** The key a publish is known by: channel, generation of that channel id, sequence number. */
  key(channel: number, seq: number): string {
    return `${channel}/${this.generationOf(channel)}/${seq}`;
  }

  /** A channel id handed out by openChannel: a new generation of that id. */
  opened(channel: number, requestId: number): void {
    this.generation.set(channel, (this.generation.get(channel) ?? 0) + 1);
    this.closedChannels.delete(channel);
    this.request(requestId);
  }

  request(requestId: number): void {
    if (this.requests.has(requestId)) this.violations.push(`request id ${requestId} handed out twice`);
    this.requests.set(requestId, 0);
  }

  published(channel: number, seq: number): void {
    if (seq === 0) return;
    const k = this.key(channel, seq);
    if (this.publishes.has(k)) this.violations.push(`publish seq ${k} handed out twice`);
    this.publishes.set(k, 0);
  }

  event(e: MachineEvent): void {
    if (this.connectionClosed > 0) {
      this.eventsAfterClose++;
      this.violations.push(`event after connectionClosed: ${show(e)}`);
    }
    if ("channel" in e && e.channel !== 0 && this.closedChannels.has(e.channel)) {
      this.violations.push(`event on channel ${e.channel} after its channelClosed: ${show(e)}`);
    }
    switch (e.type) {
      case "reply":
      case "requestFailed": {
        const n = this.requests.get(e.requestId);
        if (n === undefined) this.violations.push(`${e.type} for unknown request ${e.requestId}`);
        else if (n > 0) this.violations.push(`request ${e.requestId} settled twice (${e.type})`);
        this.requests.set(e.requestId, (n ?? 0) + 1);
        return;
      }
      case "publishConfirmed":
      case "publishFailed": {
        const k = this.key(e.channel, e.seq);
        const n = this.publishes.get(k);
        if (n === undefined) this.violations.push(`${e.type} for unknown publish ${k}`);
        else if (n > 0) this.violations.push(`publish ${k} settled twice (${e.type})`);
        this.publishes.set(k, (n ?? 0) + 1);
        return;
      }
      case "channelClosed":
        this.closedChannels.add(e.channel);
        return;
      case "connectionClosed":
        this.connectionClosed++;
        return;
      default:
        return;
    }
  }

  /** After connectionClosed: everything must have settled exactly once. */
  checkAllSettled(): void {
    if (this.connectionClosed !== 1) this.violations.push(`connectionClosed emitted ${this.connectionClosed} times`);
    for (const [id, n] of this.requests) if (n !== 1) this.violations.push(`request ${id} settled ${n} times`);
    for (const [k, n] of this.publishes) if (n !== 1) this.violations.push(`publish ${k} settled ${n} times`);
  }
}
