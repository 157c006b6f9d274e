/**
 * Several hosts: the endpoints a connection may use (the nodes of a RabbitMQ cluster, say), and the rotation
 * that picks which one to try next.
 *
 * Where the list comes from (`resolveEndpoints`):
 * - `connect([url1, url2, …])`: one endpoint per URL, each resolved like a single URL (the options object
 *   still wins, so with several URLs it may not name a host, port or socket path: it would override them all);
 * - `connect(url, { hosts: ["node1:5672", "[::1]:5673", "/var/run/rabbitmq.sock", …] })`: one endpoint per
 *   entry, each with the URL's (and options') credentials, vhost, protocol and settings; the URL's own host
 *   and port are not used. An entry without a port gets `options.port`, else the protocol's default (5672, or
 *   5671 for amqps). An entry that starts with "/" is a unix socket path; an IPv6 literal is written in
 *   brackets ("[::1]:5673") or bare without a port ("2001:db8::7");
 * - neither: the one endpoint of the URL and options.
 *
 * How the rotation picks (`HostRotation.next(now)`): endpoints in the given order, or — with `order:
 * "shuffle"` — in a fresh random order for every pass over the list (so a fleet of clients spreads over a
 * cluster, and one client does not always start with the same node). An endpoint reported `failed` less
 * than `cooldownMs` ago is skipped while another is available; when every endpoint failed recently, the one
 * that failed longest ago is tried anyway — the rotation never refuses to hand one out. `succeeded` clears
 * an endpoint's failure. Time and randomness are passed in; nothing here reads a clock.
 */
import { UsageError } from "../errors.ts";
import { type ConnectOptions, type ResolvedConnectOptions, resolveConnectOptions } from "../options.ts";

/** One `hosts` entry as an object: a host and port, or a unix socket path. */
export interface HostAddress {
  hostname?: string;
  port?: number;
  socketPath?: string;
}

/** A `hosts` entry: "host", "host:port", "[ipv6]:port", a bare IPv6 literal, "/path/to.sock", or an object. */
export type HostEntry = string | HostAddress;

/** The option this module adds to ConnectOptions. */
export interface HostsOptions {
  /** The hosts to connect to, in the order to try them; the URL then gives only credentials, vhost and settings. */
  hosts?: readonly HostEntry[];
}

/** One place to connect to, with everything needed to connect there. */
export interface Endpoint {
  /** "host:port", "[ipv6]:port" or the socket path: for events and logs (never holds credentials). */
  readonly label: string;
  readonly options: ResolvedConnectOptions;
}

/**
 * Parses one `hosts` string. Throws UsageError (naming `what`) for an entry that is not a host.
 * @example parseHost("[::1]:5673"); // { hostname: "::1", port: 5673 }
 * @example parseHost("/var/run/rabbitmq.sock"); // { socketPath: "/var/run/rabbitmq.sock" }
 */
