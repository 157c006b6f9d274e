/**
 * Consumers against RabbitMQ: the async iterator and its bounded buffer, the callback form, cancelling by
 * leaving the loop, and consumers the broker cancels.
 */
import { describe, expect, it } from "vitest";
import { type Channel, type Connection, ConsumerCancelledError, type Message, NotFoundError } from "../../src/index.ts";
import { recordUnhandledRejections, sleep, uniqueName, useConnections, waitFor, within } from "../support/broker.ts";

recordUnhandledRejections();
const broker = useConnections();

async function setup(n: number): Promise<{ conn: Connection; ch: Channel; queue: string }> {
  const { conn, ch } = await broker.channel();
  const { queue } = await ch.queueDeclare("", { exclusive: true });
  await ch.confirmSelect();
  await Promise.all(Array.from({ length: n }, (_, i) => ch.basicPublish("", queue, `m${i}`)));
  return { conn, ch, queue };
}

async function consumerCount(ch: Channel, queue: string): Promise<number> {
  return (await ch.queueDeclare(queue, { passive: true })).consumerCount;
}

describe("async iterator", () => {
  it("buffers no more than the prefetch count while the application does not ack", async () => {
    const { ch, queue } = await setup(50);
    await ch.basicQos(5);
    const consumer = await ch.basicConsume(queue);
    expect(await waitFor(() => consumer.buffered === 5, 5000)).toBe(true);
    await sleep(300); // the broker had time to send more, were it allowed to
    expect(consumer.buffered).toBe(5);

    const got: string[] = [];
    let maxBuffered = 0;
    for await (const m of consumer) {
      maxBuffered = Math.max(maxBuffered, consumer.buffered);
      got.push(m.bodyText());
      m.ack();
      if (got.length === 50) break;
    }
    expect(maxBuffered).toBeLessThanOrEqual(5);
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
  });

  it("breaking out of for await cancels the consumer on the broker", async () => {
    const { ch, queue } = await setup(10);
    const consumer = await ch.basicConsume(queue);
    expect(await consumerCount(ch, queue)).toBe(1);
    let n = 0;
    for await (const m of consumer) {
      m.ack();
      if (++n === 3) break;
    }
    expect(consumer.closed).toBe(true);
    expect(await consumerCount(ch, queue)).toBe(0);
    expect(ch.closed).toBe(false);
  });

  it("an exception thrown in the loop cancels the consumer too", async () => {
    const { ch, queue } = await setup(3);
    const consumer = await ch.basicConsume(queue);
    const boom = new Error("application failure");
    await expect(
      (async () => {
        for await (const m of consumer) {
          m.ack();
          throw boom;
        }
      })(),
    ).rejects.toBe(boom);
    expect(consumer.closed).toBe(true);
    expect(await consumerCount(ch, queue)).toBe(0);
  });

  it("consumer.cancel() ends a waiting loop normally, after the buffered messages", async () => {
    const { ch, queue } = await setup(2);
    const consumer = await ch.basicConsume(queue);
    const got: string[] = [];
    const loop = (async () => {
      for await (const m of consumer) {
        got.push(m.bodyText());
        m.ack();
      }
      return "ended";
    })();
    expect(await waitFor(() => got.length === 2, 5000)).toBe(true);
    await consumer.cancel();
    expect(await within(5000, loop, "loop")).toBe("ended");
    expect(got).toEqual(["m0", "m1"]);
    expect(await consumerCount(ch, queue)).toBe(0);
  });

  it("a second loop over the same consumer sees later messages only", async () => {
    const { ch, queue } = await setup(4);
    await ch.basicQos(10);
    const consumer = await ch.basicConsume(queue, { noAck: true });
    expect(await waitFor(() => consumer.buffered === 4, 5000)).toBe(true);
    const it1 = consumer[Symbol.asyncIterator]();
    expect(((await it1.next()).value as Message).bodyText()).toBe("m0");
    expect(((await it1.next()).value as Message).bodyText()).toBe("m1");
    expect(consumer.buffered).toBe(2);
    await consumer.cancel();
    expect(((await it1.next()).value as Message).bodyText()).toBe("m2");
    expect(((await it1.next()).value as Message).bodyText()).toBe("m3");
    expect((await it1.next()).done).toBe(true);
  });
});

