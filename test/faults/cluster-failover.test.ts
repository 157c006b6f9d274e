/**
 * Failover across a three-node RabbitMQ cluster (scripts/cluster.sh) with recovery on: the client is given
 * all three nodes, connects to the first, and a quorum queue takes a confirm-mode publisher and a consumer.
 * The node the client is connected to is killed with SIGKILL: the client fails over to another node and
 * carries on with the same objects — no confirmed message lost, no publish nacked by the failover.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Connection, connect } from "../../src/index.ts";
import { outcomes, receiveAll, settled, track } from "../support/loss.ts";
import { cluster, clusterUrl } from "../support/cluster.ts";
import { recordUnhandledRejections, sleep, uniqueName, waitFor, within } from "../support/broker.ts";

recordUnhandledRejections();

const URLS = [clusterUrl(1), clusterUrl(2), clusterUrl(3)];


let killed = false;
let conn: Connection | undefined;

beforeAll(async () => {
  await cluster(["lease", String(process.pid)]);
}, 180_000);

afterAll(async () => {
  await conn?.close().catch(() => undefined);
  if (killed) await cluster(["start-node", "1"]);
  await cluster(["release", String(process.pid)]);
}, 150_000);

describe("cluster failover", () => {
  it("the node the client is on dies: it fails over, the consumer and the publisher carry on, nothing confirmed is lost, nothing is nacked", async () => {
    conn = await connect(URLS, { heartbeat: 2, logger: { warn() {} }, recovery: { reconnect: { initialDelayMs: 100, maxDelayMs: 500 }, waitTimeout: 60_000 } });
    const c = conn;
    const ch = await c.openChannel();
    const queue = uniqueName("warren.failover");
    await ch.queueDeclare(queue, { durable: true, arguments: { "x-queue-type": "quorum" } });
    await ch.basicQos(100);
    await ch.confirmSelect();
    const consumer = await ch.basicConsume(queue);
    const received = receiveAll(consumer);
    const recovered = new Promise<void>((resolve) => c.once("recovered", () => resolve()));

    const outcome = outcomes();
    const publishes: Promise<void>[] = [];
    let killedAt = 0;
    for (let i = 0; i < 300; i++) {
      const id = `m${i}`;
      publishes.push(
        track(outcome, id, ch.basicPublish("", queue, id, { deliveryMode: 2 })),
      );
      if (i === 100) {
        await cluster(["kill", "1"]);
        killed = true;
        killedAt = Date.now();
      }
      await sleep(3);
    }
    await within(60_000, recovered, "recovered on another node");
    const recoveryMs = Date.now() - killedAt;
    await within(90_000, Promise.all(publishes), "every publish settles");
    expect(outcome.other).toEqual([]);
    expect(outcome.nacked).toEqual([]);
    expect(settled(outcome)).toBe(300);
    expect(outcome.ok.length).toBeGreaterThan(150);
    expect(await waitFor(() => outcome.ok.every((id) => received.has(id)), 30_000)).toBe(true);
    expect(c.state).toBe("open");
    expect(recoveryMs).toBeLessThan(30_000);
    await consumer.cancel();
    await ch.queueDelete(queue);
  }, 150_000);
});
