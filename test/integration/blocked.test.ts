/**
 * connection.blocked / connection.unblocked, provoked with a memory alarm: a tiny vm_memory_high_watermark
 * makes RabbitMQ block every publishing connection until the watermark is restored.
 *
 * The alarm is broker-wide, so it is kept as short as possible (other test files publishing at the same time
 * just pause), and the watermark is restored whatever happens.
 */
import { afterEach, describe, expect, it } from "vitest";
import { rabbitmqctl, recordUnhandledRejections, useConnections, waitFor } from "../support/broker.ts";

recordUnhandledRejections();
const broker = useConnections();

const NORMAL_WATERMARK = "0.4";
let alarmRaised = false;

async function raiseAlarm(): Promise<void> {
  alarmRaised = true;
  await rabbitmqctl(["set_vm_memory_high_watermark", "0.0000001"]);
}
async function clearAlarm(): Promise<void> {
  if (!alarmRaised) return;
  await rabbitmqctl(["set_vm_memory_high_watermark", NORMAL_WATERMARK]);
  alarmRaised = false;
}

afterEach(async () => {
  await clearAlarm();
}, 30_000);

describe("resource alarms", () => {
  it("a publishing connection gets 'blocked' under a memory alarm and 'unblocked' when it clears", async () => {
    const { conn, ch } = await broker.channel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    const events: string[] = [];
    conn.on("blocked", (reason) => events.push(`blocked: ${reason}`));
    conn.on("unblocked", () => events.push("unblocked"));
    expect(conn.blocked).toBeUndefined();

    try {
      await raiseAlarm();
      // RabbitMQ blocks a connection when it publishes during the alarm.
      let published = 0;
      const blocked = await waitFor(() => {
        if (conn.blocked !== undefined) return true;
        if (published < 100) ch.tryPublish("", queue, `during alarm ${published++}`);
        return false;
      }, 10_000, 50);
      expect(blocked).toBe(true);
      expect(conn.blocked).toMatch(/memory/i);
      expect(events).toEqual([expect.stringMatching(/^blocked: .*memory/i)]);
    } finally {
      await clearAlarm();
    }
    expect(await waitFor(() => conn.blocked === undefined, 10_000, 20)).toBe(true);
    expect(events).toEqual([expect.stringMatching(/^blocked/), "unblocked"]);

    // Publishing works again, and what was published during the alarm arrives.
    await ch.confirmSelect();
    await ch.basicPublish("", queue, "after alarm");
    const { messageCount } = await ch.queueDeclare(queue, { passive: true });
    expect(messageCount).toBeGreaterThanOrEqual(2);
    expect(conn.closed).toBe(false);
  }, 40_000);
});
