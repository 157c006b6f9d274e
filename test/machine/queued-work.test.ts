/**
 * Work queued behind a request in flight is encoded when it is queued (issue 8, defects 1 and 2): what goes
 * out later is what the caller asked for at the time, whatever it does with its objects afterwards, and
 * nothing about it can make `handleInput` throw when the channel's turn comes.
 */
import { describe, expect, it } from "vitest";
import type { BasicProperties } from "../../src/codec/amqp/properties.ts";
import { connected, method, utf8 } from "../support/fake-broker.ts";

/** A channel with a queue.declare in flight, so whatever is asked next waits in its queue. */
function busyChannel() {
  const broker = connected();
  const ch = broker.openChannel();
  broker.machine.call(ch, method("queue.declare", { queue: "q" }));
  broker.expectMethod("queue.declare", { channel: ch });
  return { broker, ch };
}

describe("a publish queued behind a request in flight", () => {
  it("goes out with the body and headers it had when published, though the caller then mutates them", () => {
    const { broker, ch } = busyChannel();
    const body = utf8("original");
    const headers: Record<string, string> = { trace: "t-1" };
    const properties: BasicProperties = { contentType: "text/plain", headers };
    broker.machine.publish(ch, "ex", "rk", body, properties);
    broker.expectNothingSent();
    // the caller reuses its buffer and its objects at once: basicPublish has already resolved
    body.set(utf8("CHANGED!"));
    headers.trace = "t-2";
    headers.extra = "added";
    broker.reply(ch, method("queue.declare-ok", { queue: "q" }));
    const sent = broker.expectContent("basic.publish", { channel: ch });
    expect(new TextDecoder().decode(sent.body)).toBe("original");
    expect({ ...sent.properties.headers }).toEqual({ trace: "t-1" });
  });

  it("made unencodable after queueing (a 300-byte contentType), does not make handleInput throw; the original goes out", () => {
    const { broker, ch } = busyChannel();
    const properties: { contentType: string } = { contentType: "text/plain" };
    broker.machine.publish(ch, "ex", "rk", utf8("x"), properties);
    properties.contentType = "a".repeat(300);
    expect(() => broker.reply(ch, method("queue.declare-ok", { queue: "q" }))).not.toThrow();
    expect(broker.expectEvent("reply").method.name).toBe("queue.declare-ok");
    expect(broker.expectContent("basic.publish", { channel: ch }).properties.contentType).toBe("text/plain");
    expect(broker.machine.isOpen).toBe(true);
  });

  it("that cannot be encoded is refused by publish itself (CommandError), and nothing is queued", () => {
    const { broker, ch } = busyChannel();
    expect(() => broker.machine.publish(ch, "ex", "rk", utf8("x"), { contentType: "a".repeat(300) })).toThrow(
      expect.objectContaining({ name: "CommandError", code: "INVALID_ARGUMENT" }),
    );
    broker.reply(ch, method("queue.declare-ok", { queue: "q" }));
    broker.expectEvent("reply");
    broker.expectNothingSent();
  });

  it("keeps its place: queued calls, sends and publishes go out in the order asked, one request at a time", () => {
    const { broker, ch } = busyChannel();
    const m = broker.machine;
    const bind = m.call(ch, method("queue.bind", { queue: "q", exchange: "ex", routingKey: "k" }));
    m.publish(ch, "ex", "k", utf8("after bind"));
    m.send(ch, method("basic.ack", { deliveryTag: 3 }));
    broker.expectNothingSent();
    broker.reply(ch, method("queue.declare-ok", { queue: "q" }));
    expect(broker.takeMethodNames()).toEqual([`queue.bind@${ch}`]);
    broker.reply(ch, method("queue.bind-ok"));
    expect(broker.takeEvents().map((e) => (e.type === "reply" ? e.requestId : e.type))).toEqual([expect.any(Number), bind]);
    expect(broker.takeMethodNames()).toEqual([`basic.publish@${ch}`, `basic.ack@${ch}`]);
  });
});

describe("a call queued behind a request in flight", () => {
  it("is encoded at once: mutating the method object afterwards changes nothing on the wire", () => {
    const { broker, ch } = busyChannel();
    const bind = method("queue.bind", { queue: "q", exchange: "ex", routingKey: "k" });
    broker.machine.call(ch, bind);
    (bind as { routingKey: string }).routingKey = "x".repeat(300); // unencodable now; must not matter
    expect(() => broker.reply(ch, method("queue.declare-ok", { queue: "q" }))).not.toThrow();
    expect(broker.expectMethod("queue.bind", { channel: ch }).routingKey).toBe("k");
  });
});
