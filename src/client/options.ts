/**
 * Connection options: the RabbitMQ URI (https://www.rabbitmq.com/docs/uri-spec and uri-query-parameters)
 * and the equivalent options object, resolved into one shape.
 *
 * The password is kept out of every string this module makes: `redactUrl` shows it as "***", and nothing
 * here puts it in an error message.
 */
import type { MachineOptions, SaslMechanism } from "../machine/options.ts";
import { type ReconnectOptions, resolveReconnectPolicy } from "./recovery/backoff.ts";
import type { RecoveryOptions } from "./recovery/engine.ts";
import type { FieldTable } from "../codec/amqp/field-table.ts";
import { UsageError } from "./errors.ts";

export interface TlsOptions {
  /** PEM CA certificate(s) to trust instead of the runtime's default store. */
  ca?: string | Uint8Array | (string | Uint8Array)[];
  /** PEM client certificate, for mutual TLS / EXTERNAL authentication. */
  cert?: string | Uint8Array;
  /** PEM private key of the client certificate. */
  key?: string | Uint8Array;
  passphrase?: string;
  /** Name to verify the server certificate against and send as SNI. Default: the host, unless it is an IP. */
  servername?: string;
  /** Verify the server's certificate and host name. Default true; only an explicit `false` turns it off. */
  verify?: boolean;
}

export interface ConnectOptions {
  /** "amqp:" or "amqps:". Default "amqp:". */
  protocol?: "amqp:" | "amqps:";
  hostname?: string;
  /** Default 5672, or 5671 for amqps. */
  port?: number;
  /** A unix socket path (Node, Deno, Bun); host and port are then not dialled (with amqps the host still names the certificate). */
  socketPath?: string;
  username?: string;
  password?: string;
  vhost?: string;
  /** Heartbeat interval in seconds; 0 turns heartbeats off. Default 60. */
  heartbeat?: number;
  frameMax?: number;
  channelMax?: number;
  /** Milliseconds allowed for TCP, TLS and the AMQP handshake together. Default 30000. */
  connectionTimeout?: number;
  authMechanism?: SaslMechanism;
  /** Shown in the RabbitMQ management UI. */
  connectionName?: string;
  clientProperties?: FieldTable;
  tls?: TlsOptions;
  /** Largest message body accepted, in bytes. Default 128 MiB. */
  maxBodySize?: number;
  /** Bytes buffered for the socket above which publishing waits. Default 1 MiB. */
  writeHighWaterMark?: number;
  /** Gives up connecting when it aborts: the connect rejects with AbortError and nothing stays open. */
  signal?: AbortSignal;
  /**
   * Where warren reports errors nobody observed — a consumer callback that failed with no "error" listener, a
   * channel or connection that failed with no "close" listener and no awaiting promise — once per failing
   * object. Default: `console.warn`. Pass `{ warn() {} }` to silence it.
   */
  logger?: Logger;
  /**
   * Automatic recovery after a connection loss the application did not ask for (network, heartbeat, broker
   * restart, connection.close 320): reconnect with backoff, reopen channels, replay topology and consumers.
   * `false` turns it off. Default: on.
   */
  recovery?: boolean | RecoveryConnectOptions;
  /**
   * Several hosts (the nodes of a cluster), tried in turn when connecting and reconnecting: "host",
   * "host:port", "[ipv6]:port" or a socket path. The URL then gives only credentials, vhost and settings.
   * `connect([url1, url2])` does the same with one URL per host.
   */
  hosts?: readonly (string | { hostname?: string; port?: number; socketPath?: string })[];
  /** "in-order" (default) tries the hosts as listed; "shuffle" in a random order each pass (spreads clients over a cluster). */
  hostOrder?: "in-order" | "shuffle";
}

