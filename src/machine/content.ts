/**
 * Content reassembly: a content-bearing method (basic.deliver, basic.get-ok, basic.return), then its header
 * frame, then body frames until the header's body size is reached (spec 4.2.6).
 *
 * Memory rule: allocate what has arrived, not what the peer declares it will send. A header announcing
 * 128 MiB costs nothing; the body buffer grows geometrically as body frames arrive (capped at the body size),
 * and a message that arrives in one frame costs exactly one copy. Bytes held across all channels' partial
 * messages are bounded by `maxPartialContent`: past it the connection is closed with 506 (resource error)
 * instead of letting 64 bytes of headers on 16 channels cost gigabytes.
 *
 * A body over `maxBodySize` closes its channel with 311 and its frames are skipped as they arrive.
 */
import type { Method } from "../codec/amqp/methods.generated.ts";
import type { BasicProperties } from "../codec/amqp/properties.ts";
import type { Assembly, ChannelState } from "./channel.ts";
import { type MachineCore, reason, REPLY } from "./core.ts";
import { failQueued } from "./pipeline.ts";

/** The smallest buffer a multi-frame body starts with (grown ×2 from there, capped at its size). */
const MIN_GROWTH = 64 * 1024;

/** Called with a complete message (never for one whose assembly does not `keep` it). */
export type OnContent = (ch: ChannelState, a: Assembly, body: Uint8Array) => void;

export class ContentAssembler {
  private readonly core: MachineCore;
  private readonly onContent: OnContent;
  /** Capacity of every partial body buffer, on every channel. */
  private held = 0;
  /** Channels whose partial message holds a body buffer. */
  private readonly holding = new Set<ChannelState>();

  constructor(core: MachineCore, onContent: OnContent) {
    this.core = core;
    this.onContent = onContent;
  }

  /** Bytes held in partial messages across channels (for tests and diagnostics). */
  get heldBytes(): number {
    return this.held;
  }

  /** A content-bearing method arrived: its header and body frames follow. */
  begin(ch: ChannelState, method: Method, requestId: number, keep: boolean): void {
    ch.assembly = { method, properties: undefined, bodySize: 0, body: undefined, received: 0, requestId, keep };
  }

  /** Forgets the channel's partial message (the channel is gone). */
  drop(ch: ChannelState): void {
    const a = ch.assembly;
    if (a === undefined) return;
    this.release(ch, a);
    ch.assembly = undefined;
  }

  private release(ch: ChannelState, a: Assembly): void {
    if (a.body === undefined) return;
    this.held -= a.body.length;
    this.holding.delete(ch);
  }

  header(ch: ChannelState, classId: number, bodySize: number | bigint, properties: BasicProperties): void {
    const a = ch.assembly;
    if (a === undefined || a.properties !== undefined) {
      this.core.protocolError(REPLY.UNEXPECTED_FRAME, `content header on channel ${ch.id} without a method to carry it`);
      return;
    }
    if (classId !== a.method.classId) {
      this.core.protocolError(REPLY.UNEXPECTED_FRAME, `content header for class ${classId} after ${a.method.name}`);
      return;
    }
    const limit = this.core.options.maxBodySize;
    if (typeof bodySize === "bigint" || bodySize > limit) {
      this.refuseOversize(ch, a, bodySize);
      return;
    }
    a.properties = properties;
    a.bodySize = bodySize;
    if (bodySize === 0) this.complete(ch, new Uint8Array(0));
  }

  body(ch: ChannelState, payload: Uint8Array): void {
    if (ch.skipping > 0) {
      ch.skipping -= payload.length;
      return;
    }
    const a = ch.assembly;
    if (a === undefined || a.properties === undefined) {
      this.core.protocolError(REPLY.UNEXPECTED_FRAME, `content body on channel ${ch.id} without a content header`);
      return;
    }
    const end = a.received + payload.length;
    if (end > a.bodySize) {
      this.core.protocolError(REPLY.FRAME_ERROR, `content body on channel ${ch.id} is longer than the ${a.bodySize} bytes its header announced`);
      return;
    }
    if (!a.keep) {
      a.received = end;
      if (end === a.bodySize) this.complete(ch, undefined);
      return;
    }
    if (a.received === 0 && end === a.bodySize) {
      this.complete(ch, payload.slice()); // one frame: copy, so the message does not pin the read buffer
      return;
    }
    if (a.body === undefined || a.body.length < end) {
      if (!this.grow(ch, a, end)) return;
    }
    a.body!.set(payload, a.received);
    a.received = end;
    if (end === a.bodySize) {
      const body = a.body!;
      this.complete(ch, body.length === end ? body : body.subarray(0, end));
    }
  }

  /** Makes room for `end` bytes: doubles the buffer (capped at the body size), within maxPartialContent. */
  private grow(ch: ChannelState, a: Assembly, end: number): boolean {
    const old = a.body?.length ?? 0;
    const size = Math.min(a.bodySize, Math.max(end, old * 2, MIN_GROWTH));
    const cap = this.core.options.maxPartialContent;
    if (this.held - old + size > cap) {
      this.overBudget(ch, `messages being received would hold ${this.held - old + size} bytes of content, over the ${cap}-byte limit (maxPartialContent)`);
      return false;
    }
    let next: Uint8Array;
    try {
      next = new Uint8Array(size);
    } catch {
      // The host could not allocate it (a RangeError): a resource problem, not an exception for our caller.
      this.overBudget(ch, `could not allocate ${size} bytes for a message body`);
      return false;
    }
    if (a.body !== undefined) next.set(a.body.subarray(0, a.received));
    this.held += size - old;
    a.body = next;
    this.holding.add(ch);
    return true;
  }

  private overBudget(ch: ChannelState, text: string): void {
    // Free what is held now; content frames after connection.close are ignored, so nothing grows again.
    this.drop(ch);
    for (const other of [...this.holding]) this.drop(other);
    this.core.protocolError(REPLY.RESOURCE_ERROR, text);
  }

  private complete(ch: ChannelState, body: Uint8Array | undefined): void {
    const a = ch.assembly!;
    this.release(ch, a);
    ch.assembly = undefined;
    if (!a.keep || body === undefined || ch.lifecycle === "closing") return; // dropped; the broker requeues what needs it
    this.onContent(ch, a, body);
  }

  /** Too large to accept. Closing the channel makes the broker requeue it; nothing is lost or allocated. */
  private refuseOversize(ch: ChannelState, a: Assembly, bodySize: number | bigint): void {
    ch.assembly = undefined;
    if (ch.lifecycle !== "closing") {
      const limit = this.core.options.maxBodySize;
      const text = `message body of ${bodySize} bytes is over the ${limit}-byte limit (maxBodySize)`; // < 255 bytes
      const { classId, methodId } = a.method;
      this.core.writeMethod(ch.id, { name: "channel.close", classId: 20, methodId: 40, replyCode: REPLY.CONTENT_TOO_LARGE, replyText: text, failingClassId: classId, failingMethodId: methodId });
      failQueued(this.core, ch, reason("protocol", REPLY.CONTENT_TOO_LARGE, text), "channel");
      ch.lifecycle = "closing";
      ch.closeRequestId = 0;
      ch.closeReason = reason("protocol", REPLY.CONTENT_TOO_LARGE, text, classId, methodId);
    }
    ch.skipping = typeof bodySize === "bigint" ? Number.MAX_SAFE_INTEGER : bodySize;
  }
}
