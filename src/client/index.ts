/**
 * The client API, shared by every runtime's entry point (each adds its own `connect`).
 */
export { Connection, connectWith, type ConnectionEvents } from "./connection.ts";
export { Channel, type ChannelEvents, type ConsumeOptions, type ExchangeDeclareOptions, type PublishOptions, type QueueDeclareOptions, type QueueDeclareResult, type ReturnedMessage } from "./channel.ts";
export { Consumer, ConsumerCancelledError, ConsumerOverflowError, type ConsumerEvents } from "./consumer.ts";
export { Message } from "./message.ts";
export * from "./errors.ts";
export { parseUrl, redactUrl, resolveConnectOptions, type ConnectOptions, type Logger, type ResolvedConnectOptions, type TlsOptions } from "./options.ts";
export type { Runtime, Transport, TransportFactory, TransportHandlers } from "./transport.ts";
export type { BasicProperties } from "../codec/amqp/properties.ts";
export { Decimal, field, TypedField, type FieldTable, type FieldValue } from "../codec/amqp/field-table.ts";
