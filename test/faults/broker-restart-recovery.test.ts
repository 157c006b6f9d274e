/**
 * Recovery across a broker that dies: a node of the test's own is killed with SIGKILL (and, in the second
 * test, stopped cleanly) while a consumer loop and a confirm-mode publisher of persistent messages on a
 * durable queue run. The same objects carry on once the node is back, and the accounting is Jepsen-style:
 * every message has an id; each publish ends ok, unknown (OutcomeUnknownError) or not sent
 * (NotConnectedError); after the faults the queue is drained and no confirmed message may be missing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Connection, connect } from "../../src/index.ts";
import { type Outcomes, outcomes, receiveAll, settled, track } from "../support/loss.ts";
import { type BrokerNode, startBrokerNode } from "../support/broker-node.ts";
import { recordUnhandledRejections, sleep, uniqueName, waitFor, within } from "../support/broker.ts";

recordUnhandledRejections();

let node: BrokerNode;

beforeAll(async () => {
  node = await startBrokerNode({ name: "warren-recover", port: 5691 });
}, 90_000);

afterAll(async () => {
  await node?.dispose();
}, 60_000);

async function run(fault: () => Promise<void>): Promise<{ outcome: Outcomes; received: Set<string>; conn: Connection; recoveredIn: number }> {
  const conn = await connect(node.url, { heartbeat: 2, logger: { warn() {} }, recovery: { reconnect: { initialDelayMs: 100, maxDelayMs: 500 }, waitTimeout: 60_000 } });
  const ch = await conn.openChannel();
  const queue = uniqueName("warren.restart");
  await ch.queueDeclare(queue, { durable: true });
  await ch.basicQos(100);
  await ch.confirmSelect();
  const consumer = await ch.basicConsume(queue);
  const received = receiveAll(consumer);

  const outcome = outcomes();
  const publishes: Promise<void>[] = [];
  let faulted = false;
  let faultDone: Promise<void> | undefined;
  let recoveredIn = 0;
  const recovered = new Promise<void>((resolve) => conn.once("recovered", () => resolve()));
  const t0 = Date.now();
  // Bounded by count (400 messages) and time (the within() below).
  for (let i = 0; i < 400; i++) {
    const id = `m${i}`;
    publishes.push(track(outcome, id, ch.basicPublish("", queue, id, { deliveryMode: 2 })));
    if (i === 150 && !faulted) {
      faulted = true;
      faultDone = fault().then(async () => {
        const back = Date.now();
        await recovered;
        recoveredIn = Date.now() - back;
      });
    }
    await sleep(2);
  }
  await within(90_000, Promise.all(publishes), "every publish settles");
  await within(60_000, faultDone!, "the node is back and the connection recovered");
  expect(Date.now() - t0).toBeLessThan(90_000);
  expect(await waitFor(() => outcome.ok.every((id) => received.has(id)), 20_000)).toBe(true);
  await consumer.cancel();
  await ch.queueDelete(queue);
  return { outcome, received, conn, recoveredIn };
}

describe("recovery across a broker that dies", () => {
  it("kill -9 and start again: the consumer and the publisher carry on; no confirmed persistent message is lost", async () => {
    const { outcome, conn, recoveredIn } = await run(async () => {
      await node.kill9();
      await node.start();
    });
    expect(outcome.other).toEqual([]);
    expect(outcome.nacked).toEqual([]);
    expect(settled(outcome)).toBe(400);
    expect(outcome.ok.length).toBeGreaterThan(200);
    expect(conn.state).toBe("open");
    expect(recoveredIn).toBeLessThan(5000);
    await conn.close();
  }, 120_000);

  it("a clean broker restart (connection.close 320, then a refused port for a while): the same", async () => {
    const { outcome, conn } = await run(() => node.restart());
    expect(outcome.other).toEqual([]);
    expect(outcome.nacked).toEqual([]);
    expect(settled(outcome)).toBe(400);
    expect(outcome.ok.length).toBeGreaterThan(200);
    expect(conn.state).toBe("open");
    await conn.close();
  }, 120_000);
});
