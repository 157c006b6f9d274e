/**
 * A received message: a delivery to a consumer, or the answer to basic.get.
 */
import type { BasicProperties } from "../codec/amqp/properties.ts";
import type { Int64 } from "../codec/parsers.ts";

const utf8 = new TextDecoder();

/** What a Message needs from its channel to settle itself. */
export interface MessageSettler {
  basicAck(deliveryTag: Int64, multiple?: boolean): boolean;
  basicNack(deliveryTag: Int64, options?: { multiple?: boolean; requeue?: boolean }): boolean;
  basicReject(deliveryTag: Int64, requeue?: boolean): boolean;
}

export class Message {
  readonly body: Uint8Array;
  readonly properties: BasicProperties;
  /** Delivery tag on the channel it arrived on (a bigint only past 2^53). */
  readonly deliveryTag: Int64;
  readonly redelivered: boolean;
  readonly exchange: string;
  readonly routingKey: string;
  /** The consumer's tag; "" for basic.get. */
  readonly consumerTag: string;
  /** Messages left in the queue (basic.get only; undefined otherwise). */
  readonly messageCount: number | undefined;
  readonly #settler: MessageSettler;
  #settled = false;

  constructor(
    settler: MessageSettler,
    body: Uint8Array,
    properties: BasicProperties,
    deliveryTag: Int64,
    redelivered: boolean,
    exchange: string,
    routingKey: string,
    consumerTag: string,
    messageCount: number | undefined,
  ) {
    this.#settler = settler;
    this.body = body;
    this.properties = properties;
    this.deliveryTag = deliveryTag;
    this.redelivered = redelivered;
    this.exchange = exchange;
    this.routingKey = routingKey;
    this.consumerTag = consumerTag;
    this.messageCount = messageCount;
  }

  /** The body decoded as UTF-8. */
  bodyText(): string {
    return utf8.decode(this.body);
  }

  /** The body parsed as JSON. */
  json<T = unknown>(): T {
    return JSON.parse(this.bodyText()) as T;
  }

  /** True once this message was acked, nacked or rejected through its own methods (or by warren). */
  get settled(): boolean {
    return this.#settled;
  }

  /** @internal warren settled it on the application's behalf (a failed consumer callback). */
  markSettled(): void {
    this.#settled = true;
  }

  /**
   * basic.ack for this message. Returns false when the message arrived on a connection that has since been
   * lost and recovered: the broker forgot its delivery tag (acking it would close the channel), so nothing is
   * sent — and the broker redelivers the message, with `redelivered` set.
   */
  ack(multiple = false): boolean {
    this.#settled = true;
    return this.#settler.basicAck(this.deliveryTag, multiple);
  }

  /** basic.nack for this message; requeued unless `requeue` is false. Returns false as `ack` does. */
  nack(requeue = true, multiple = false): boolean {
    this.#settled = true;
    return this.#settler.basicNack(this.deliveryTag, { requeue, multiple });
  }

  /** basic.reject for this message; requeued unless `requeue` is false. Returns false as `ack` does. */
  reject(requeue = true): boolean {
    this.#settled = true;
    return this.#settler.basicReject(this.deliveryTag, requeue);
  }
}
