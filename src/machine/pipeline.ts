/**
 * The channel pipeline, outbound: what `call`, `send` and `publish` write, in order, one synchronous request
 * in flight per channel (spec 2.2.2).
 *
 * - Idle channel (nothing in flight, nothing queued): the frames are encoded straight into the output writer.
 *   This is the hot path for publish.
 * - Busy channel: the frames are encoded at once into bytes the queue owns — a copy, never a view of the
 *   caller's buffer or object — and copied to the output when the channel's turn comes. So a caller that
 *   reuses its body buffer or mutates `properties.headers` after `publish` returned changes nothing on the
 *   wire, a bad argument throws from the command and not later from `handleInput`, and nothing is encoded
 *   twice.
 *
 * Which methods `call` and `send` accept comes from the spec's chassis (MethodInfo.clientSends).
 */
import { EncodeError } from "../codec/errors.ts";
import { encodeContent, encodeMethodFrame } from "../codec/amqp/frames.ts";
import { METHODS, type Method, type MethodInfo, type MethodName } from "../codec/amqp/methods.generated.ts";
import type { PublishProperties } from "../codec/amqp/properties.ts";
import { Writer } from "../codec/writer.ts";
import type { ChannelState, ConsumerEffect, InFlight } from "./channel.ts";
import type { MachineCore } from "./core.ts";
import { CommandError } from "./errors.ts";
import type { CloseReason, CloseScope } from "./events.ts";

export const METHOD_INFO: ReadonlyMap<string, MethodInfo> = new Map(METHODS.map((m) => [m.name, m]));

/**
 * Methods only the machine sends: the connection class, opening and closing channels, and the answers to
 * the broker's channel.flow and channel.close.
 */
function machineOwn(name: MethodName): boolean {
  return name.startsWith("connection.") || name === "channel.open" || name === "channel.close" || name === "channel.flow-ok" || name === "channel.close-ok";
}

/** Synchronous requests a client may send on a channel (spec chassis), which an application may `call`. */
export const CALLABLE: ReadonlySet<MethodName> = new Set(
  METHODS.filter((m) => m.clientSends && m.synchronous && m.responses.length > 0 && !machineOwn(m.name)).map((m) => m.name),
);

/** Asynchronous methods a client may send (basic.ack, …); the callable ones may be sent too with no-wait on. */
export const SENDABLE: ReadonlySet<MethodName> = new Set(
  METHODS.filter((m) => m.clientSends && !m.synchronous && !m.content && !machineOwn(m.name)).map((m) => m.name),
);

export function hasNoWait(m: Method): boolean {
  return (m as { noWait?: boolean }).noWait === true;
}

/** Throws CommandError INVALID_METHOD unless `call` may send `method`. */
export function assertCallable(method: Method): void {
  if (CALLABLE.has(method.name) && !hasNoWait(method)) return;
  throw new CommandError("INVALID_METHOD", `Cannot call ${method.name}${hasNoWait(method) ? " with no-wait set (use send)" : ": it is not a synchronous client request"}`);
}

/** Throws CommandError unless `send` may send `method`. */
export function assertSendable(method: Method): void {
  if (!SENDABLE.has(method.name) && !(CALLABLE.has(method.name) && hasNoWait(method))) {
    throw new CommandError("INVALID_METHOD", `Cannot send ${method.name}: only asynchronous methods, or requests with no-wait set, are sent without a reply`);
  }
  if (method.name === "basic.consume" && method.consumerTag === "") {
    throw new CommandError("INVALID_ARGUMENT", "Cannot send basic.consume with no-wait and no consumer tag: the broker's generated tag would never be known");
  }
}

/** An encoder's complaint about an argument, as the CommandError a command throws. */
export function commandErrorFrom(e: unknown): unknown {
  if (e instanceof EncodeError || e instanceof RangeError || e instanceof TypeError) return new CommandError("INVALID_ARGUMENT", e.message);
  return e;
}

export class Pipeline {
  private readonly core: MachineCore;
  /** Where queued items are encoded before being copied out (the Writer drops an oversized slab itself). */
  private readonly scratch = new Writer(4096);

