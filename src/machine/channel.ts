/**
 * One channel's state inside the machine: its lifecycle, the ordered queue of what the application asked to
 * send, the one synchronous request in flight, publisher-confirm bookkeeping, consumers, and the message
 * being reassembled from content frames.
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

/** Something the application asked to send, waiting behind a synchronous request. */
export type Outgoing =
  | { readonly kind: "call"; readonly requestId: number; readonly method: Method }
  | { readonly kind: "send"; readonly method: Method }
  | { readonly kind: "publish"; readonly method: Method; readonly properties: BasicProperties; readonly body: Uint8Array };

export interface InFlight {
  readonly requestId: number;
  readonly method: Method;
  readonly responses: readonly MethodName[];
}

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
  /** Allocated once the header announces the size; filled by body frames. */
  body: Uint8Array | undefined;
  received: number;
  /** The request a get-ok answers. */
  readonly requestId: number;
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

  consumers = new Set<string>();
  assembly: Assembly | undefined;
  /** Body bytes still to drop for an oversize message (the channel is closing because of it). */
  skipping = 0;

  constructor(id: number) {
    this.id = id;
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
