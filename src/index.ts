/**
 * warren — an AMQP 0-9-1 client for RabbitMQ in pure TypeScript.
 *
 * The root entry point for Node (and the default): `connect` over node:net / node:tls. Other runtimes get
 * their own transport through package.json's conditional exports.
 */
export * from "./adapters/node.ts";