describe("callback consumers", () => {
  it("calls the callback for every message, in order", async () => {
    const { ch, queue } = await setup(20);
    const got: string[] = [];
    const consumer = await ch.basicConsume(queue, {}, (m) => {
      got.push(m.bodyText());
      m.ack();
    });
    expect(await waitFor(() => got.length === 20, 5000)).toBe(true);
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    expect(consumer.buffered).toBe(0);
    await consumer.cancel();
    expect(await consumerCount(ch, queue)).toBe(0);
  });

  it("a callback that throws or rejects is reported through 'error'; the message is requeued once, then dead-lettered", async () => {
    // Publish after the 'error' listener is attached: messages already waiting may reach the callback
    // before basicConsume resolves, when no listener can be there yet.
    const { ch } = await broker.channel();
    const { queue: dlq } = await ch.queueDeclare("", { exclusive: true });
    const { queue } = await ch.queueDeclare("", { exclusive: true, arguments: { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq } });
    await ch.confirmSelect();
    const errors: string[] = [];
    const consumer = await ch.basicConsume(queue, {}, (m) => {
      if (m.bodyText() === "m0") throw new Error("sync failure");
      return sleep(1).then(() => Promise.reject(new Error("async failure")));
    });
    consumer.on("error", (e, m) => errors.push(`${(e as Error).message} ${m.bodyText()}${m.redelivered ? " (redelivered)" : ""}`));
    await ch.basicPublish("", queue, "m0");
    await ch.basicPublish("", queue, "m1");
    expect(await waitFor(() => errors.length === 4, 5000)).toBe(true);
    expect(errors.sort()).toEqual(["async failure m1", "async failure m1 (redelivered)", "sync failure m0", "sync failure m0 (redelivered)"]);
    // The second failure rejected each without requeue: both went to the dead-letter queue.
    expect(await waitFor(async () => (await ch.queueDeclare(dlq, { passive: true })).messageCount === 2, 5000)).toBe(true);
    expect((await ch.queueDeclare(queue, { passive: true })).messageCount).toBe(0);
    await consumer.cancel();
  });

  it("requeueOnError: false dead-letters a failed message at once; a callback that settled its message is left alone", async () => {
    const { ch } = await broker.channel();
    const { queue: dlq } = await ch.queueDeclare("", { exclusive: true });
    const { queue } = await ch.queueDeclare("", { exclusive: true, arguments: { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq } });
    await ch.confirmSelect();
    const errors: string[] = [];
    const consumer = await ch.basicConsume(queue, { requeueOnError: false, onError: (e) => errors.push((e as Error).message) }, (m) => {
      if (m.bodyText() === "acked") m.ack(); // settled before failing: warren must not reject it again (406)
      throw new Error(`failed ${m.bodyText()}`);
    });
    await ch.basicPublish("", queue, "poison");
    await ch.basicPublish("", queue, "acked");
    expect(await waitFor(() => errors.length === 2, 5000)).toBe(true);
    expect(await waitFor(async () => (await ch.queueDeclare(dlq, { passive: true })).messageCount === 1, 5000)).toBe(true);
    const dead = await ch.basicGet(dlq, { noAck: true });
    expect(dead?.bodyText()).toBe("poison");
    expect(ch.closed).toBe(false);
    await consumer.cancel();
  });

  it("onError sees callback failures for messages that were waiting before basicConsume resolved", async () => {
    const { ch, queue } = await setup(3); // m0..m2 already in the queue: they arrive with consume-ok
    const errors: string[] = [];
    // requeueOnError: false, so each fails once (with the default they would be retried once more).
    const consumer = await ch.basicConsume(queue, { requeueOnError: false, onError: (e, m) => errors.push(`${(e as Error).message} ${m.bodyText()}`) }, (m) => {
      throw new Error(`failed ${m.bodyText()}`);
    });
    expect(await waitFor(() => errors.length === 3, 5000)).toBe(true);
    expect(errors).toEqual(["failed m0 m0", "failed m1 m1", "failed m2 m2"]);
    await consumer.cancel();
  });

  it("an exclusive consumer keeps others off the queue (403)", async () => {
    const { conn, ch, queue } = await setup(0);
    await ch.basicConsume(queue, { exclusive: true });
    const other = await conn.openChannel();
    await expect(other.basicConsume(queue)).rejects.toMatchObject({ name: "AccessRefusedError", replyCode: 403, classId: 60, methodId: 20 });
  });

  it("consuming from a missing queue rejects with NotFoundError", async () => {
    const { ch } = await broker.channel();
    await expect(ch.basicConsume(uniqueName())).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe("server-cancelled consumers", () => {
  it("deleting the queue from another channel cancels the consumer: the loop throws ConsumerCancelledError and the channel emits 'cancel'", async () => {
    const { conn, ch } = await broker.channel();
    const queue = uniqueName();
    broker.cleanup("queue", queue);
    await ch.queueDeclare(queue, { autoDelete: false });
    const consumer = await ch.basicConsume(queue);
    const cancelled: string[] = [];
    ch.on("cancel", (tag) => cancelled.push(tag));
    const closeEvent = new Promise<Error | undefined>((resolve) => consumer.once("close", resolve));
    // Catch at once: the cancel may reach the loop before queue.delete-ok reaches this test.
    const loop = (async () => {
      for await (const m of consumer) m.ack();
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    const other = await conn.openChannel();
    await other.queueDelete(queue);
    const err = await within(5000, loop, "loop");
    expect(err).toBeInstanceOf(ConsumerCancelledError);
    expect(err).toMatchObject({ code: "CONSUMER_CANCELLED" });
    expect(cancelled).toEqual([consumer.consumerTag]);
    expect(await within(1000, closeEvent, "consumer close")).toBeInstanceOf(ConsumerCancelledError);
    expect(consumer.closed).toBe(true);
    // The channel itself is fine.
    expect(ch.closed).toBe(false);
    const { queue: q2 } = await ch.queueDeclare("", { exclusive: true });
    expect(q2).toMatch(/^amq\.gen-/);
    // Cancelling a consumer the broker already cancelled is a no-op.
    await consumer.cancel();
  });

  it("a callback consumer learns of the cancel through its 'close' event", async () => {
    const { conn, ch } = await broker.channel();
    const queue = uniqueName();
    broker.cleanup("queue", queue);
    await ch.queueDeclare(queue);
    const consumer = await ch.basicConsume(queue, {}, () => undefined);
    const closeEvent = new Promise<Error | undefined>((resolve) => consumer.once("close", resolve));
    await (await conn.openChannel()).queueDelete(queue);
    expect(await within(5000, closeEvent, "consumer close")).toBeInstanceOf(ConsumerCancelledError);
  });
});
