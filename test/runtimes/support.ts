/**
 * Test infrastructure for the runtime scenarios, shared by the Node, Deno and Bun runners: proxies, the TLS
 * broker, and starting a client on another runtime. It uses node: modules only — Deno and Bun implement the
 * ones used here — so one implementation serves all three runners. The clients under test never touch it:
 * they connect with their own runtime's adapter, and these proxies are only the peer they talk to.
 *
 * Every wait is bounded; every server and child process is closed or killed by its owner.
 */
import { execFile } from "node:child_process";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Certificates } from "../support/tls-broker.ts";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export type RuntimeName = "node" | "deno" | "bun";
export const RUNTIMES: readonly RuntimeName[] = ["node", "deno", "bun"];

/** The main test broker (scripts/broker.sh ensure). */
export function amqpUrl(): string {
  return process.env.WARREN_TEST_URL ?? "amqp://guest:guest@127.0.0.1:5672/";
}

function brokerPort(): number {
  const m = /:(\d+)\/?/.exec(amqpUrl().replace(/^amqps?:\/\/[^@]*@/, ""));
  return m ? Number(m[1]) : 5672;
}

async function listen(server: net.Server, where: number | string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    if (typeof where === "string") server.listen(where, () => resolve());
    else server.listen(where, "127.0.0.1", () => resolve());
  });
}

function closeServer(server: net.Server, sockets: Set<net.Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  return new Promise<void>((resolve) => server.close(() => resolve()));
}

function pipeToBroker(client: net.Socket, sockets: Set<net.Socket>, port = brokerPort()): net.Socket {
  const upstream = net.connect(port, "127.0.0.1");
  sockets.add(client);
  sockets.add(upstream);
  // Forwarded by hand rather than with pipe(): pipe() resumes a paused source on the next 'drain', which
  // would end a stall. The proxy does not apply backpressure itself; test volumes are small.
  client.on("data", (d: Buffer) => upstream.write(d));
  upstream.on("data", (d: Buffer) => client.write(d));
  const done = () => {
    client.destroy();
    upstream.destroy();
    sockets.delete(client);
    sockets.delete(upstream);
  };
  client.on("error", done).on("close", done);
  upstream.on("error", done).on("close", done);
  return upstream;
}

export interface UnixProxy {
  path: string;
  close(): Promise<void>;
}

/**
 * A unix socket that forwards to the broker (RabbitMQ itself listens on TCP only), or to `port` on
 * 127.0.0.1 — the TLS listener, say, for TLS over a unix socket.
 */
export async function unixProxy(port?: number): Promise<UnixProxy> {
  const path = join(tmpdir(), `warren-rt-${Math.random().toString(36).slice(2, 10)}.sock`);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => void pipeToBroker(client, sockets, port));
  await listen(server, path);
  return { path, close: () => closeServer(server, sockets) };
}

export interface StallProxy {
  port: number;
  /** Stops reading from the clients: their socket buffers fill and their writes back up. */
  stall(): void;
  /** Reads again. */
  resume(): void;
  /** Destroys every proxied connection (a network failure) and keeps listening. */
  cut(): void;
  close(): Promise<void>;
}

/** A TCP proxy to the broker that can stop reading what clients send, to make backpressure happen. */
export async function stallProxy(): Promise<StallProxy> {
  const sockets = new Set<net.Socket>();
  const clients = new Set<net.Socket>();
  let stalled = false;
  const server = net.createServer((client) => {
    clients.add(client);
    client.on("close", () => clients.delete(client));
    pipeToBroker(client, sockets);
    if (stalled) client.pause();
  });
  await listen(server, 0);
  return {
    port: (server.address() as net.AddressInfo).port,
    stall() {
      stalled = true;
      for (const c of clients) c.pause();
    },
    resume() {
      stalled = false;
      for (const c of clients) c.resume();
    },
    cut() {
      for (const socket of [...sockets, ...clients]) socket.destroy();
    },
    close: () => closeServer(server, sockets),
  };
}

// ---------------------------------------------------------------------------------------------------------
// TLS

export interface TlsEnv {
  certs: Certificates;
  /** The TLS listener's port on 127.0.0.1 (certificate for localhost and 127.0.0.1). */
  port: number;
  /** The user SASL EXTERNAL logs in as with certs.clientCert. */
  externalUser: string;
}

/**
 * The TLS broker for these runners: test/support/tls-broker.ts, configured for a node of its own
 * (warren-rt-tls@localhost, AMQP 5674, AMQPS 5676, /tmp/warren-broker-rt-tls) so that these runners and
 * test/integration/tls.test.ts — which stops its node when it is done — never share one. The node is left
 * running for the next run, like the main broker; `bash scripts/broker.sh stop` with the same WARREN_BROKER_*
 * variables stops it. Resolves undefined, with the reason, when it cannot be started (no openssl, no
 * RabbitMQ): the TLS scenarios are then skipped, loudly.
 */
export async function runtimesTlsBroker(): Promise<{ tls: TlsEnv } | { tls: undefined; reason: string }> {
  const env = process.env;
  env.WARREN_TLS_BROKER_NODE ??= "warren-rt-tls@localhost";
  env.WARREN_TLS_BROKER_DIR ??= "/tmp/warren-broker-rt-tls";
  env.WARREN_TLS_BROKER_PORT ??= "5674";
  env.WARREN_TLS_BROKER_TLS_PORT ??= "5676";
  env.WARREN_TLS_BROKER_KEEP ??= "1";
  try {
    // Imported only now: the module reads the variables above when it loads.
    const { startTlsBroker, TLS_BROKER } = await import("../support/tls-broker.ts");
    const broker = await startTlsBroker();
    return { tls: { certs: broker.certs, port: TLS_BROKER.tlsPort, externalUser: TLS_BROKER.externalUser } };
  } catch (e) {
    return { tls: undefined, reason: e instanceof Error ? e.message : String(e) };
  }
}

// ---------------------------------------------------------------------------------------------------------
// Other runtimes

const BIN: Record<RuntimeName, string> = {
  node: join(ROOT, "node_modules/.bin/tsx"),
  deno: join(ROOT, "node_modules/.bin/deno"),
  bun: join(ROOT, "node_modules/.bin/bun"),
};

const ARGS: Record<RuntimeName, readonly string[]> = {
  node: [],
  deno: ["run", "-A", "--no-lock"],
  bun: ["run"],
};

export interface PeerResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs test/runtimes/peer.ts on `runtime` (its own adapter) with `vars` in its environment; resolves when
 * it exits (killed after `timeoutMs`).
 */
export function runPeer(runtime: RuntimeName, vars: Record<string, string>, timeoutMs = 60_000): Promise<PeerResult> {
  const script = join(ROOT, "test/runtimes/peer.ts");
  return new Promise((resolve) => {
    execFile(
      BIN[runtime],
      [...ARGS[runtime], script],
      { cwd: ROOT, env: { ...process.env, ...vars }, timeout: timeoutMs, encoding: "utf8" },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