  constructor(core: MachineCore) {
    this.core = core;
  }

  /** Writes (or queues) a synchronous request that `call` accepted. Throws CommandError for a bad argument. */
  call(ch: ChannelState, requestId: number, method: Method): void {
    const inFlight = requestFor(requestId, method);
    if (ch.idle) {
      this.writeNow(ch.id, method);
      ch.inFlight = inFlight;
    } else {
      ch.queue.push({ kind: "call", bytes: this.encodeQueued((w) => encodeMethodFrame(w, ch.id, method, this.core.frameMax)), inFlight });
    }
  }

  /** Writes (or queues) a method nothing answers. Throws CommandError for a bad argument. */
  send(ch: ChannelState, method: Method): void {
    let consumer: ConsumerEffect | undefined;
    if (method.name === "basic.consume") consumer = { add: true, tag: method.consumerTag, noAck: method.noAck };
    else if (method.name === "basic.cancel") consumer = { add: false, tag: method.consumerTag, noAck: false };
    if (ch.idle) {
      this.writeNow(ch.id, method);
      if (consumer) applyConsumer(ch, consumer);
    } else {
      ch.queue.push({ kind: "send", bytes: this.encodeQueued((w) => encodeMethodFrame(w, ch.id, method, this.core.frameMax)), consumer });
    }
  }

  /** Writes (or queues) a publish's method, header and body frames together. Throws CommandError for a bad argument. */
  publish(ch: ChannelState, method: Method, properties: PublishProperties, body: Uint8Array): void {
    if (ch.idle) {
      try {
        encodeContent(this.core.out, ch.id, method, properties, body, this.core.frameMax);
      } catch (e) {
        throw commandErrorFrom(e);
      }
      return;
    }
    ch.queue.push({ kind: "publish", bytes: this.encodeQueued((w) => encodeContent(w, ch.id, method, properties, body, this.core.frameMax)) });
  }

  /** Writes queued items in order until one is a request (which then waits for its reply). Never throws. */
  flush(ch: ChannelState): void {
    const out = this.core.out;
    const queue = ch.queue;
    let n = 0;
    while (ch.inFlight === undefined && n < queue.length && ch.lifecycle === "open") {
      const item = queue[n++]!;
      out.raw(item.bytes);
      if (item.kind === "call") ch.inFlight = item.inFlight;
      else if (item.kind === "send" && item.consumer) applyConsumer(ch, item.consumer);
    }
    // One splice, not a shift per item: 100k publishes queued behind a confirm.select must not be quadratic.
    if (n > 0) queue.splice(0, n);
  }

  /** Writes one method frame straight to the output, or throws CommandError leaving the output as it was. */
  writeNow(channel: number, method: Method): void {
    const out = this.core.out;
    const before = out.length;
    try {
      encodeMethodFrame(out, channel, method, this.core.frameMax);
    } catch (e) {
      out.pos = out.start + before;
      throw commandErrorFrom(e);
    }
  }

  private encodeQueued(write: (w: Writer) => void): Uint8Array {
    const w = this.scratch;
    try {
      write(w);
    } catch (e) {
      w.discard();
      throw commandErrorFrom(e);
    }
    return w.finish().slice();
  }
}

function requestFor(requestId: number, method: Method): InFlight {
  const responses = METHOD_INFO.get(method.name)!.responses;
  const consumerNoAck = method.name === "basic.consume" ? method.noAck : false;
  return { requestId, name: method.name, responses, consumerNoAck };
}

function applyConsumer(ch: ChannelState, c: ConsumerEffect): void {
  if (c.add) ch.addConsumer(c.tag, c.noAck);
  else ch.cancelConsumer(c.tag, true);
}

/** Fails what was queued but never sent on a channel. */
export function failQueued(core: MachineCore, ch: ChannelState, why: CloseReason, scope: CloseScope): void {
  const queued = ch.queue;
  ch.queue = [];
  for (const item of queued) {
    if (item.kind === "call") core.emit({ type: "requestFailed", channel: ch.id, requestId: item.inFlight.requestId, reason: why, scope });
  }
}
