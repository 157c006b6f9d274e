/**
 * Connection options the machine needs, their defaults, and tune negotiation (spec connection.tune).
 */
import type { FieldTable } from "../codec/amqp/field-table.ts";
import { DEFAULT_FRAME_MAX } from "../codec/amqp/frame-decoder.ts";
import { CommandError } from "./errors.ts";

export { DEFAULT_FRAME_MAX };

export type SaslMechanism = "PLAIN" | "AMQPLAIN" | "EXTERNAL";

export interface MachineOptions {
  username?: string;
  password?: string;
  /** Virtual host, already percent-decoded. Default "/". */
  vhost?: string;
  /**
   * SASL mechanism. Default: PLAIN, or AMQPLAIN when the broker offers only that. EXTERNAL (a TLS client
   * certificate) is used only when asked for. The broker must offer the chosen one.
   */
  mechanism?: SaslMechanism;
  /** Largest frame to ask for, in bytes. Default 131072; from 8192 (RabbitMQ 4.1 refuses less) to 2^32−1. */
  frameMax?: number;
  /** Most channels to ask for. Default 2047; 0 means the protocol maximum, 65535. */
  channelMax?: number;
  /**
   * Heartbeat interval to ask for, in seconds. Default 60. 0 turns heartbeats off (the broker is told 0);
   * otherwise the smaller of the two sides' values is used, or the other side's if one says 0.
   */
  heartbeat?: number;
  /** Extra client properties (connection_name, …) merged over warren's own. */
  clientProperties?: FieldTable;
  /** Largest message body accepted, in bytes. Default 128 MiB. A larger one closes its channel with 311. */
  maxBodySize?: number;
  /**
   * Most body bytes held, across all channels, for messages whose content is still arriving. Default the
   * larger of 256 MiB and `maxBodySize`. Bodies are allocated as their frames arrive, not when a header
   * announces their size; a broker that makes the machine hold more than this gets connection.close 506
   * (resource error) and the connection ends with that reason.
   */
  maxPartialContent?: number;
  /** How long to wait for the handshake to finish, in ms. Default 30000, at most 2^31−1. 0 waits forever. */
  handshakeTimeout?: number;
  /** How long to wait for connection.close-ok after sending connection.close, in ms. Default 5000, at most 2^31−1. */
  closeTimeout?: number;
}

export interface ResolvedOptions {
  readonly username: string;
  readonly password: string;
  readonly vhost: string;
  readonly mechanism: SaslMechanism | undefined;
  readonly frameMax: number;
  readonly channelMax: number;
  readonly heartbeat: number;
  readonly clientProperties: FieldTable;
  readonly maxBodySize: number;
  readonly maxPartialContent: number;
  readonly handshakeTimeout: number;
  readonly closeTimeout: number;
}

/** RabbitMQ 4.1 refuses a frame_max below this. */
export const MIN_FRAME_MAX = 8192;
/** The spec's frame-min-size: a server offering less than this is broken. */
export const SPEC_FRAME_MIN = 4096;
export const DEFAULT_CHANNEL_MAX = 2047;
export const DEFAULT_HEARTBEAT = 60;
export const DEFAULT_MAX_BODY = 128 * 1024 * 1024;
/** Default floor of `maxPartialContent`. */
export const DEFAULT_PARTIAL_CONTENT = 256 * 1024 * 1024;
/** The longest delay a JavaScript timer honours, 2^31−1 ms (Node fires a larger one at once). */
const MAX_TIMEOUT = 2 ** 31 - 1;
function whole(name: string, v: number | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new CommandError("INVALID_ARGUMENT", `Option ${name} must be an integer from ${min} to ${max}, not ${v}`);
  }
  return v;
}

/** Fills in defaults and checks ranges; throws CommandError INVALID_ARGUMENT for an out-of-range option. */
export function resolveOptions(o: MachineOptions = {}): ResolvedOptions {
  const frameMax = o.frameMax ?? DEFAULT_FRAME_MAX;
  if (!Number.isInteger(frameMax) || frameMax < MIN_FRAME_MAX || frameMax > 0xffff_ffff) {
    // Not silently raised: a frameMax of 0 or 4096 is a mistake worth hearing about.
    throw new CommandError("INVALID_ARGUMENT", `frameMax must be from ${MIN_FRAME_MAX} to 4294967295, not ${frameMax}`);
  }
  const maxBodySize = whole("maxBodySize", o.maxBodySize, DEFAULT_MAX_BODY, 0, Number.MAX_SAFE_INTEGER);
  return {
    username: o.username ?? "guest",
    password: o.password ?? "guest",
    vhost: o.vhost ?? "/",
    mechanism: o.mechanism,
    frameMax,
    channelMax: whole("channelMax", o.channelMax, DEFAULT_CHANNEL_MAX, 0, 0xffff),
    heartbeat: whole("heartbeat", o.heartbeat, DEFAULT_HEARTBEAT, 0, 0xffff),
    clientProperties: o.clientProperties ?? {},
    maxBodySize,
    maxPartialContent: whole("maxPartialContent", o.maxPartialContent, Math.max(DEFAULT_PARTIAL_CONTENT, maxBodySize), 0, Number.MAX_SAFE_INTEGER),
    handshakeTimeout: whole("handshakeTimeout", o.handshakeTimeout, 30_000, 0, MAX_TIMEOUT),
    closeTimeout: whole("closeTimeout", o.closeTimeout, 5_000, 0, MAX_TIMEOUT),
  };
}

export interface Tuned {
  readonly channelMax: number;
  readonly frameMax: number;
  readonly heartbeat: number;
}

/**
 * Combines the broker's connection.tune with ours. Returns a string describing the problem when the broker's
 * values cannot be accepted.
 *
 * - channel_max: 0 means 65535 on either side; the smaller wins.
 * - frame_max: 0 means "no limit" on the broker's side; the smaller wins. A broker value below the spec's
 *   4096 is refused.
 * - heartbeat: ours 0 means off. Otherwise if either side says 0 the other's value is used, else the smaller.
 */
export function negotiateTune(ours: ResolvedOptions, server: Tuned): Tuned | string {
  if (server.frameMax !== 0 && server.frameMax < SPEC_FRAME_MIN) {
    return `broker offered frame_max ${server.frameMax}, below the protocol minimum ${SPEC_FRAME_MIN}`;
  }
  const channelMax = Math.min(ours.channelMax || 0xffff, server.channelMax || 0xffff);
  const frameMax = server.frameMax === 0 ? ours.frameMax : Math.min(ours.frameMax, server.frameMax);
  let heartbeat: number;
  if (ours.heartbeat === 0) heartbeat = 0;
  else if (server.heartbeat === 0) heartbeat = ours.heartbeat;
  else heartbeat = Math.min(ours.heartbeat, server.heartbeat);
  return { channelMax, frameMax, heartbeat };
}
