/**
 * The broker's side of one client connection, scripted by a test: it decodes what the client writes and
 * sends what the test tells it to. Unlike FakeBroker (which drives a bare machine), it sits behind a
 * transport — the in-process one of test/support/fake-runtime.ts, or a TCP socket in the client fuzz target —
 * so the whole client (promises, aborts, dispatch, settlement) runs as it does in an application.
 *
 * - The handshake answers itself: protocol header → connection.start, start-ok → tune, open → open-ok
 *   (`handshake: "silent"` leaves the client waiting for connection.start; `"manual"` leaves it to the test).
 * - channel.open, channel.close and connection.close from the client are answered automatically unless
 *   `autoReply` says otherwise; every frame is still logged in `received`.
 * - Everything else waits in order for `await peer.expectMethod(name)` / `expectContent()`.
 * - `send`, `sendContent`, `deliver`, `sendRaw` each hand the client one read; `batch(...)` hands it several
 *   frames in ONE read, which is how a real socket delivers a close that follows a reply.
 * - `end()` is the broker closing the socket, `fail(error)` the socket failing.
 *
 * Failed expectations are plain Errors naming what was expected and what came (no vitest import here: the
 * fuzz target uses this file outside the test runner).
 */
import type { FieldTable } from "../../src/codec/amqp/field-table.ts";
import { FrameDecoder } from "../../src/codec/amqp/frame-decoder.ts";
import { type Frame, PROTOCOL_HEADER } from "../../src/codec/amqp/frames.ts";
import type { Method, MethodByName, MethodName } from "../../src/codec/amqp/methods.generated.ts";
import type { BasicProperties } from "../../src/codec/amqp/properties.ts";
import type { Int64 } from "../../src/codec/parsers.ts";
import { concat } from "./bytes.ts";
import { contentFrames, describeFrame, method, methodFrame, rabbitServerProperties, utf8 } from "./fake-broker.ts";

/** Where a peer's bytes go: the client's side of the transport. */
export interface PeerLink {
  /** One read on the client's side. */
  deliver(bytes: Uint8Array): void;
  /** The socket closed: `error` when it failed rather than ended. */
  close(error?: unknown): void;
}

export interface PeerScript {
  /** "auto" (default): answer the handshake; "silent": never send connection.start; "manual": the test does. */
  handshake?: "auto" | "silent" | "manual";
  serverProperties?: FieldTable;
  channelMax?: number;
  frameMax?: number;
  /** Seconds; default 0 so that no heartbeat timer runs in a test. */
  heartbeat?: number;
  /** Methods from the client answered without the test seeing them in `expectMethod`. Default: all true. */
  autoReply?: { "channel.open"?: boolean; "channel.close"?: boolean; "connection.close"?: boolean };
  /** Given: every frame not auto-answered goes here instead of the expect queue (for a broker that reacts). */
  onFrame?: (frame: Frame) => void;
  /** Called once the peer sent connection.open-ok (the handshake is over). */
  onOpen?: () => void;
}

/** A message the client sent: method, header and body, read together. */
export interface ReceivedContent {
  readonly channel: number;
  readonly method: Method;
  readonly properties: BasicProperties;
  readonly body: Uint8Array;
}

/** A method the client sent, with its channel. */
export interface ReceivedMethod<N extends MethodName = MethodName> {
  readonly channel: number;
  readonly method: MethodByName[N];
}

const DEFAULT_WAIT_MS = 1000;


export class FakePeer {
  /** Every frame the client sent, in order (heartbeats included, the protocol header not); not kept with `onFrame`. */
  readonly received: Frame[] = [];
  /** Set once the client's bytes could not be decoded (the test fails on the next expect). */
  decodeError: Error | undefined;
  /** True once the client sent connection.close-ok or the link closed. */
  closed = false;
  /** The frame_max the peer offered in tune (content it sends is split by it). */
  readonly frameMax: number;

  readonly #script: PeerScript;
  readonly #decoder = new FrameDecoder({ frameMax: 0 });
  #header: Uint8Array = new Uint8Array(0);
  #headerChecked = false;
  #link: PeerLink | undefined;
  /** Frames for the test's expect calls (auto-answered ones are not queued). */
  readonly #queue: Frame[] = [];
  #wakers: (() => void)[] = [];

  constructor(script: PeerScript = {}) {
    this.#script = script;
    this.frameMax = script.frameMax ?? 131072;
  }

  /** The transport connected: from now on the peer's bytes go to `link`. */
  attach(link: PeerLink): void {
    this.#link = link;
  }

