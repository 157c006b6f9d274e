/**
 * Publisher confirms (RabbitMQ's confirm.select extension): sequence numbers per channel from 1, acks and
 * nacks (single and multiple) settling exactly the right publishes, returns attached to their publish, and
 * every unconfirmed publish failed when its channel or connection dies.
 */
import { describe, expect, it } from "vitest";
import type { MachineEvent } from "../../src/machine/index.ts";
import { connected, type FakeBroker, method, utf8 } from "../support/fake-broker.ts";

function settled(events: MachineEvent[]): [number, number, string][] {
  return events.flatMap((e): [number, number, string][] => {
    if (e.type === "publishConfirmed") return [[e.channel, e.seq, e.ack ? "ack" : "nack"]];
    if (e.type === "publishFailed") return [[e.channel, e.seq, "failed"]];
    return [];
  });
}

function confirmChannel(broker: FakeBroker): number {
  const ch = broker.openChannel();
  broker.confirmSelect(ch);
  return ch;
}

function publishN(broker: FakeBroker, ch: number, n: number, mandatory = false): number[] {
  const seqs: number[] = [];
  for (let i = 0; i < n; i++) seqs.push(broker.machine.publish(ch, "ex", `k${i}`, utf8(`m${i}`), {}, mandatory));
  broker.takeFrames();
  return seqs;
}

describe("sequence numbers", () => {
  it("count from 1 after confirm.select, per channel; publishes before it get 0", () => {
    const broker = connected();
    const a = broker.openChannel();
    const b = broker.openChannel();
    expect(broker.machine.publish(a, "", "q", utf8("before"))).toBe(0);
    expect(broker.machine.isConfirmMode(a)).toBe(false);
    broker.expectContent("basic.publish", { channel: a });
    broker.confirmSelect(a);
    broker.confirmSelect(b);
    expect(broker.machine.isConfirmMode(a)).toBe(true);
    expect([1, 2, 3].map(() => broker.machine.publish(a, "", "q", utf8("x")))).toEqual([1, 2, 3]);
    expect(broker.machine.publish(b, "", "q", utf8("x"))).toBe(1);
    expect(broker.machine.publish(a, "", "q", utf8("x"))).toBe(4);
  });

  it("publishes made while confirm.select is in flight wait for it and are numbered from 1", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.machine.call(ch, method("confirm.select"));
    expect(broker.machine.publish(ch, "", "q", utf8("a"))).toBe(1);
    expect(broker.machine.publish(ch, "", "q", utf8("b"))).toBe(2);
    expect(broker.takeMethodNames()).toEqual([`confirm.select@${ch}`]); // the broker must see select first
    broker.reply(ch, method("confirm.select-ok"));
    expect(broker.takeMethodNames()).toEqual([`basic.publish@${ch}`, `basic.publish@${ch}`]);
  });

  it("confirm.select sent with noWait turns confirm mode on too", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.machine.send(ch, method("confirm.select", { noWait: true }));
    expect(broker.expectMethod("confirm.select", { channel: ch }).noWait).toBe(true);
    expect(broker.machine.publish(ch, "", "q", utf8("a"))).toBe(1);
  });
});

