/**
 * The relay's side of the opening handshake (RFC 6455 4.2): upstream addresses, the accept key, the checks
 * an upgrade request must pass, and the plain HTTP answer that refuses one.
 *
 * Nothing here keeps state or touches a timer: `checkUpgrade` is a pure function of the request and the
 * relay's allow-lists, so every refusal is decided in one place and tested through the relay.
 */
import { createHash } from "node:crypto";
import * as http from "node:http";
import type { Duplex } from "node:stream";

/** RFC 6455 1.3: the GUID appended to the key before hashing. */
const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** An upstream broker address. */
export interface Upstream {
  readonly host: string;
  readonly port: number;
}

/**
 * Parses "host:port" or "[v6]:port"; the host is lower-cased so allow-list checks are exact.
 * @example parseUpstream("[::1]:5672"); // { host: "::1", port: 5672 }
 */
export function parseUpstream(s: string): Upstream {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s/?#[\]@]+)):(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) throw new Error(`Invalid upstream "${s}": expected host:port, e.g. 127.0.0.1:5672 or [::1]:5672`);
  return { host: (m[1] ?? m[2]!).toLowerCase(), port };
}

/** The canonical "host:port" of an upstream. @example formatUpstream({ host: "::1", port: 5672 }); // "[::1]:5672" */
export function formatUpstream(u: Upstream): string {
  return u.host.includes(":") ? `[${u.host}]:${u.port}` : `${u.host}:${u.port}`;
}

/**
 * `Sec-WebSocket-Accept` for a key: base64(SHA-1(key + GUID)) (RFC 6455 4.2.2).
 * @example acceptKey("dGhlIHNhbXBsZSBub25jZQ=="); // "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
 */
export function acceptKey(key: string): string {
  return createHash("sha1").update(key + WS_GUID).digest("base64");
}

/** True when a comma-separated header holds `token` (case-insensitive). */
function hasToken(header: string | undefined, token: string): boolean {
  return (header ?? "").split(",").some((t) => t.trim().toLowerCase() === token);
}

/** Why a handshake is refused: an HTTP status, a reason and extra headers. */
export interface Refusal {
  readonly status: number;
  readonly reason: string;
  readonly headers?: Record<string, string>;
}

/** What an upgrade request is checked against. */
export interface UpgradePolicy {
  /** The allowed upstreams; the first is the default. */
  readonly upstreams: readonly Upstream[];
  /** `formatUpstream` of each allowed upstream. */
  readonly allowed: ReadonlySet<string>;
  /** Lower-cased allowed origins, or undefined for any. */
  readonly origins: ReadonlySet<string> | undefined;
}

/**
 * Checks an upgrade request; returns the upstream to dial or why not.
 * @example checkUpgrade(req, policy); // { host: "127.0.0.1", port: 5672 } or { status: 403, reason: "…" }
 */
export function checkUpgrade(req: http.IncomingMessage, policy: UpgradePolicy): Upstream | Refusal {
  if (req.method !== "GET") return { status: 400, reason: "a WebSocket handshake is a GET request" };
  if (req.httpVersionMajor * 1000 + req.httpVersionMinor < 1001) return { status: 400, reason: "a WebSocket handshake needs HTTP/1.1" };
  if (!req.headers.host) return { status: 400, reason: "missing Host header" };
  if (!hasToken(req.headers.upgrade, "websocket")) {
    return { status: 426, reason: "only the websocket upgrade is supported", headers: { Upgrade: "websocket", "Sec-WebSocket-Version": "13" } };
  }
  if (!hasToken(req.headers.connection, "upgrade")) return { status: 400, reason: "Connection header must include Upgrade" };
  const key = req.headers["sec-websocket-key"];
  if (typeof key !== "string" || !/^[A-Za-z0-9+/]{21}[AQgw]==$/.test(key.trim())) {
    return { status: 400, reason: "Sec-WebSocket-Key must be 16 bytes in base64" };
  }
  if (req.headers["sec-websocket-version"] !== "13") {
    return { status: 426, reason: "unsupported WebSocket version (this relay speaks 13)", headers: { "Sec-WebSocket-Version": "13" } };
  }
  const origin = req.headers.origin;
  if (policy.origins && origin !== undefined && !policy.origins.has(origin.toLowerCase())) {
    return { status: 403, reason: `origin ${origin} is not allowed` };
  }
  let url: URL;
  try {
    url = new URL(req.url ?? "/", "http://relay.invalid");
  } catch {
    return { status: 400, reason: "bad request target" };
  }
  const named = url.searchParams.getAll("upstream");
  if (named.length > 1) return { status: 400, reason: "name one upstream at most" };
  if (named.length === 0) return policy.upstreams[0]!;
  let upstream: Upstream;
  try {
    upstream = parseUpstream(named[0]!);
  } catch {
    return { status: 400, reason: "upstream must be host:port" };
  }
  if (!policy.allowed.has(formatUpstream(upstream))) return { status: 403, reason: `upstream ${formatUpstream(upstream)} is not allowed` };
  return upstream;
}

/** A plain HTTP answer on a socket that was not upgraded; the connection is not kept alive. */
export function refuse(socket: Duplex, status: number, text: string, extra: Record<string, string> = {}): void {
  const body = `${text}\n`;
  const headers = {
    "Content-Type": "text/plain; charset=utf-8",
    "Content-Length": String(Buffer.byteLength(body)),
    Connection: "close",
    ...extra,
  };
  const head = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ""}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`;
  if (socket.writable) socket.end(head + body);
  else socket.destroy();
}

/** The 101 answer that completes the handshake for `key` (the request's Sec-WebSocket-Key). */
export function switchingProtocols(key: string): string {
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key.trim())}\r\n\r\n`;
}
