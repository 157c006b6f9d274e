/**
 * The client API, shared by every runtime's entry point (each adds its own `connect`).
 */
export { Connection, type ConnectionEvents } from "./connection.ts";
export { connectWith } from "./connect.ts";
export { Channel, type ChannelEvents, type ConsumeOptions, type ExchangeDeclareOptions, type PublishOptions, type QueueDeclareOptions, type QueueDeclareResult, type ReturnedMessage } from "./channel.ts";
export { Consumer, ConsumerCancelledError, ConsumerOverflowError, type ConsumerEvents } from "./consumer.ts";
export { Message } from "./message.ts";
export * from "./errors.ts";
export { parseUrl, redactUrl, resolveConnectOptions, type ConnectOptions, type KeptOptions, type Logger, type RecoveryConnectOptions, type ResolvedConnectOptions, type TlsOptions } from "./options.ts";
export type { ReconnectingInfo } from "./recovery/engine.ts";
export type { ReconnectOptions } from "./recovery/backoff.ts";
export type { ReplayFailure, ReplayReport } from "./recovery/replay.ts";
export type { QueueRename } from "./recovery/topology.ts";
export type { Runtime, Transport, TransportFactory, TransportHandlers, TransportOptions } from "./transport.ts";
export type { BasicProperties, PublishProperties } from "../codec/amqp/properties.ts";
export { Decimal, field, TypedField, type FieldTable, type FieldValue } from "../codec/amqp/field-table.ts";
