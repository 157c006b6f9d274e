/**
 * warren/codec — binary parser and serializer combinators, and the AMQP 0-9-1 wire format built from them.
 *
 * The first half (Cursor, parsers, Writer, serializers) knows nothing of AMQP and serves any binary
 * protocol; the second half (frames, methods, properties, field tables, FrameDecoder) is AMQP 0-9-1 with
 * RabbitMQ's extensions.
 */
export { ChunkQueue } from "./chunk-queue.ts";
export { Cursor } from "./cursor.ts";
export { DecodeError, DecodeErrorCode, EncodeError, Incomplete } from "./errors.ts";
export * from "./parsers.ts";
export { Writer } from "./writer.ts";
export * from "./serializers.ts";
export { decodeUtf8, encodeUtf8, encodeUtf8Into, utf8Length } from "./utf8.ts";

export * from "./amqp/field-table.ts";
export * from "./amqp/properties.ts";
export * from "./amqp/frames.ts";
export * from "./amqp/frame-decoder.ts";
export * from "./amqp/methods.generated.ts";