describe("acks and nacks", () => {
  it("a single ack settles exactly that publish", () => {
    const broker = connected();
    const ch = confirmChannel(broker);
    publishN(broker, ch, 3);
    broker.ack(ch, 2);
    expect(broker.takeEvents()).toEqual([{ type: "publishConfirmed", channel: ch, seq: 2, ack: true, returned: undefined }]);
    broker.ack(ch, 1);
    broker.ack(ch, 3);
    expect(settled(broker.takeEvents())).toEqual([
      [ch, 1, "ack"],
      [ch, 3, "ack"],
    ]);
  });

  it("a multiple ack settles every unsettled publish up to and including its tag, in order", () => {
    const broker = connected();
    const ch = confirmChannel(broker);
    publishN(broker, ch, 6);
    broker.ack(ch, 2);
    broker.takeEvents();
    broker.ack(ch, 4, true);
    expect(settled(broker.takeEvents())).toEqual([
      [ch, 1, "ack"],
      [ch, 3, "ack"],
      [ch, 4, "ack"],
    ]);
    broker.nack(ch, 6, true);
    expect(settled(broker.takeEvents())).toEqual([
      [ch, 5, "nack"],
      [ch, 6, "nack"],
    ]);
  });

  it("a single nack settles exactly that publish with ack: false", () => {
    const broker = connected();
    const ch = confirmChannel(broker);
    publishN(broker, ch, 3);
    broker.nack(ch, 3);
    expect(broker.takeEvents()).toEqual([{ type: "publishConfirmed", channel: ch, seq: 3, ack: false, returned: undefined }]);
  });

  it("an ack for a publish already settled, or never made, settles nothing", () => {
    const broker = connected();
    const ch = confirmChannel(broker);
    publishN(broker, ch, 2);
    broker.ack(ch, 1);
    broker.takeEvents();
    broker.ack(ch, 1);
    broker.ack(ch, 99);
    broker.expectNoEvent();
    broker.ack(ch, 1, true);
    broker.expectNoEvent();
  });

  it("acks on one channel do not settle publishes on another", () => {
    const broker = connected();
    const a = confirmChannel(broker);
    const b = confirmChannel(broker);
    publishN(broker, a, 2);
    publishN(broker, b, 2);
    broker.ack(b, 2, true);
    expect(settled(broker.takeEvents())).toEqual([
      [b, 1, "ack"],
      [b, 2, "ack"],
    ]);
  });

  it("a multiple ack with delivery tag 0 settles every outstanding publish (spec basic.ack)", () => {
    const broker = connected();
    const ch = confirmChannel(broker);
    publishN(broker, ch, 3);
    broker.ack(ch, 0, true);
    expect(settled(broker.takeEvents())).toEqual([
      [ch, 1, "ack"],
      [ch, 2, "ack"],
      [ch, 3, "ack"],
    ]);
  });
});

describe("returns in confirm mode", () => {
  it("a basic.return before the ack is attached to its publish and reported with publishSeq", () => {
    const broker = connected();
    const ch = confirmChannel(broker);
    broker.machine.publish(ch, "ex", "routed", utf8("1"), {}, true);
    const seq = broker.machine.publish(ch, "ex", "nowhere", utf8("2"), {}, true);
    broker.takeFrames();
    broker.returnMessage(ch, "ex", "nowhere", utf8("2"));
    const ret = broker.expectEvent("return");
    expect(ret).toMatchObject({ channel: ch, exchange: "ex", routingKey: "nowhere", publishSeq: seq, replyCode: 312 });
    broker.ack(ch, 2, true);
    const events = broker.takeEvents();
    expect(events).toEqual([
      { type: "publishConfirmed", channel: ch, seq: 1, ack: true, returned: undefined },
      { type: "publishConfirmed", channel: ch, seq: 2, ack: true, returned: ret },
    ]);
  });

  it("returns for two publishes to the same exchange and key go to the earliest unreturned one first", () => {
    const broker = connected();
    const ch = confirmChannel(broker);
    const [one, two, three] = [1, 2, 3].map(() => broker.machine.publish(ch, "ex", "k", utf8("x"), {}, true));
    broker.takeFrames();
    broker.returnMessage(ch, "ex", "k", utf8("x"));
    broker.returnMessage(ch, "ex", "k", utf8("x"));
    expect(broker.takeEvents().map((e) => (e.type === "return" ? e.publishSeq : -1))).toEqual([one, two]);
    broker.ack(ch, three!, true);
    expect(broker.takeEvents().map((e) => (e.type === "publishConfirmed" ? [e.seq, e.returned?.publishSeq] : []))).toEqual([
      [one, one],
      [two, two],
      [three, undefined],
    ]);
  });

  it("a return is never attached to a publish that was not mandatory", () => {
    const broker = connected();
    const ch = confirmChannel(broker);
    broker.machine.publish(ch, "ex", "k", utf8("x"), {}, false);
    broker.takeFrames();
    broker.returnMessage(ch, "ex", "k", utf8("x"));
    expect(broker.expectEvent("return").publishSeq).toBeUndefined();
    broker.ack(ch, 1);
    expect(broker.expectEvent("publishConfirmed").returned).toBeUndefined();
  });

  it("a nacked returned publish carries its return too", () => {
    const broker = connected();
    const ch = confirmChannel(broker);
    broker.machine.publish(ch, "ex", "k", utf8("x"), {}, true);
    broker.takeFrames();
    broker.returnMessage(ch, "ex", "k", utf8("x"));
    const ret = broker.expectEvent("return");
    broker.nack(ch, 1);
    expect(broker.expectEvent("publishConfirmed")).toMatchObject({ seq: 1, ack: false, returned: ret });
  });
});

