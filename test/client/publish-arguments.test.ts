/**
 * Bad publish arguments get a typed error naming the argument, before anything is sent (issue 8, defect 10,
 * client part); a Date timestamp is accepted and sent as whole seconds (AMQP's timestamp is a 64-bit POSIX
 * time in seconds).
 */
import { describe, expect, it } from "vitest";
import { openConnection, rejectionOf, settle } from "../support/fake-runtime.ts";
import { useProcessGuard } from "../support/process-guard.ts";

useProcessGuard();

describe("basicPublish arguments", () => {
  it("a body that is neither bytes nor a string is a UsageError naming body, and nothing is written", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    const e = await rejectionOf(ch.basicPublish("", "q", { a: 1 } as unknown as Uint8Array));
    expect(e).toMatchObject({ code: "USAGE_ERROR" });
    expect(e.message).toMatch(/body/);
    await settle();
    expect(peer.methods("basic.publish")).toEqual([]);
    expect(ch.closed).toBe(false);
    await conn.close();
  });

  it("a Date timestamp is sent as POSIX seconds", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    const timestamp = new Date(1_700_000_000_123) as unknown as number;
    await ch.basicPublish("", "q", "m", { timestamp });
    const c = await peer.expectContent();
    expect(Number(c.properties.timestamp)).toBe(1_700_000_000);
    await conn.close();
  });

  it("NaN in headers is a UsageError naming the header, and nothing is written", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    const e = await rejectionOf(ch.basicPublish("", "q", "m", { headers: { "x-ratio": Number.NaN } }));
    expect(e).toMatchObject({ code: "USAGE_ERROR" });
    expect(e.message).toMatch(/x-ratio/);
    await settle();
    expect(peer.methods("basic.publish")).toEqual([]);
    expect(ch.closed).toBe(false);
    await conn.close();
  });
});
