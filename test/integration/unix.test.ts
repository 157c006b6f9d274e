/**
 * Unix domain sockets (ConnectOptions.socketPath). RabbitMQ itself listens only on TCP, so a small node:net
 * server on a temporary socket path forwards each connection to the main test broker; warren talks AMQP
 * through it exactly as it would to a broker behind a local socket.
 */
import { mkdtempSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Connection, type ConnectOptions, connect, TransportError } from "../../src/index.ts";
import { amqpUrl } from "../support/broker.ts";

let dir: string;
let socketPath: string;
let proxy: net.Server;
/** Every client socket the proxy has accepted, in order. */
const accepted: net.Socket[] = [];

beforeAll(async () => {
  const broker = new URL(amqpUrl().replace(/^amqps?:/, "http:"));
  const port = Number(broker.port || 5672);
  const host = broker.hostname.replace(/^\[(.*)\]$/, "$1");
  dir = mkdtempSync(join(tmpdir(), "warren-unix-"));
  socketPath = join(dir, "amqp.sock");
  proxy = net.createServer((client) => {
    accepted.push(client);
    const upstream = net.connect(port, host);
    client.pipe(upstream).pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    proxy.once("error", reject);
    proxy.listen(socketPath, resolve);
  });
});

afterAll(async () => {
  for (const s of accepted) s.destroy();
  await new Promise<void>((resolve) => proxy.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

const opened: Connection[] = [];
afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((c) => c.close()));
});

async function open(url: string | undefined, options: ConnectOptions): Promise<Connection> {
  const conn = await connect(url, { connectionTimeout: 10_000, ...options });
  opened.push(conn);
  return conn;
}

describe("unix sockets", () => {
  it("connects through socketPath and runs declare, publish and get", async () => {
    const before = accepted.length;
    const conn = await open(undefined, { socketPath });
    expect(accepted.length).toBe(before + 1);
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    await ch.basicPublish("", queue, "through a unix socket", { contentType: "text/plain" });
    const msg = await ch.basicGet(queue, { noAck: true });
    expect(msg?.bodyText()).toBe("through a unix socket");
    expect(msg?.properties.contentType).toBe("text/plain");
  });

  it("ignores the URI's host and port when socketPath is given, but keeps its credentials and vhost", async () => {
    const before = accepted.length;
    // Nothing listens on port 1: the connection can only have gone through the socket.
    const conn = await open("amqp://guest:guest@127.0.0.1:1/%2f?heartbeat=5", { socketPath });
    expect(accepted.length).toBe(before + 1);
    const ch = await conn.openChannel();
    await ch.queueDeclare("", { exclusive: true });
  });

  it("carries a message larger than a frame intact, in many socket reads", async () => {
    const conn = await open(undefined, { socketPath });
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    const body = new Uint8Array(1024 * 1024 + 7);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31 + (i >> 8)) & 0xff;
    await ch.basicPublish("", queue, body);
    const msg = await ch.basicGet(queue, { noAck: true });
    expect(msg?.body.length).toBe(body.length);
    expect(Buffer.from(msg!.body).equals(Buffer.from(body))).toBe(true);
  });

  it("closes cleanly: close() resolves and the socket is released", async () => {
    const conn = await connect({ socketPath, connectionTimeout: 10_000 });
    const socket = accepted.at(-1)!;
    const released = new Promise<boolean>((resolve) => {
      socket.once("close", () => resolve(true));
      setTimeout(() => resolve(false), 5000);
    });
    await conn.close();
    expect(conn.closed).toBe(true);
    // The proxy sees the client's end of the socket close shortly after close() resolves.
    expect(await released).toBe(true);
  });

  it("fails with a TransportError naming the socket when nothing listens there", async () => {
    const missing = join(dir, "missing.sock");
    const err = await connect({ socketPath: missing, connectionTimeout: 5000 }).then(
      (c) => {
        opened.push(c);
        throw new Error("expected the connect to fail");
      },
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(TransportError);
    expect(err.message).toContain(`unix:${missing}`);
    expect(err.message).toMatch(/ENOENT/);
  });
});