describe("unconfirmed publishes fail when their channel or connection dies", () => {
  it("broker channel.close: publishFailed for each, with the reason, before channelClosed", () => {
    const broker = connected();
    const ch = confirmChannel(broker);
    publishN(broker, ch, 3);
    broker.ack(ch, 2);
    broker.takeEvents();
    broker.closeChannel(ch, 406, "PRECONDITION_FAILED - unknown delivery tag", 60, 80);
    const events = broker.takeEvents();
    expect(settled(events)).toEqual([
      [ch, 1, "failed"],
      [ch, 3, "failed"],
    ]);
    for (const e of events) if (e.type === "publishFailed") expect(e.reason).toMatchObject({ initiator: "broker", replyCode: 406 });
    expect(events.at(-1)?.type).toBe("channelClosed");
  });

  it("publishes still queued behind a request fail too", () => {
    const broker = connected();
    const ch = confirmChannel(broker);
    broker.machine.call(ch, method("queue.declare", { queue: "q" }));
    const seqs = [broker.machine.publish(ch, "", "q", utf8("a")), broker.machine.publish(ch, "", "q", utf8("b"))];
    broker.closeChannel(ch, 404, "NOT_FOUND");
    expect(settled(broker.takeEvents())).toEqual(seqs.map((s) => [ch, s, "failed"]));
  });

  it("client closeChannel: they fail when close-ok arrives; acks that arrive before it still settle", () => {
    const broker = connected();
    const ch = confirmChannel(broker);
    publishN(broker, ch, 3);
    broker.machine.closeChannel(ch);
    broker.expectMethod("channel.close");
    broker.expectNoEvent();
    broker.ack(ch, 1);
    expect(settled(broker.takeEvents())).toEqual([[ch, 1, "ack"]]);
    broker.reply(ch, method("channel.close-ok"));
    expect(settled(broker.takeEvents())).toEqual([
      [ch, 2, "failed"],
      [ch, 3, "failed"],
    ]);
  });

  it("connection close: every channel's unconfirmed publishes fail before connectionClosed", () => {
    const broker = connected();
    const a = confirmChannel(broker);
    const b = confirmChannel(broker);
    publishN(broker, a, 2);
    publishN(broker, b, 1);
    broker.machine.close();
    broker.finishClose();
    const events = broker.takeEvents();
    expect(settled(events).sort()).toEqual(
      [
        [a, 1, "failed"],
        [a, 2, "failed"],
        [b, 1, "failed"],
      ].sort(),
    );
    expect(events.at(-1)?.type).toBe("connectionClosed");
  });

  it("the end of the stream fails them with a transport reason", () => {
    const broker = connected();
    const ch = confirmChannel(broker);
    publishN(broker, ch, 1);
    broker.end();
    expect(broker.takeEvents()).toContainEqual(expect.objectContaining({ type: "publishFailed", seq: 1, reason: expect.objectContaining({ initiator: "transport" }) }));
  });

  it("a reopened channel id numbers its publishes from 1 again", () => {
    const broker = connected({}, { channelMax: 1 });
    const ch = confirmChannel(broker);
    publishN(broker, ch, 2);
    broker.closeChannel(ch, 406, "x");
    broker.expectMethod("channel.close-ok", { channel: ch });
    broker.takeEvents();
    const again = confirmChannel(broker);
    expect(again).toBe(ch);
    expect(broker.machine.publish(again, "", "q", utf8("x"))).toBe(1);
  });
});
