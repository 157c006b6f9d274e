/**
 * warren/relay — the WebSocket-to-TCP relay that lets browsers reach RabbitMQ, and the RFC 6455 framing it
 * is built on (written with warren/codec's combinators). Node only: the relay uses node:http and node:net.
 *
 * @example
 * import { Relay } from "warren/relay";
 * const relay = new Relay({ upstreams: ["127.0.0.1:5672"], origins: ["https://app.example"] });
 * await relay.listen(15670, "127.0.0.1");
 */
export {
  acceptKey,
  createRelay,
  formatUpstream,
  parseUpstream,
  PING_FLOOD_LIMIT,
  Relay,
  type RelayConnections,
  type RelayOptions,
  type TunnelStats,
  type Upstream,
} from "./relay.ts";
export * from "./ws-frame.ts";