export function parseHost(entry: string, what = "hosts entry"): HostAddress {
  const s = entry.trim();
  if (s === "") throw new UsageError(`Option ${what} is empty: expected "host", "host:port" or a socket path`);
  if (s.startsWith("/")) return { socketPath: s };
  if (s.includes("://")) throw new UsageError(`Option ${what} must be "host:port", not a URL: pass several URLs as connect([url1, url2]) instead`);
  if (/[@/?#\s]/.test(s)) throw new UsageError(`Option ${what} must be "host:port", not "${s.includes("@") ? "(an entry with user info, not shown)" : s}"`);
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(s);
  if (bracketed) return withPort(bracketed[1]!, bracketed[2], what, s);
  const colons = s.split(":").length - 1;
  if (colons > 1) return { hostname: s }; // a bare IPv6 literal: every colon is part of the address
  if (colons === 0) return { hostname: s };
  const at = s.indexOf(":");
  return withPort(s.slice(0, at), s.slice(at + 1), what, s);
}

function withPort(hostname: string, port: string | undefined, what: string, entry: string): HostAddress {
  if (hostname === "") throw new UsageError(`Option ${what} has no host: "${entry}"`);
  if (port === undefined) return { hostname };
  if (!/^\d+$/.test(port)) throw new UsageError(`Option ${what} must be "host:port" with a whole-number port, not "${entry}"`);
  return { hostname, port: Number(port) };
}

/** "host:port", "[ipv6]:port", or the socket path. */
export function endpointLabel(o: ResolvedConnectOptions): string {
  if (o.socketPath !== undefined) return o.socketPath;
  return o.hostname.includes(":") ? `[${o.hostname}]:${o.port}` : `${o.hostname}:${o.port}`;
}

function endpoint(options: ResolvedConnectOptions): Endpoint {
  return { label: endpointLabel(options), options };
}

function addressOf(entry: HostEntry, what: string): HostAddress {
  if (typeof entry === "string") return parseHost(entry, what);
  if (typeof entry !== "object" || entry === null) throw new UsageError(`Option ${what} must be a "host:port" string or { hostname, port } / { socketPath }, not ${String(entry)}`);
  const { hostname, port, socketPath } = entry;
  if (hostname !== undefined && (typeof hostname !== "string" || hostname === "")) throw new UsageError(`Option ${what}.hostname must be a non-empty string`);
  if (socketPath !== undefined && (typeof socketPath !== "string" || socketPath === "")) throw new UsageError(`Option ${what}.socketPath must be a non-empty string`);
  if (hostname === undefined && socketPath === undefined) throw new UsageError(`Option ${what} needs a hostname or a socketPath`);
  return { hostname, port, socketPath };
}

/**
 * The endpoints of `connect(url | urls, options)`, in the order given. Throws UsageError for an empty list, a
 * malformed URL or entry, or a combination that cannot mean one thing (several URLs and `hosts`; several
 * URLs and `hostname`/`port`/`socketPath`; `hosts` and `hostname`/`socketPath`).
 * @example resolveEndpoints("amqp://u:p@ignored/vh", { hosts: ["n1", "n2:5673"] }).map((e) => e.label); // ["n1:5672", "n2:5673"]
 */
export function resolveEndpoints(url: string | readonly string[] | undefined, options: ConnectOptions & HostsOptions = {}): Endpoint[] {
  const { hosts, ...rest } = options;
  const urls: readonly (string | undefined)[] = url === undefined ? [undefined] : typeof url === "string" ? [url] : url;
  if (urls.length === 0) throw new UsageError("connect was given an empty list of URLs");
  for (const [i, u] of urls.entries()) if (typeof u !== "string" && u !== undefined) throw new UsageError(`connect: URL ${i} must be a string, not ${String(u)}`);
  if (hosts === undefined) {
    if (urls.length > 1 && (rest.hostname !== undefined || rest.port !== undefined || rest.socketPath !== undefined)) {
      throw new UsageError("With several URLs, each URL names its host: the options hostname, port and socketPath would override them all");
    }
    return urls.map((u) => endpoint(resolveConnectOptions(u, rest)));
  }
  if (!Array.isArray(hosts) || hosts.length === 0) throw new UsageError(`Option hosts must be a non-empty array of "host:port" strings`);
  if (urls.length > 1) throw new UsageError("Give several URLs or the hosts option, not both");
  if (rest.hostname !== undefined || rest.socketPath !== undefined) throw new UsageError("Option hosts replaces hostname and socketPath: give one or the other");
  return hosts.map((entry: HostEntry, i: number) => {
    const a = addressOf(entry, `hosts[${i}]`);
    const o: ConnectOptions = { ...rest, port: a.port ?? rest.port, socketPath: a.socketPath };
    // A socket entry keeps the URL's host, which still names the certificate with amqps.
    if (a.hostname !== undefined) o.hostname = a.hostname;
    else delete o.hostname;
    return endpoint(resolveConnectOptions(urls[0], o));
  });
}

export interface HostRotationOptions {
  /** "in-order" (the default) tries endpoints as listed; "shuffle" in a new random order for each pass. */
  order?: "in-order" | "shuffle";
  /** A number in [0, 1), like Math.random; required for "shuffle". */
  random?: () => number;
  /** How long a failed endpoint is skipped while another is available, in milliseconds. Default 5000. */
  cooldownMs?: number;
}

/**
 * Hands out the endpoint to try next. Call `failed(endpoint, now)` when connecting to it fails or an
 * established connection to it is lost (so the next attempt goes elsewhere first), `succeeded(endpoint)` once
 * a connection to it is open.
 * @example
 * const rotation = new HostRotation(resolveEndpoints(["amqp://n1", "amqp://n2"]));
 * const first = rotation.next(now); // n1
 * rotation.failed(first, now);
 * rotation.next(now); // n2
 */
export class HostRotation {
  readonly endpoints: readonly Endpoint[];
  readonly #shuffle: boolean;
  readonly #random: () => number;
  readonly #cooldownMs: number;
  readonly #index = new Map<Endpoint, number>();
  /** When each endpoint (by index) last failed, while it has not succeeded since. */
  readonly #failedAt = new Map<number, number>();
  /** This pass's order (indexes into endpoints) and the position of the next candidate in it. */
  #order: number[] = [];
  #pos = 0;

  constructor(endpoints: readonly Endpoint[], o: HostRotationOptions = {}) {
    if (endpoints.length === 0) throw new UsageError("HostRotation needs at least one endpoint");
    const order = o.order ?? "in-order";
    if (order !== "in-order" && order !== "shuffle") throw new UsageError(`Option order must be "in-order" or "shuffle", not ${String(order)}`);
    if (order === "shuffle" && typeof o.random !== "function") throw new UsageError(`Option order "shuffle" needs a random function (e.g. Math.random)`);
    const cooldownMs = o.cooldownMs ?? 5000;
    if (!Number.isInteger(cooldownMs) || cooldownMs < 0) throw new UsageError(`Option cooldownMs must be a whole number from 0, not ${cooldownMs}`);
    this.endpoints = [...endpoints];
    this.endpoints.forEach((e, i) => this.#index.set(e, i));
    this.#shuffle = order === "shuffle";
    this.#random = o.random ?? (() => 0);
    this.#cooldownMs = cooldownMs;
  }

  /** The endpoint to try at time `now`: the next one in this pass that has not failed recently, else the one that failed longest ago. */
  next(now: number): Endpoint {
    // The rest of this pass, then a whole new one: every endpoint is looked at at least once.
    const budget = this.#order.length - this.#pos + this.endpoints.length;
    for (let i = 0; i < budget; i++) {
      if (this.#pos >= this.#order.length) this.#newPass();
      const idx = this.#order[this.#pos++]!;
      const at = this.#failedAt.get(idx);
      if (at === undefined || now - at >= this.#cooldownMs) return this.endpoints[idx]!;
    }
    let best = 0;
    for (let idx = 1; idx < this.endpoints.length; idx++) if (this.#failedAt.get(idx)! < this.#failedAt.get(best)!) best = idx;
    return this.endpoints[best]!;
  }

  /** Connecting to `endpoint` failed (or its connection was lost) at `now`. */
  failed(endpoint: Endpoint, now: number): void {
    this.#failedAt.set(this.#indexOf(endpoint), now);
  }

  /** A connection to `endpoint` opened: it is no longer skipped. */
  succeeded(endpoint: Endpoint): void {
    this.#failedAt.delete(this.#indexOf(endpoint));
  }

  #indexOf(endpoint: Endpoint): number {
    const idx = this.#index.get(endpoint);
    if (idx === undefined) throw new UsageError(`Endpoint ${endpoint.label} is not one of this rotation's`);
    return idx;
  }

  #newPass(): void {
    const order = this.endpoints.map((_, i) => i);
    if (this.#shuffle) {
      // Fisher–Yates; the clamp keeps a random() that returns 1 in range.
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.max(0, Math.min(i, Math.floor(this.#random() * (i + 1))));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
    }
    this.#order = order;
    this.#pos = 0;
  }
}
