/**
 * Publisher confirms, mandatory returns and transactions against RabbitMQ, and a 10 000-message round trip
 * in which every message must arrive exactly once.
 */
import { describe, expect, it } from "vitest";
import { MessageReturnedError, PublishNackedError, type ReturnedMessage } from "../../src/index.ts";
import { confirmChannelWithQueue, messageCount, recordUnhandledRejections, uniqueName, useConnections, waitFor, within } from "../support/broker.ts";

recordUnhandledRejections();
const broker = useConnections();

const setup = () => confirmChannelWithQueue(broker);
const count = messageCount;

describe("publisher confirms", () => {
  it("basicPublish resolves once the broker acked, and the message is then in the queue", async () => {
    const { ch, queue } = await setup();
    await expect(ch.basicPublish("", queue, "confirmed")).resolves.toBeUndefined();
    expect(await count(ch, queue)).toBe(1);
  });

  it("a mandatory unroutable publish rejects with MessageReturnedError 312 and the channel emits 'return'", async () => {
    const { ch } = await setup();
    const exchange = uniqueName();
    broker.cleanup("exchange", exchange);
    await ch.exchangeDeclare(exchange, "direct");
    const returned: ReturnedMessage[] = [];
    ch.on("return", (m) => returned.push(m));
    const err = await ch.basicPublish(exchange, "nowhere", "lost", { messageId: "m-1" }, { mandatory: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MessageReturnedError);
    expect(err).toMatchObject({ code: "MESSAGE_RETURNED", replyCode: 312, replyText: "NO_ROUTE" });
    expect(returned).toHaveLength(1);
    expect(returned[0]).toMatchObject({ replyCode: 312, replyText: "NO_ROUTE", exchange, routingKey: "nowhere" });
    expect(new TextDecoder().decode(returned[0]!.body)).toBe("lost");
    expect(returned[0]!.properties.messageId).toBe("m-1");
    // The channel is fine afterwards.
    expect(ch.closed).toBe(false);
    await ch.basicQos(1);
  });

  it("without mandatory an unroutable publish is simply acked (dropped by the broker)", async () => {
    const { ch } = await setup();
    let returns = 0;
    ch.on("return", () => returns++);
    await expect(ch.basicPublish("", uniqueName(), "dropped")).resolves.toBeUndefined();
    expect(returns).toBe(0);
  });

  it("returns are matched to the right publishes when routable and unroutable ones interleave", async () => {
    const { ch, queue } = await setup();
    const missing = uniqueName();
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) => ch.basicPublish("", i % 3 === 0 ? missing : queue, `m${i}`, {}, { mandatory: true })),
    );
    results.forEach((r, i) => {
      if (i % 3 === 0) {
        expect(r.status).toBe("rejected");
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(MessageReturnedError);
      } else expect(r.status).toBe("fulfilled");
    });
    expect(await count(ch, queue)).toBe(26);
  });

  it("outside confirm mode a mandatory return still emits 'return'", async () => {
    const { ch } = await broker.channel();
    const returned = new Promise<ReturnedMessage>((resolve) => ch.once("return", resolve));
    await expect(ch.basicPublish("", uniqueName(), "back", {}, { mandatory: true })).resolves.toBeUndefined();
    const m = await within(5000, returned, "basic.return");
    expect(m.replyCode).toBe(312);
    expect(new TextDecoder().decode(m.body)).toBe("back");
  });

  it("2000 concurrent confirmed publishes, at most 256 in flight, all resolve", async () => {
    const { ch, queue } = await setup();
    const N = 2000;
    const WINDOW = 256;
    const inFlight = new Set<Promise<void>>();
    let acked = 0;
    for (let i = 0; i < N; i++) {
      const p: Promise<void> = ch.basicPublish("", queue, `m${i}`).then(() => {
        acked++;
        inFlight.delete(p);
      });
      inFlight.add(p);
      if (inFlight.size >= WINDOW) await Promise.race(inFlight);
      expect(inFlight.size).toBeLessThanOrEqual(WINDOW);
    }
    await within(15_000, Promise.all(inFlight), "the last confirms");
    expect(acked).toBe(N);
    expect(await count(ch, queue)).toBe(N);
  });

  it("a nack rejects with PublishNackedError (x-overflow reject-publish on a full queue)", async () => {
    const { ch } = await broker.channel();
    const { queue } = await ch.queueDeclare("", { exclusive: true, arguments: { "x-max-length": 1, "x-overflow": "reject-publish" } });
    await ch.confirmSelect();
    const [first, second, third] = await Promise.allSettled([ch.basicPublish("", queue, "1"), ch.basicPublish("", queue, "2"), ch.basicPublish("", queue, "3")]);
    expect(first.status).toBe("fulfilled");
    for (const r of [second, third]) {
      expect(r.status).toBe("rejected");
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(PublishNackedError);
      expect((r as PromiseRejectedResult).reason).toMatchObject({ code: "PUBLISH_NACKED" });
    }
    // A nack is not a channel error.
    expect(ch.closed).toBe(false);
    expect(await count(ch, queue)).toBe(1);
    expect((await ch.basicGet(queue, { noAck: true }))?.bodyText()).toBe("1");
    await expect(ch.basicPublish("", queue, "4")).resolves.toBeUndefined();
  });
});

