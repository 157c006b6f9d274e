/**
 * warren/machine — the sans-IO AMQP 0-9-1 client connection. Bytes in, bytes and events out, timers driven
 * by the caller; see connection.ts for the theory of operation.
 */
export { ConnectionMachine, WARREN_VERSION } from "./connection.ts";
export { CommandError, type CommandErrorCode } from "./errors.ts";
export type * from "./events.ts";
export {
  DEFAULT_CHANNEL_MAX,
  DEFAULT_FRAME_MAX,
  DEFAULT_HEARTBEAT,
  DEFAULT_MAX_BODY,
  DEFAULT_PARTIAL_CONTENT,
  MIN_FRAME_MAX,
  negotiateTune,
  resolveOptions,
  type MachineOptions,
  type ResolvedOptions,
  type SaslMechanism,
  type Tuned,
} from "./options.ts";
export { chooseMechanism, saslResponse } from "./sasl.ts";
