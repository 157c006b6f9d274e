/**
 * warren — an AMQP 0-9-1 client for RabbitMQ in pure TypeScript.
 *
 * The root entry point. Until the client lands it re-exports the codec; `warren/codec` is the codec's own
 * entry point and stays so.
 */
export * from "./codec/index.ts";