describe("transactions", () => {
  it("rollback discards publishes; commit makes them visible", async () => {
    const { conn, ch } = await broker.channel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.txSelect();
    const observer = await conn.openChannel();
    await ch.basicPublish("", queue, "rolled back");
    await ch.basicPublish("", queue, "rolled back too");
    await ch.txRollback();
    expect(await count(observer, queue)).toBe(0);

    await ch.basicPublish("", queue, "committed");
    expect(await count(observer, queue)).toBe(0); // not before the commit
    await ch.txCommit();
    expect(await count(observer, queue)).toBe(1);
    expect((await observer.basicGet(queue, { noAck: true }))?.bodyText()).toBe("committed");
  });

  it("acks inside a transaction take effect on commit only", async () => {
    const { conn, ch } = await broker.channel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    const publisher = await conn.openChannel();
    await publisher.confirmSelect();
    await publisher.basicPublish("", queue, "x");
    await ch.txSelect();
    const m = await ch.basicGet(queue);
    m!.ack();
    await ch.txRollback(); // the ack is discarded: the message stays unacked
    await ch.basicRecover(true);
    const again = await ch.basicGet(queue);
    expect(again?.redelivered).toBe(true);
    again!.ack();
    await ch.txCommit();
    await ch.basicRecover(true);
    expect(await ch.basicGet(queue)).toBeNull();
  });

  it("txCommit without txSelect is a channel error (406)", async () => {
    const { conn, ch } = await broker.channel();
    await expect(ch.txCommit()).rejects.toMatchObject({ name: "PreconditionFailedError", replyCode: 406, classId: 90, methodId: 20 });
    expect(conn.closed).toBe(false);
  });
});

describe("volume", () => {
  it("10 000 confirmed messages are each consumed exactly once", async () => {
    const conn = await broker.open();
    const pub = await conn.openChannel();
    const sub = await conn.openChannel();
    const { queue } = await pub.queueDeclare("", { exclusive: true });
    await pub.confirmSelect();
    await sub.basicQos(500);
    const N = 10_000;
    const seen = new Uint8Array(N);
    let received = 0;
    let duplicates = 0;
    const consumer = await sub.basicConsume(queue, {}, (m) => {
      const i = Number(m.bodyText());
      if (seen[i]) duplicates++;
      seen[i] = 1;
      received++;
      m.ack();
    });
    const publishes: Promise<void>[] = [];
    for (let i = 0; i < N; i++) {
      publishes.push(pub.basicPublish("", queue, String(i)));
      if (i % 1000 === 999) await conn.writable(); // let the socket drain between bursts
    }
    await within(15_000, Promise.all(publishes), "10 000 confirms");
    expect(await waitFor(() => received >= N, 15_000, 20)).toBe(true);
    await consumer.cancel();
    expect(duplicates).toBe(0);
    expect(received).toBe(N);
    expect(seen.every((x) => x === 1)).toBe(true);
    expect(await count(pub, queue)).toBe(0);
  });
});