/** See ConnectOptions.recovery. */
export interface RecoveryConnectOptions {
  /** The reconnect policy: backoff with jitter, first retry at once. */
  reconnect?: ReconnectOptions;
  /** How long a publish or request made while disconnected waits for the connection, in ms. Default 30000. */
  waitTimeout?: number;
  /** How many publishes and requests may wait at once; past it they fail at once (NotConnectedError). Default 10000. */
  maxWaiting?: number;
  /**
   * A confirm-mode publish whose outcome is lost with the connection (sent, but not yet acked):
   * - "reject" (the default): its promise rejects with OutcomeUnknownError — the broker may or may not have it;
   * - "resend": warren keeps a copy of each such message and publishes it again on the recovered channel, in
   *   the original order and with the same properties (message-id included); its promise settles with the
   *   new confirm. The broker may then have it twice: consumers must tolerate duplicates. Each confirm-mode
   *   publish then costs a copy of its body until it is confirmed.
   */
  unconfirmed?: "reject" | "resend";
  /**
   * When no host answers the first connect (refused, unreachable, timed out — not bad credentials or an
   * unknown vhost), keep trying with the reconnect policy instead of rejecting at once: `connect()` resolves
   * once a host answers, and rejects when the policy gives up (maxAttempts, maxElapsedMs) or `signal` aborts.
   * connectionTimeout bounds each attempt. Default false.
   */
  retryFirstConnect?: boolean;
}

/** See ConnectOptions.logger. */
export interface Logger {
  warn(message: string, error?: unknown): void;
}

export interface ResolvedConnectOptions {
  readonly tls: boolean;
  readonly hostname: string;
  readonly port: number;
  readonly socketPath: string | undefined;
  readonly username: string;
  readonly password: string;
  readonly vhost: string;
  readonly heartbeat: number | undefined;
  readonly frameMax: number | undefined;
  readonly channelMax: number | undefined;
  readonly connectionTimeout: number;
  readonly authMechanism: SaslMechanism | undefined;
  readonly connectionName: string | undefined;
  readonly clientProperties: FieldTable;
  readonly tlsOptions: TlsOptions;
  readonly maxBodySize: number | undefined;
  readonly writeHighWaterMark: number;
  readonly signal: AbortSignal | undefined;
  readonly logger: Logger;
  /** Undefined when recovery is off. */
  readonly recovery: RecoveryOptions | undefined;
  readonly hostOrder: "in-order" | "shuffle";
}

const MECHANISMS: readonly SaslMechanism[] = ["PLAIN", "AMQPLAIN", "EXTERNAL"];

/** Query parameters, by their snake_case URI name; camelCase spellings are accepted too. */
const QUERY: Record<string, keyof ConnectOptions> = {
  heartbeat: "heartbeat",
  frame_max: "frameMax",
  channel_max: "channelMax",
  connection_timeout: "connectionTimeout",
  auth_mechanism: "authMechanism",
  connection_name: "connectionName",
  max_body_size: "maxBodySize",
};

function camelToSnake(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new UsageError(`Invalid AMQP URI: the ${what} is not valid percent-encoding`);
  }
}

function intParam(name: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`Invalid AMQP URI: ${name} must be a whole number, not "${value}"`);
  return Number(value);
}

/**
 * Parses an AMQP URI into options.
 * @example parseUrl("amqps://u:p%40ss@rabbit.example/%2f?heartbeat=10&frame_max=65536")
 *   // { protocol: "amqps:", hostname: "rabbit.example", port: 5671, username: "u", password: "p@ss", vhost: "/", heartbeat: 10, frameMax: 65536 }
 */
