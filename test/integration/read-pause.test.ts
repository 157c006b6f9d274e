/**
 * A consumer without a prefetch limit (noAck) whose loop falls behind: the client stops reading from the
 * socket past a bound instead of buffering everything the broker sends, and resumes as the loop catches up.
 */
import { describe, expect, it } from "vitest";
import { recordUnhandledRejections, sleep, useConnections, waitFor } from "../support/broker.ts";

recordUnhandledRejections();
const broker = useConnections();

describe("reading pauses for a consumer that falls behind", () => {
  it("a noAck consumer's buffer stays bounded while its loop is idle, and nothing is lost", async () => {
    const { conn, ch } = await broker.channel();
    const paused: boolean[] = [];
    conn.on("readPaused", (p) => paused.push(p));
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    const total = 20_000;
    await ch.confirmSelect();
    const body = new Uint8Array(16);
    await Promise.all(Array.from({ length: total }, () => ch.basicPublish("", queue, body)));

    const consumer = await ch.basicConsume(queue, { noAck: true });
    // Let the broker push: without the pause, all 20000 would pile up in the buffer.
    expect(await waitFor(() => consumer.buffered >= 4096, 10_000)).toBe(true);
    await sleep(500);
    const peak = consumer.buffered;
    expect(peak).toBeLessThan(total / 2); // paused at 4096, plus what one read already held
    expect(paused).toEqual([true]); // and said so

    let received = 0;
    for await (const _ of consumer) {
      if (++received === total) break;
    }
    expect(received).toBe(total);
    expect(paused[0]).toBe(true);
    expect(paused.at(-1)).toBe(false); // reading resumed as the loop caught up
  });
});
