/**
 * A broker of the test's own (test/support/broker-node.ts) dies and comes back, and the broker's durability
 * promise holds across it: a persistent message on a durable queue that the broker confirmed is there after
 * a kill -9 and a restart; what was not promised (a transient message, a non-durable queue) is not.
 *
 * The client runs with recovery off, so the connection the kill cut stays closed and the test connects again:
 * this pins the broker's side of the bargain (test/faults/broker-restart-recovery.test.ts pins the client's).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Connection, NotFoundError, TransportError, type WarrenError } from "../../src/index.ts";
import { type BrokerNode, startBrokerNode } from "../support/broker-node.ts";
import { recordUnhandledRejections, uniqueName, within } from "../support/broker.ts";

recordUnhandledRejections();

const silent = { logger: { warn() {} }, connectionTimeout: 10_000, recovery: false };

let node: BrokerNode | undefined;
beforeAll(async () => {
  node = await startBrokerNode({ name: "warren-restart", port: 5690 });
}, 90_000);
afterAll(async () => {
  await node?.dispose();
}, 60_000);

async function drain(conn: Connection, queue: string, max: number): Promise<string[]> {
  const ch = await conn.openChannel();
  const bodies: string[] = [];
  for (let i = 0; i < max; i++) {
    const m = await ch.basicGet(queue, { noAck: true });
    if (m === null) break;
    bodies.push(m.bodyText());
  }
  return bodies;
}

describe("a broker node of the test's own", () => {
  it("kill -9 and start: confirmed persistent messages on a durable queue survive, transient ones do not", async () => {
    const n = node!;
    const durable = uniqueName("warren.restart.durable");
    const transient = uniqueName("warren.restart.transient");
    const conn = await connect(n.url, silent);
    const closed = new Promise<WarrenError | undefined>((resolve) => conn.once("close", resolve));
    const ch = await conn.openChannel();
    await ch.queueDeclare(durable, { durable: true });
    await ch.queueDeclare(transient, { durable: false });
    await ch.confirmSelect();
    const sent = Array.from({ length: 50 }, (_, i) => `persistent-${i}`);
    await Promise.all([
      ...sent.map((body) => ch.basicPublish("", durable, body, { deliveryMode: 2 })),
      ch.basicPublish("", durable, "not persistent", { deliveryMode: 1 }),
      ch.basicPublish("", transient, "on a non-durable queue", { deliveryMode: 2 }),
    ]);

    const pid = n.pid();
    expect(pid).toBeGreaterThan(0);
    await n.kill9();
    expect(n.pid()).toBeUndefined();
    expect(await within(2000, closed, "close event")).toBeInstanceOf(TransportError);
    await expect(connect(n.url, silent)).rejects.toBeInstanceOf(TransportError);

    await n.start();
    expect(n.pid()).not.toBe(pid);
    const again = await connect(n.url, silent);
    try {
      const check = await again.openChannel();
      expect((await check.queueDeclare(durable, { passive: true })).messageCount).toBe(sent.length);
      await expect(check.queueDeclare(transient, { passive: true })).rejects.toBeInstanceOf(NotFoundError);
      expect(await drain(again, durable, sent.length + 10)).toEqual(sent);
    } finally {
      await again.close();
    }
  }, 60_000);

  it("stop and start (a clean restart) keep a durable queue and its persistent messages", async () => {
    const n = node!;
    const durable = uniqueName("warren.restart.clean");
    const conn = await connect(n.url, silent);
    const ch = await conn.openChannel();
    await ch.queueDeclare(durable, { durable: true });
    await ch.confirmSelect();
    await ch.basicPublish("", durable, "kept", { deliveryMode: 2 });
    const closed = new Promise<WarrenError | undefined>((resolve) => conn.once("close", resolve));
    await n.restart();
    // A clean stop closes client connections with connection.close 320 (CONNECTION_FORCED).
    expect((await within(2000, closed, "close event"))?.replyCode).toBe(320);
    const again = await connect(n.url, silent);
    try {
      expect(await drain(again, durable, 10)).toEqual(["kept"]);
    } finally {
      await again.close();
    }
  }, 60_000);
});