export function parseUrl(url: string): ConnectOptions {
  // Parse the authority by hand: URL() would also accept and "fix" malformed input silently.
  // The user info runs to the last "@" of the authority, so a password with a raw "@" is not taken for a host
  // (whose name would then leak the rest of the password into a "could not connect" message).
  const m = /^(amqps?):\/\/(?:([^/?#]*)@)?(\[[^\]]*\]|[^:/?#@]*)(?::(\d*))?(\/[^?#]*)?(?:\?([^#]*))?(?:#.*)?$/i.exec(url.trim());
  if (!m) {
    // A malformed URI may not redact ("amqp:/user:pw@host"): then do not echo it at all.
    const shown = redactUrl(url);
    const safe = shown.includes("***@") || !shown.includes("@") ? shown : "a URI that is not shown (it may contain a password)";
    throw new UsageError(`Invalid AMQP URI: expected amqp://user:password@host:port/vhost?options, got ${safe}`);
  }
  const [, scheme, userinfo, host, port, path, query] = m;
  const protocol = (scheme!.toLowerCase() + ":") as "amqp:" | "amqps:";
  const out: ConnectOptions = { protocol };
  if (host) out.hostname = host.startsWith("[") ? host.slice(1, -1) : decode(host, "host");
  if (port) out.port = intParam("port", port);
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(":");
    out.username = decode(colon < 0 ? userinfo : userinfo.slice(0, colon), "user name");
    if (colon >= 0) out.password = decode(userinfo.slice(colon + 1), "password");
  }
  // The vhost is the path without its leading slash, percent-decoded: "/%2f" is "/", "/prod" is "prod".
  // No path, or a bare "/", means the default vhost "/".
  if (path !== undefined && path.length > 1) {
    const vhost = path.slice(1);
    if (vhost.includes("/")) throw new UsageError(`Invalid AMQP URI: a "/" in the vhost must be written %2f`);
    out.vhost = decode(vhost, "vhost");
  }
  if (query) {
    for (const pair of query.split("&")) {
      if (!pair) continue;
      const eq = pair.indexOf("=");
      const rawKey = decode(eq < 0 ? pair : pair.slice(0, eq), "query");
      const value = decode(eq < 0 ? "" : pair.slice(eq + 1).replace(/\+/g, " "), "query");
      const key = QUERY[rawKey] ?? QUERY[camelToSnake(rawKey)];
      if (key === undefined) continue; // unknown parameters are ignored, as RabbitMQ's own clients do
      switch (key) {
        case "authMechanism": {
          const mech = value.toUpperCase() as SaslMechanism;
          if (!MECHANISMS.includes(mech)) throw new UsageError(`Invalid AMQP URI: auth_mechanism must be one of ${MECHANISMS.join(", ")}`);
          out.authMechanism = mech;
          break;
        }
        case "connectionName":
          out.connectionName = value;
          break;
        case "heartbeat":
        case "frameMax":
        case "channelMax":
        case "connectionTimeout":
        case "maxBodySize":
          out[key] = intParam(rawKey, value);
          break;
      }
    }
  }
  return out;
}

/** The URI with its password replaced by "***". */
export function redactUrl(url: string): string {
  // Up to the last "@" of the authority: a raw "@" in the password must not leave its tail visible.
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/?#]*:)[^/?#]*@/i, "$1***@");
}

/** The longest timeout a JavaScript timer can wait (setTimeout fires at once for anything larger). */
const MAX_TIMEOUT = 2 ** 31 - 1;

function checkWhole(name: string, v: number | undefined, min: number, max: number): void {
  if (v !== undefined && (!Number.isInteger(v) || v < min || v > max)) throw new UsageError(`Option ${name} must be a whole number from ${min} to ${max}, not ${v}`);
}

/** Whether recovery is on when `recovery` is not given. */
export const RECOVERY_DEFAULT = true;

function resolveRecovery(r: boolean | RecoveryConnectOptions | undefined): RecoveryOptions | undefined {
  if (r === false || (r === undefined && !RECOVERY_DEFAULT)) return undefined;
  const o: RecoveryConnectOptions = r === true || r === undefined ? {} : r;
  if (typeof o !== "object" || o === null) throw new UsageError(`Option recovery must be true, false or an object, not ${String(r)}`);
  checkWhole("recovery.waitTimeout", o.waitTimeout, 0, MAX_TIMEOUT);
  checkWhole("recovery.maxWaiting", o.maxWaiting, 0, Number.MAX_SAFE_INTEGER);
  const unconfirmed = o.unconfirmed ?? "reject";
  if (unconfirmed !== "reject" && unconfirmed !== "resend") throw new UsageError(`Option recovery.unconfirmed must be "reject" or "resend", not ${typeof unconfirmed === "string" ? `"${unconfirmed}"` : String(unconfirmed)}`);
  if (o.retryFirstConnect !== undefined && typeof o.retryFirstConnect !== "boolean") throw new UsageError(`Option recovery.retryFirstConnect must be true or false, not ${String(o.retryFirstConnect)}`);
  const retryFirstConnect = o.retryFirstConnect ?? false;
  return { reconnect: resolveReconnectPolicy(o.reconnect), waitTimeout: o.waitTimeout ?? 30_000, maxWaiting: o.maxWaiting ?? 10_000, unconfirmed, retryFirstConnect };
}

const consoleLogger: Logger = {
  warn: (message, error) => (error === undefined ? console.warn(`warren: ${message}`) : console.warn(`warren: ${message}`, error)),
};

/**
 * Merges a URI (if any) and an options object (which wins), and fills in defaults. The password is kept as a
 * non-enumerable property, so it is in no JSON, spread, `Object.values` or default inspection of the result.
 */
export function resolveConnectOptions(url: string | undefined, options: ConnectOptions = {}): ResolvedConnectOptions {
  const fromUrl = url ? parseUrl(url) : {};
  const o: ConnectOptions = { ...fromUrl, ...options };
  const tls = (o.protocol ?? "amqp:") === "amqps:";
  const port = o.port ?? (tls ? 5671 : 5672);
  // Checked here: Node's socket would otherwise throw its own RangeError from inside connect().
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`Invalid port ${port}: it must be a whole number from 1 to 65535`);
  checkWhole("connectionTimeout", o.connectionTimeout, 0, MAX_TIMEOUT);
  checkWhole("writeHighWaterMark", o.writeHighWaterMark, 0, Number.MAX_SAFE_INTEGER);
  const resolved: Omit<ResolvedConnectOptions, "password"> = {
    tls,
    hostname: o.hostname || "127.0.0.1",
    port,
    socketPath: o.socketPath,
    username: o.username ?? "guest",
    vhost: o.vhost ?? "/",
    heartbeat: o.heartbeat,
    frameMax: o.frameMax,
    channelMax: o.channelMax,
    connectionTimeout: o.connectionTimeout ?? 30_000,
    authMechanism: o.authMechanism,
    connectionName: o.connectionName,
    clientProperties: o.clientProperties ?? {},
    tlsOptions: o.tls ?? {},
    maxBodySize: o.maxBodySize,
    writeHighWaterMark: o.writeHighWaterMark ?? 1024 * 1024,
    signal: o.signal,
    logger: o.logger ?? consoleLogger,
    recovery: resolveRecovery(o.recovery),
    hostOrder: o.hostOrder ?? "in-order",
  };
  return Object.defineProperty(resolved, "password", { value: o.password ?? "guest", enumerable: false }) as ResolvedConnectOptions;
}

/** True for an IPv4 or IPv6 literal (which must not be sent as SNI). */
export function isIpAddress(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(":");
}

/** What the machine is given: the AMQP side of the options, and the password (which the machine blanks once open). */
export function machineOptions(o: ResolvedConnectOptions, platform: string): MachineOptions {
  const clientProperties: FieldTable = { platform, ...o.clientProperties };
  if (o.connectionName !== undefined) clientProperties.connection_name = o.connectionName;
  return {
    username: o.username,
    password: o.password,
    vhost: o.vhost,
    mechanism: o.authMechanism,
    ...(o.heartbeat !== undefined && { heartbeat: o.heartbeat }),
    ...(o.frameMax !== undefined && { frameMax: o.frameMax }),
    ...(o.channelMax !== undefined && { channelMax: o.channelMax }),
    ...(o.maxBodySize !== undefined && { maxBodySize: o.maxBodySize }),
    handshakeTimeout: 0, // the client's connect deadline covers TCP, TLS and the handshake together
    clientProperties,
  };
}

/** The options a connection keeps of an endpoint's: all but the password, which only its machines are given. */
export type KeptOptions = Omit<ResolvedConnectOptions, "password">;

/** `options` without the password (it is not enumerable, so a spread leaves it behind). */
export function keptOptions(options: ResolvedConnectOptions): KeptOptions {
  const { ...kept } = options;
  return kept;
}

/** The broker an endpoint names, for messages: "amqp://host:port", "amqps://[::1]:5671", "unix:/path". Never the password. */
export function brokerAddress(o: KeptOptions): string {
  return o.socketPath ? `unix:${o.socketPath}` : `${o.tls ? "amqps" : "amqp"}://${o.hostname.includes(":") ? `[${o.hostname}]` : o.hostname}:${o.port}`;
}
