/**
 * Bodies that span many frames, and bodies at the exact frame boundary: published and consumed intact.
 * A body frame carries frame_max - 8 bytes of payload (7 bytes of header, 1 frame-end octet).
 */
import { describe, expect, it } from "vitest";
import type { Channel, Message } from "../../src/index.ts";
import { recordUnhandledRejections, useConnections, waitFor } from "../support/broker.ts";

recordUnhandledRejections();
const broker = useConnections();

const FRAME_MAX = 131072;

/** Deterministic, position-dependent bytes, so a shifted or repeated chunk is detected. */
function pattern(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function setup(): Promise<{ ch: Channel; queue: string }> {
  const { conn, ch } = await broker.channel({ frameMax: FRAME_MAX });
  expect(conn.machine.negotiatedFrameMax).toBe(FRAME_MAX);
  const { queue } = await ch.queueDeclare("", { exclusive: true });
  await ch.confirmSelect();
  return { ch, queue };
}

describe("large bodies", () => {
  it("a 5 MiB body spanning 41 frames arrives intact through basicGet and a consumer", async () => {
    const { ch, queue } = await setup();
    const body = pattern(5 * 1024 * 1024, 7);
    await ch.basicPublish("", queue, body, { contentType: "application/octet-stream" });
    await ch.basicPublish("", queue, body);
    const got = await ch.basicGet(queue, { noAck: true });
    expect(got?.body.length).toBe(body.length);
    expect(sameBytes(got!.body, body)).toBe(true);
    expect(got?.properties.contentType).toBe("application/octet-stream");

    const received: Message[] = [];
    const consumer = await ch.basicConsume(queue, { noAck: true }, (m) => received.push(m));
    expect(await waitFor(() => received.length === 1, 10_000)).toBe(true);
    expect(sameBytes(received[0]!.body, body)).toBe(true);
    await consumer.cancel();
  });

  for (const [label, size] of [
    ["frame_max - 9 (one frame, one byte spare)", FRAME_MAX - 9],
    ["frame_max - 8 (exactly one full frame)", FRAME_MAX - 8],
    ["frame_max - 7 (one byte into a second frame)", FRAME_MAX - 7],
    ["2 × (frame_max - 8) (exactly two full frames)", 2 * (FRAME_MAX - 8)],
    ["2 × (frame_max - 8) + 1", 2 * (FRAME_MAX - 8) + 1],
  ] as const) {
    it(`a body of ${label} bytes arrives intact`, async () => {
      const { ch, queue } = await setup();
      const body = pattern(size, size);
      await ch.basicPublish("", queue, body);
      // Interleave with a small message on the same channel: frames must not mix.
      await ch.basicPublish("", queue, "small");
      const got = await ch.basicGet(queue, { noAck: true });
      expect(got?.body.length).toBe(size);
      expect(sameBytes(got!.body, body)).toBe(true);
      expect((await ch.basicGet(queue, { noAck: true }))?.bodyText()).toBe("small");
    });
  }

  it("a large string body (multi-byte UTF-8) arrives intact", async () => {
    const { ch, queue } = await setup();
    const text = "ünïcødé ✓ 😀 ".repeat(40_000); // ~ 800 KB of UTF-8
    await ch.basicPublish("", queue, text);
    expect((await ch.basicGet(queue, { noAck: true }))?.bodyText()).toBe(text);
  });

  it("large messages published concurrently on several channels do not interleave", async () => {
    const conn = await broker.open({ frameMax: 16384 });
    const channels = await Promise.all([0, 1, 2, 3].map(() => conn.openChannel()));
    const { queue } = await channels[0]!.queueDeclare("", { exclusive: true });
    for (const ch of channels) await ch.confirmSelect();
    const bodies = channels.map((_, i) => pattern(300_000 + i * 1001, i + 1));
    await Promise.all(channels.flatMap((ch, i) => [ch.basicPublish("", queue, bodies[i]!), ch.basicPublish("", queue, bodies[i]!)]));
    const seen = new Map<number, number>();
    for (let n = 0; n < 8; n++) {
      const m = await channels[0]!.basicGet(queue, { noAck: true });
      const i = bodies.findIndex((b) => sameBytes(b, m!.body));
      expect(i).toBeGreaterThanOrEqual(0);
      seen.set(i, (seen.get(i) ?? 0) + 1);
    }
    expect([...seen.entries()].sort()).toEqual([[0, 2], [1, 2], [2, 2], [3, 2]]);
  });
});
