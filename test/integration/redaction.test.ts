/**
 * A password must never leak: not into error messages, stacks, causes or JSON, not into how a connection
 * prints itself, not into console output, and not into `redactUrl`. The test uses a dedicated user whose
 * passwords carry a unique marker string, and looks for the marker everywhere.
 */
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { AccessRefusedError, connect, ConnectionForcedError, redactUrl, UsageError, type WarrenError } from "../../src/index.ts";
import { rabbitmqctl, recordUnhandledRejections, uniqueName, within } from "../support/broker.ts";

recordUnhandledRejections();

const marker = `Mk${Math.random().toString(36).slice(2, 12)}Zq`;
const user = uniqueName("warren_marker").replace(/\./g, "_");
const password = `right-${marker}-pw`;
const url = (pw: string) => `amqp://${user}:${encodeURIComponent(pw)}@127.0.0.1:5672/`;

/** Every rendering of `value` we can think of, for the marker search. */
function renderings(value: unknown): string[] {
  const out: string[] = [];
  const seen = new Set<unknown>();
  const visit = (v: unknown, depth: number) => {
    if (v === null || v === undefined || seen.has(v) || depth > 5) return;
    seen.add(v);
    out.push(String(v));
    try {
      out.push(JSON.stringify(v) ?? "");
    } catch {
      // circular: the other renderings cover it
    }
    out.push(inspect(v, { depth: 10, showHidden: true }));
    if (v instanceof Error) {
      out.push(v.message, v.stack ?? "");
      visit(v.cause, depth + 1);
    }
  };
  visit(value, 0);
  return out;
}

function expectNoMarker(value: unknown): void {
  for (const text of renderings(value)) expect(text).not.toContain(marker);
}

// Console output during these tests is checked too.
const consoleOutput: string[] = [];
beforeAll(async () => {
  for (const method of ["log", "info", "warn", "error", "debug"] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      consoleOutput.push(args.map((a) => inspect(a)).join(" "));
    });
  }
  await rabbitmqctl(["add_user", user, password]);
  await rabbitmqctl(["set_permissions", "-p", "/", user, ".*", ".*", ".*"]);
}, 60_000);

afterAll(async () => {
  vi.restoreAllMocks();
  await rabbitmqctl(["delete_user", user]).catch(() => undefined);
  expect(consoleOutput.join("\n")).not.toContain(marker);
}, 60_000);

describe("password redaction", () => {
  it("a wrong password containing the marker: AccessRefusedError that does not contain it", async () => {
    const wrong = `wrong-${marker}-pw`;
    const err = await connect(url(wrong)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AccessRefusedError);
    expect(err).toMatchObject({ replyCode: 403 });
    expectNoMarker(err);
    // The options-object form too.
    const err2 = await connect({ hostname: "127.0.0.1", username: user, password: wrong }).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(AccessRefusedError);
    expectNoMarker(err2);
  });

  it("a malformed URI with the marker in its password: UsageError that does not contain it", async () => {
    for (const bad of [`amqp://${user}:${marker}@127.0.0.1:notaport/`, `amqp://${user}:${marker}%zz@127.0.0.1/`, `http://${user}:${marker}@127.0.0.1/`]) {
      const err = await connect(bad).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UsageError);
      expectNoMarker(err);
    }
  });

  it("redactUrl hides the password", () => {
    const redacted = redactUrl(url(password));
    expect(redacted).not.toContain(marker);
    expect(redacted).toContain("***");
    expect(redacted).toContain(user);
    expect(redactUrl(`amqps://${user}:${marker}@host:5671/vh?heartbeat=5`)).toBe(`amqps://${user}:***@host:5671/vh?heartbeat=5`);
  });

  it("an open connection, and the error when the broker force-closes it, do not contain the right password", async () => {
    const conn = await connect(url(password), { connectionName: `marker-${user}`, recovery: false });
    const ch = await conn.openChannel();
    expect(conn.closed).toBe(false);
    expectNoMarker(conn);
    expectNoMarker(ch);
    expect(String(conn)).toContain(user);
    expect(JSON.stringify(conn)).toContain(user);

    const closed = new Promise<WarrenError | undefined>((resolve) => conn.once("close", resolve));
    const listing = await rabbitmqctl(["list_connections", "-q", "--no-table-headers", "pid", "user"]);
    const pid = listing
      .split("\n")
      .map((line) => line.split("\t"))
      .find(([, u]) => u?.trim() === user)?.[0];
    expect(pid).toBeDefined();
    await rabbitmqctl(["close_connection", pid!, "warren redaction test"]);
    const err = await within(10_000, closed, "forced close");
    expect(err).toBeInstanceOf(ConnectionForcedError);
    expect(err).toMatchObject({ replyCode: 320 });
    expect(err?.message).toContain("warren redaction test");
    expectNoMarker(err);
    expectNoMarker(conn);
    const later = await ch.queueDeclare("").catch((e: unknown) => e);
    expect(later).toBeInstanceOf(ConnectionForcedError);
    expectNoMarker(later);
  }, 30_000);
});
