/**
 * The options and results of Channel's methods, and its events.
 */
import type { FieldTable } from "../codec/amqp/field-table.ts";
import type { BasicProperties } from "../codec/amqp/properties.ts";
import type { WarrenError } from "./errors.ts";
import type { Message } from "./message.ts";

export interface ReturnedMessage {
  readonly replyCode: number;
  readonly replyText: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly properties: BasicProperties;
  readonly body: Uint8Array;
}

export type ChannelEvents = {
  /** The channel closed; `error` unless the application closed it. */
  close: (error?: WarrenError) => void;
  /** An unroutable mandatory message came back (basic.return). */
  return: (message: ReturnedMessage) => void;
  /** The broker paused (false) or resumed (true) this channel's publishing (channel.flow). */
  flow: (active: boolean) => void;
  /** The broker cancelled a consumer. */
  cancel: (consumerTag: string) => void;
};

export interface Signal {
  signal?: AbortSignal;
}
export interface ExchangeDeclareOptions extends Signal {
  passive?: boolean;
  durable?: boolean;
  autoDelete?: boolean;
  internal?: boolean;
  noWait?: boolean;
  arguments?: FieldTable;
}
export interface QueueDeclareOptions extends Signal {
  passive?: boolean;
  durable?: boolean;
  exclusive?: boolean;
  autoDelete?: boolean;
  noWait?: boolean;
  arguments?: FieldTable;
}
export interface QueueDeclareResult {
  queue: string;
  messageCount: number;
  consumerCount: number;
}
export interface ConsumeOptions extends Signal {
  consumerTag?: string;
  noLocal?: boolean;
  noAck?: boolean;
  exclusive?: boolean;
  arguments?: FieldTable;
  /**
   * Called when the `onMessage` callback throws or rejects. Given here rather than as an "error" listener, it
   * also sees messages that arrive before basicConsume resolves.
   */
  onError?: (error: unknown, message: Message) => void;
  /**
   * What happens to a message whose `onMessage` callback failed before settling it: `true` requeues it,
   * `false` rejects it without requeue (dead-lettered, or dropped). Default: requeued once — rejected
   * without requeue when it was already redelivered. Ignored with noAck.
   */
  requeueOnError?: boolean;
}
export interface PublishOptions extends Signal {
  mandatory?: boolean;
  immediate?: boolean;
}
