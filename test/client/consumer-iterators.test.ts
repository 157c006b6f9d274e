/**
 * One consumer, one iterator (issue 8, defect 6). A consumer has a single place to wake a waiting loop, so a
 * second `for await` over it used to steal the first loop's wake-ups and leave it hanging, even after
 * cancel(). The second iterator is refused at once with a UsageError; the first goes on as if nothing happened.
 */
import { describe, expect, it } from "vitest";
import type { Consumer } from "../../src/client/consumer.ts";
import type { Message } from "../../src/client/message.ts";
import type { Channel } from "../../src/client/channel.ts";
import { type FakePeer, method } from "../support/fake-peer.ts";
import { openConnection, settle, settledWithin } from "../support/fake-runtime.ts";
import { useProcessGuard } from "../support/process-guard.ts";

useProcessGuard();

async function consumerOn(ch: Channel, peer: FakePeer, tag: string): Promise<Consumer> {
  const consuming = ch.basicConsume("q");
  await peer.expectMethod("basic.consume", { channel: ch.id });
  peer.send(ch.id, method("basic.consume-ok", { consumerTag: tag }));
  return settledWithin(consuming);
}

describe("a second iterator over one consumer", () => {
  it("throws a UsageError at once, and the first loop keeps receiving until cancel", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    const consumer = await consumerOn(ch, peer, "c1");
    const got: string[] = [];
    const first = (async () => {
      for await (const m of consumer as AsyncIterable<Message>) got.push(m.bodyText());
    })();
    await settle();

    let thrown: unknown;
    try {
      consumer[Symbol.asyncIterator]();
    } catch (e) {
      thrown = e;
    }
    expect(thrown, "the second [Symbol.asyncIterator]() must throw").toMatchObject({ code: "USAGE_ERROR" });

    peer.deliver(ch.id, "c1", 1, "a");
    peer.deliver(ch.id, "c1", 2, "b");
    await settle();
    expect(got).toEqual(["a", "b"]);

    const cancelling = consumer.cancel();
    const cancel = await peer.expectMethod("basic.cancel", { channel: ch.id });
    peer.send(ch.id, method("basic.cancel-ok", { consumerTag: cancel.consumerTag }));
    await settledWithin(cancelling, 1000, "cancel()");
    await settledWithin(first, 1000, "the first loop");
    await conn.close();
  });
});
