/**
 * A three-node RabbitMQ cluster on loopback (scripts/cluster.sh): a quorum queue keeps every confirmed message
 * when the node the publisher was connected to is killed, and a client on another node consumes them all.
 *
 * The client runs with recovery off: the connection to the killed node closes and the test connects to
 * node 2 itself, so this pins what the cluster keeps, whatever the client's failover does. The cluster is
 * started here unless it runs (about 20 s), and stopped after the file if it was started for it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Channel, connect, type Connection, type Consumer, TransportError, type WarrenError } from "../../src/index.ts";
import { recordUnhandledRejections, uniqueName, within } from "../support/broker.ts";
import { cluster, clusterUrl } from "../support/cluster.ts";

recordUnhandledRejections();

const nodeUrl = clusterUrl;
const silent = { logger: { warn() {} }, connectionTimeout: 10_000, recovery: false };


let node1Down = false;
const opened: Connection[] = [];

// A lease (scripts/cluster.sh lease/release) rather than start/stop: the cluster is started unless it runs,
// and stopped after the last test file holding a lease, only if a lease started it.
beforeAll(async () => {
  await cluster(["lease", String(process.pid)]);
}, 180_000);

afterAll(async () => {
  await Promise.allSettled(opened.map((c) => within(10_000, c.close(), "close")));
  if (node1Down) await cluster(["start-node", "1"]); // leave the cluster as we found it
  await cluster(["release", String(process.pid)]);
}, 120_000);

async function open(n: 1 | 2 | 3): Promise<Connection> {
  const conn = await connect(nodeUrl(n), silent);
  opened.push(conn);
  return conn;
}

/**
 * Consumes on `queue` through `conn` until `count` messages arrived, acking each. Right after a node dies the
 * queue may have no leader for a moment: a consume that fails then is retried on a new channel (bounded).
 */
async function consumeAll(conn: Connection, queue: string, count: number, ms: number): Promise<string[]> {
  const deadline = performance.now() + ms;
  const bodies: string[] = [];
  for (let attempt = 0; attempt < 50 && bodies.length < count; attempt++) {
    let ch: Channel | undefined;
    let consumer: Consumer | undefined;
    try {
      ch = await conn.openChannel();
      await ch.basicQos(50);
      consumer = await ch.basicConsume(queue);
      const c = consumer;
      await within(Math.max(1, deadline - performance.now()), (async () => {
        for await (const m of c) {
          bodies.push(m.bodyText());
          m.ack();
          if (bodies.length >= count) break;
        }
      })(), "consuming");
    } catch (e) {
      if (performance.now() > deadline) throw e;
      await new Promise((resolve) => setTimeout(resolve, 250));
    } finally {
      if (ch && !ch.closed) await ch.close().catch(() => undefined);
    }
  }
  return bodies;
}

describe("a three-node cluster", () => {
  it("kill -9 of the node a publisher used: a quorum queue keeps every confirmed message, consumed via node 2", async () => {
    const queue = uniqueName("warren.cluster.quorum");
    const conn1 = await open(1);
    const closed = new Promise<WarrenError | undefined>((resolve) => conn1.once("close", resolve));
    const ch1 = await conn1.openChannel();
    await ch1.queueDeclare(queue, { durable: true, arguments: { "x-queue-type": "quorum" } });
    await ch1.confirmSelect();
    const sent = Array.from({ length: 200 }, (_, i) => `m-${i}`);
    await Promise.all(sent.map((body) => ch1.basicPublish("", queue, body, { deliveryMode: 2, messageId: body })));

    node1Down = true;
    await cluster(["kill", "1"], 30_000);
    expect(await within(5000, closed, "close event of the connection to node 1")).toBeInstanceOf(TransportError);

    const conn2 = await open(2);
    const got = await consumeAll(conn2, queue, sent.length, 30_000);
    // Every confirmed message, each once (quorum queues keep order per publisher as well).
    expect(got).toEqual(sent);
    const ch2 = await conn2.openChannel();
    expect((await ch2.queueDeclare(queue, { passive: true })).messageCount).toBe(0);

    await cluster(["start-node", "1"], 120_000);
    node1Down = false;
    expect(await cluster(["status"])).toMatch(/running: (warren-c\d@localhost ?){3}/);
    // Node 1 is back in the cluster and serves the same queue.
    const back = await (await open(1)).openChannel();
    expect((await back.queueDeclare(queue, { passive: true })).messageCount).toBe(0);
    await back.queueDelete(queue);
  }, 150_000);
});