  get attached(): boolean {
    return this.#link !== undefined;
  }

  // -------------------------------------------------------------------------------------------------------
  // What the client wrote

  /** Bytes the client wrote (the transport calls this). Auto-replies are sent in a microtask, as a socket would. */
  receive(bytes: Uint8Array): void {
    let rest = bytes;
    if (!this.#headerChecked) {
      const need = PROTOCOL_HEADER.length - this.#header.length;
      this.#header = concat([this.#header, rest.subarray(0, need)]);
      rest = rest.subarray(need);
      if (this.#header.length < PROTOCOL_HEADER.length) return;
      if (this.#header.some((b, i) => b !== PROTOCOL_HEADER[i])) {
        this.decodeError = new Error(`the client must send AMQP 0 0 9 1 first, sent ${Array.from(this.#header).join(" ")}`);
        return;
      }
      this.#headerChecked = true;
      if ((this.#script.handshake ?? "auto") === "auto") this.#later(() => this.#sendStart());
    }
    if (rest.length === 0 || this.decodeError) return;
    this.#decoder.push(rest.slice());
    try {
      for (let f = this.#decoder.next(); f !== undefined; f = this.#decoder.next()) this.#onFrame(f);
    } catch (e) {
      this.decodeError = new Error(`the client wrote bytes that are not valid frames: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.#wake();
  }

  #onFrame(f: Frame): void {
    if (!this.#script.onFrame) this.received.push(f);
    if (f.type === 8) return;
    if (f.type === 1 && this.#autoReply(f.channel, f.method)) return;
    if (this.#script.onFrame) this.#script.onFrame(f);
    else this.#queue.push(f);
  }

  /** Answers what a broker answers without thought; true when `m` was answered. */
  #autoReply(channel: number, m: Method): boolean {
    const auto = this.#script.autoReply ?? {};
    const handshake = (this.#script.handshake ?? "auto") === "auto";
    switch (m.name) {
      case "connection.start-ok":
        if (!handshake) return false;
        this.#later(() =>
          this.send(0, method("connection.tune", { channelMax: this.#script.channelMax ?? 2047, frameMax: this.frameMax, heartbeat: this.#script.heartbeat ?? 0 })),
        );
        return true;
      case "connection.tune-ok":
        return handshake;
      case "connection.open":
        if (!handshake) return false;
        this.#later(() => {
          this.send(0, method("connection.open-ok"));
          this.#script.onOpen?.();
        });
        return true;
      case "channel.open":
        if (auto["channel.open"] === false) return false;
        this.#later(() => this.send(channel, method("channel.open-ok")));
        return true;
      case "channel.close":
        if (auto["channel.close"] === false) return false;
        this.#later(() => this.send(channel, method("channel.close-ok")));
        return true;
      case "connection.close":
        if (auto["connection.close"] === false) return false;
        this.#later(() => this.send(0, method("connection.close-ok")));
        return true;
      case "connection.close-ok":
        this.closed = true;
        return false;
      default:
        return false;
    }
  }

  #sendStart(): void {
    this.send(
      0,
      method("connection.start", {
        versionMajor: 0,
        versionMinor: 9,
        serverProperties: this.#script.serverProperties ?? rabbitServerProperties(),
        mechanisms: utf8("PLAIN AMQPLAIN"),
        locales: utf8("en_US"),
      }),
    );
  }

  /** Runs `f` after the current synchronous code: a reply never re-enters the client's write. */
  #later(f: () => void): void {
    queueMicrotask(() => {
      if (this.#link && !this.closed) f();
    });
  }

  #wake(): void {
    const w = this.#wakers;
    this.#wakers = [];
    for (const f of w) f();
  }

  /** The next frame the test has not read (auto-answered ones skipped); waits up to `timeoutMs`. */
  async nextFrame(timeoutMs = DEFAULT_WAIT_MS): Promise<Frame | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < 10_000; i++) {
      if (this.decodeError) throw this.decodeError;
      const f = this.#queue.shift();
      if (f !== undefined) return f;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wakers.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return undefined;
  }

  /** The next method the client sends must be `name` (on `channel` when given). */
  async expectMethod<N extends MethodName>(name: N, opts: { channel?: number; timeoutMs?: number } = {}): Promise<MethodByName[N]> {
    return (await this.expectMethodOn(name, opts)).method;
  }

  /** Like expectMethod, and also says which channel it came on. */
  async expectMethodOn<N extends MethodName>(name: N, opts: { channel?: number; timeoutMs?: number } = {}): Promise<ReceivedMethod<N>> {
    const f = await this.nextFrame(opts.timeoutMs);
    if (f === undefined || f.type !== 1 || f.method.name !== name || (opts.channel !== undefined && f.channel !== opts.channel)) {
      throw new Error(`expected the client to send ${name}${opts.channel !== undefined ? ` on channel ${opts.channel}` : ""}, it sent ${describeFrame(f)}`);
    }
    return { channel: f.channel, method: f.method as MethodByName[N] };
  }

  /** The next frames must be one whole message (basic.publish unless told): method, header, body. */
  async expectContent(name: MethodName = "basic.publish", opts: { timeoutMs?: number } = {}): Promise<ReceivedContent> {
    const m = await this.expectMethodOn(name, opts);
    const h = await this.nextFrame(opts.timeoutMs);
    if (h === undefined || h.type !== 2 || h.channel !== m.channel) throw new Error(`expected a content header after ${name}, got ${describeFrame(h)}`);
    const parts: Uint8Array[] = [];
    let got = 0;
    while (got < Number(h.bodySize)) {
      const b = await this.nextFrame(opts.timeoutMs);
      if (b === undefined || b.type !== 3 || b.channel !== m.channel) throw new Error(`expected body frames after ${name}, got ${describeFrame(b)}`);
      parts.push(b.payload);
      got += b.payload.length;
    }
    return { channel: m.channel, method: m.method, properties: h.properties, body: concat(parts) };
  }

  /** Every method named `name` the client has sent so far, auto-answered ones included. */
  methods<N extends MethodName>(name: N): ReceivedMethod<N>[] {
    const out: ReceivedMethod<N>[] = [];
    for (const f of this.received) if (f.type === 1 && f.method.name === name) out.push({ channel: f.channel, method: f.method as MethodByName[N] });
    return out;
  }

  // -------------------------------------------------------------------------------------------------------
  // What the broker sends; each call is one read on the client's side

  /** Raw bytes, as one read. */
  sendRaw(bytes: Uint8Array): void {
    const link = this.#link;
    if (!link) throw new Error("the peer is not connected");
    link.deliver(bytes);
  }

  /** Several frames (each a byte array, e.g. from `methodFrame`) in ONE read. */
  batch(...frames: Uint8Array[]): void {
    this.sendRaw(concat(frames));
  }

  send(channel: number, m: Method): void {
    this.sendRaw(methodFrame(channel, m));
  }

  /** A content-bearing method with its header and body (split by the peer's frame_max), in one read. */
  sendContent(channel: number, m: Method, body: Uint8Array, properties: BasicProperties = {}): void {
    this.sendRaw(contentFrames(channel, m, body, properties, this.frameMax));
  }

  /** basic.deliver with its content, in one read. */
  deliver(channel: number, consumerTag: string, deliveryTag: Int64, body: Uint8Array | string, opts: { redelivered?: boolean; properties?: BasicProperties } = {}): void {
    this.sendRaw(deliveryFrames(channel, consumerTag, deliveryTag, body, opts, this.frameMax));
  }

  /** The broker closes the socket. */
  end(): void {
    this.closed = true;
    this.#link?.close(undefined);
  }

  /** The socket fails (a reset, say). */
  fail(error: unknown = new Error("ECONNRESET: connection reset by peer")): void {
    this.closed = true;
    this.#link?.close(error);
  }
}

/** basic.deliver + header + body as bytes, for `batch`. */
export function deliveryFrames(
  channel: number,
  consumerTag: string,
  deliveryTag: Int64,
  body: Uint8Array | string,
  opts: { redelivered?: boolean; properties?: BasicProperties } = {},
  frameMax = 131072,
): Uint8Array {
  const m = method("basic.deliver", { consumerTag, deliveryTag, redelivered: opts.redelivered ?? false, exchange: "", routingKey: "q" });
  return contentFrames(channel, m, typeof body === "string" ? utf8(body) : body, opts.properties ?? {}, frameMax);
}

/** channel.close from the broker, as bytes. */
export function channelCloseFrame(channel: number, replyCode: number, replyText: string, classId = 0, methodId = 0): Uint8Array {
  return methodFrame(channel, method("channel.close", { replyCode, replyText, failingClassId: classId, failingMethodId: methodId }));
}

/** connection.close from the broker, as bytes. */
export function connectionCloseFrame(replyCode: number, replyText: string, classId = 0, methodId = 0): Uint8Array {
  return methodFrame(0, method("connection.close", { replyCode, replyText, failingClassId: classId, failingMethodId: methodId }));
}

export { contentFrames, method, methodFrame };
