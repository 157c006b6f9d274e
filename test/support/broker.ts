/**
 * Helpers for the integration tests that talk to the real RabbitMQ started by `scripts/broker.sh ensure`.
 *
 * - `amqpUrl()` is the broker's URI (WARREN_TEST_URL overrides it).
 * - `rabbitmqctl(args)` runs rabbitmqctl against that broker (through `scripts/broker.sh ctl`).
 * - `uniqueName()` makes short names no other test (or concurrent test run) uses.
 * - `useConnections()` opens connections that are closed after each test, whatever the test did.
 * - `recordUnhandledRejections()` fails a file that left a promise rejection unhandled.
 *
 * Every wait here is bounded in time: a broken feature fails a test, it never hangs the suite.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { type Channel, connect, type ConnectOptions, type Connection } from "../../src/index.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** The broker's URI, with optional query parameters appended. */
export function amqpUrl(query = ""): string {
  const base = process.env.WARREN_TEST_URL ?? "amqp://guest:guest@127.0.0.1:5672/";
  return query ? `${base}${base.includes("?") ? "&" : "?"}${query}` : base;
}

/** Runs `rabbitmqctl ARGS` against the test broker; resolves with its standard output. */
export function rabbitmqctl(args: readonly string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("bash", ["scripts/broker.sh", "ctl", ...args], { cwd: ROOT, timeout: timeoutMs, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err) reject(new Error(`rabbitmqctl ${args[0]} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** A short name unique to this call, e.g. "warren.test.3f9a1c0b2d". */
export function uniqueName(prefix = "warren.test"): string {
  return `${prefix}.${randomBytes(5).toString("hex")}`;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects when `promise` has not settled within `ms`: a missing settlement fails the test with a reason. */
export async function within<T>(ms: number, promise: Promise<T>, what = "operation"): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` every `intervalMs` until it returns true; false when `timeoutMs` passed first. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000, intervalMs = 20): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (let i = 0; i < 100_000; i++) {
    if (await check()) return true;
    if (performance.now() >= deadline) return false;
    await sleep(intervalMs);
  }
  return false;
}

/**
 * Connections (and the queues/exchanges a test names) that are cleaned up after each test of the file,
 * whether it passed or not.
 */
export function useConnections(): {
  open(options?: ConnectOptions & { query?: string }): Promise<Connection>;
  channel(options?: ConnectOptions & { query?: string }): Promise<{ conn: Connection; ch: Channel }>;
  /** Deletes these queues/exchanges after the test (on a fresh connection). */
  cleanup(kind: "queue" | "exchange", name: string): void;
} {
  const open: Connection[] = [];
  const leftovers: { kind: "queue" | "exchange"; name: string }[] = [];
  afterEach(async () => {
    const conns = open.splice(0);
    await Promise.allSettled(conns.map((c) => within(10_000, c.close(), "close")));
    const names = leftovers.splice(0);
    if (names.length > 0) {
      const conn = await connect(amqpUrl());
      try {
        for (const { kind, name } of names) {
          const ch = await conn.openChannel();
          await (kind === "queue" ? ch.queueDelete(name) : ch.exchangeDelete(name)).catch(() => undefined);
          if (!ch.closed) await ch.close().catch(() => undefined);
        }
      } finally {
        await conn.close();
      }
    }
  });
  const openConn = async (options: ConnectOptions & { query?: string } = {}): Promise<Connection> => {
    const { query, ...rest } = options;
    const conn = await connect(amqpUrl(query), rest);
    open.push(conn);
    return conn;
  };
  return {
    open: openConn,
    async channel(options) {
      const conn = await openConn(options);
      return { conn, ch: await conn.openChannel() };
    },
    cleanup(kind, name) {
      leftovers.push({ kind, name });
    },
  };
}

/**
 * Records unhandled promise rejections for the whole file and asserts, after its last test, that there were
 * none. Vitest would report them too, but not as a failure of the file that caused them.
 */
export function recordUnhandledRejections(): void {
  const seen: unknown[] = [];
  const onRejection = (reason: unknown) => {
    seen.push(reason);
  };
  beforeAll(() => {
    process.on("unhandledRejection", onRejection);
  });
  afterAll(async () => {
    // Rejections are reported after a turn of the event loop: give late ones a chance to show up.
    await sleep(50);
    process.off("unhandledRejection", onRejection);
    expect(seen.map((r) => (r instanceof Error ? `${r.name}: ${r.message}` : String(r)))).toEqual([]);
  });
}

/** Connection names (client property connection_name) of the broker's current connections. */
export async function brokerConnectionNames(): Promise<string[]> {
  const out = await rabbitmqctl(["list_connections", "client_properties", "--formatter", "json"]);
  const rows = JSON.parse(out.slice(out.indexOf("["))) as { client_properties: [string, string, unknown][] }[];
  const names: string[] = [];
  for (const row of rows) {
    for (const [key, , value] of row.client_properties) if (key === "connection_name" && typeof value === "string") names.push(value);
  }
  return names;
}


/** Ready messages in a queue, by a passive queue.declare. */
export async function messageCount(ch: Channel, queue: string): Promise<number> {
  return (await ch.queueDeclare(queue, { passive: true })).messageCount;
}

/** A channel in confirm mode with an exclusive, server-named queue. */
export async function confirmChannelWithQueue(broker: ReturnType<typeof useConnections>): Promise<{ ch: Channel; queue: string }> {
  const { ch } = await broker.channel();
  const { queue } = await ch.queueDeclare("", { exclusive: true });
  await ch.confirmSelect();
  return { ch, queue };
}

/**
 * `open` connects (the connection is closed after the test, whatever happened); `rejection` returns the
 * error a connect rejects with and fails the test if it succeeds.
 */
export function useConnectAttempts(): {
  open(url: string, options?: ConnectOptions): Promise<Connection>;
  rejection(url: string, options?: ConnectOptions): Promise<Error>;
} {
  const opened: Connection[] = [];
  afterEach(async () => {
    await Promise.allSettled(opened.splice(0).map((c) => c.close()));
  });
  return {
    async open(url, options = {}) {
      const conn = await connect(url, { connectionTimeout: 10_000, ...options });
      opened.push(conn);
      return conn;
    },
    async rejection(url, options = {}) {
      try {
        opened.push(await connect(url, { connectionTimeout: 10_000, ...options }));
      } catch (e) {
        return e as Error;
      }
      throw new Error("expected the connect to be rejected, but it succeeded");
    },
  };
}
