/**
 * One channel's state inside the machine: its lifecycle, the ordered queue of what the application asked to
 * send (already encoded, see pipeline.ts), the one synchronous request in flight, publisher-confirm
 * bookkeeping, consumers, and the message being reassembled from content frames (content.ts).
 *
 * Ordering rule: everything the application sends on a channel goes out in the order it was asked for. A
 * synchronous request stops the flow until its reply arrives (spec 2.2.2: one synchronous request at a time
 * per channel); what was asked for after it waits in `queue`. The common case — nothing in flight — skips
 * the queue entirely.
 */
import type { BasicProperties } from "../codec/amqp/properties.ts";
import type { Method, MethodName } from "../codec/amqp/methods.generated.ts";
import type { Int64 } from "../codec/parsers.ts";
import type { CloseReason, ReturnEvent } from "./events.ts";

export type ChannelLifecycle = "opening" | "open" | "closing";

/** Work waiting behind a synchronous request, already encoded into bytes it owns. */
export type Outgoing =
  | { readonly kind: "call"; readonly bytes: Uint8Array; readonly inFlight: InFlight }
  | { readonly kind: "send"; readonly bytes: Uint8Array; readonly consumer: ConsumerEffect | undefined }
  | { readonly kind: "publish"; readonly bytes: Uint8Array };

/** What a no-wait basic.consume / basic.cancel does to the channel's consumer books once it is written. */
export interface ConsumerEffect {
  readonly add: boolean;
  readonly tag: string;
  readonly noAck: boolean;
}

/** The synchronous request a channel waits on. */
export interface InFlight {
  readonly requestId: number;
  readonly name: MethodName;
  readonly responses: readonly MethodName[];
  /** For basic.consume: whether the consumer it starts is no-ack. */
  readonly consumerNoAck: boolean;
}

/** What to do with a delivery, by its consumer tag. */
export type DeliveryFate =
  /** A consumer the channel has: emit it. */
  | "deliver"
  /** A tag the broker should not be delivering to (unknown, or cancelled in ack mode): basic.reject, requeue. */
  | "reject"
  /** A no-ack consumer cancelled with no-wait: the broker already forgot the message; drop it. */
  | "drop";

/** Where a mandatory publish was sent, to match a basic.return to it. */
export interface PublishTarget {
  readonly exchange: string;
  readonly routingKey: string;
}

/** A content-bearing method whose header and body frames are arriving. */
export interface Assembly {
  readonly method: Method;
  properties: BasicProperties | undefined;
  bodySize: number;
  /**
   * Grown as body frames arrive (never to more than `bodySize`); `body.length` is the capacity held, counted
   * against the connection-wide maxPartialContent.
   */
  body: Uint8Array | undefined;
  received: number;
  /** The request a get-ok answers. */
  readonly requestId: number;
  /** False: take the frames in and drop the message (a closing channel, a delivery nobody consumes). */
  readonly keep: boolean;
}

/**
 * The next free channel id from `hint` on, wrapping at `channelMax` (so a just-closed id is not reused at
 * once); 0 when all are in use.
 */
export function freeChannelId(channels: ReadonlyMap<number, unknown>, hint: number, channelMax: number): number {
  for (let i = 0; i < channelMax; i++) {
    const candidate = ((hint - 1 + i) % channelMax) + 1;
    if (!channels.has(candidate)) return candidate;
  }
  return 0;
}

export class ChannelState {
  readonly id: number;
  lifecycle: ChannelLifecycle = "opening";
  /** Requests and sends waiting for the in-flight request to be answered. */
  queue: Outgoing[] = [];
  inFlight: InFlight | undefined;
  /** Our channel.close request, once sent; and why we closed. */
  closeRequestId = 0;
  closeReason: CloseReason | undefined;

  /** Confirm mode: set when confirm.select is sent, since the broker counts publishes from that point. */
  confirm = false;
  nextSeq = 1;
  /** Unconfirmed publishes in sequence order; the target is kept only for mandatory/immediate ones. */
  unconfirmed = new Map<number, PublishTarget | null>();
  /** Returns that arrived for publishes not yet acked. */
  returned = new Map<number, ReturnEvent>();

  /** Consumer tag → whether it is no-ack (from basic.consume). */
  readonly consumers = new Map<string, boolean>();
  /**
   * Tags cancelled with no-wait → no-ack: their deliveries may still be on the wire (nothing tells us when
   * the broker stopped), so they are handled as `consumerFate` says rather than emitted.
   */
  readonly cancelledNoWait = new Map<string, boolean>();
  assembly: Assembly | undefined;
  /** Body bytes still to drop for an oversize message (the channel is closing because of it). */
  skipping = 0;

  constructor(id: number) {
    this.id = id;
  }

  addConsumer(tag: string, noAck: boolean): void {
    this.consumers.set(tag, noAck);
    this.cancelledNoWait.delete(tag);
  }

  /** The consumer is gone: by our basic.cancel (no-wait or answered) or the broker's. */
  cancelConsumer(tag: string, noWait: boolean): void {
    const noAck = this.consumers.get(tag);
    this.consumers.delete(tag);
    if (noWait && noAck !== undefined) this.cancelledNoWait.set(tag, noAck);
  }

  /** What to do with a basic.deliver for `tag`. */
  consumerFate(tag: string): DeliveryFate {
    if (this.consumers.has(tag)) return "deliver";
    return this.cancelledNoWait.get(tag) === true ? "drop" : "reject";
  }

  /** True when a new item may be written at once rather than queued. */
  get idle(): boolean {
    return this.inFlight === undefined && this.queue.length === 0;
  }

  /**
   * The sequence number a basic.return belongs to: the earliest unconfirmed, not yet returned, mandatory
   * publish to the same exchange and routing key. The broker handles a channel's publishes in order and sends
   * a publish's return before its ack, so the earliest candidate is the one.
   */
  matchReturn(exchange: string, routingKey: string): number | undefined {
    for (const [seq, target] of this.unconfirmed) {
      if (target !== null && target.exchange === exchange && target.routingKey === routingKey && !this.returned.has(seq)) return seq;
    }
    return undefined;
  }

  /** Sequence numbers settled by an ack/nack with this delivery tag, in order, removed from the books. */
  settle(deliveryTag: Int64, multiple: boolean): number[] {
    const tag = Number(deliveryTag);
    const out: number[] = [];
    if (multiple && tag === 0) {
      // Spec (basic.ack): with multiple set, tag 0 means every outstanding message.
      for (const seq of this.unconfirmed.keys()) out.push(seq);
      this.unconfirmed.clear();
      return out;
    }
    if (!multiple) {
      if (this.unconfirmed.delete(tag)) out.push(tag);
      return out;
    }
    for (const seq of this.unconfirmed.keys()) {
      if (seq > tag) break;
      out.push(seq);
    }
    for (const seq of out) this.unconfirmed.delete(seq);
    return out;
  }
}
