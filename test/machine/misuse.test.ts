/**
 * Caller misuse throws a CommandError synchronously and changes nothing: no bytes queued (not even half a
 * frame), no event, no request id or publish sequence number used up, the channel as it was.
 */
import { describe, expect, it } from "vitest";
import type { Method } from "../../src/codec/amqp/methods.generated.ts";
import { ConnectionMachine, CommandError, type CommandErrorCode } from "../../src/machine/index.ts";
import { connected, type FakeBroker, FakeBroker as Broker, method, utf8 } from "../support/fake-broker.ts";

const LONG = "q".repeat(300); // over the 255-byte short string limit

/** `f` throws a CommandError with `code`, and the machine transmits nothing and reports nothing because of it. */
function expectRefused(broker: FakeBroker, code: CommandErrorCode, f: () => unknown): CommandError {
  broker.pump();
  const before = broker.machine.pendingTransmit;
  let error: unknown;
  try {
    f();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(CommandError);
  expect(error).toMatchObject({ name: "CommandError", code });
  expect(broker.machine.pendingTransmit).toBe(before);
  broker.expectNothingSent();
  broker.expectNoEvent();
  return error as CommandError;
}

/** Calls basic.qos and answers it; returns the request id (to see that misuse used none up). */
function qos(broker: FakeBroker, ch: number): number {
  const id = broker.machine.call(ch, method("basic.qos", { prefetchCount: 1 }));
  broker.expectMethod("basic.qos", { channel: ch });
  broker.reply(ch, method("basic.qos-ok"));
  expect(broker.expectEvent("reply").requestId).toBe(id);
  return id;
}

describe("CommandError", () => {
  it("is an Error with a stable name and code", () => {
    const m = new ConnectionMachine({}, 0);
    let caught: unknown;
    try {
      m.openChannel();
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(Error);
    expect(caught).toMatchObject({ name: "CommandError", code: "NOT_OPEN" });
    expect((caught as Error).message).toMatch(/handshakeDone/);
  });
});

describe("before the handshake is done", () => {
  it("openChannel throws NOT_OPEN, before connection.start and while tuning", () => {
    const broker = new Broker();
    expectRefused(broker, "NOT_OPEN", () => broker.machine.openChannel());
    broker.send(0, method("connection.start", { versionMajor: 0, versionMinor: 9, mechanisms: utf8("PLAIN") }));
    broker.takeFrames();
    expectRefused(broker, "NOT_OPEN", () => broker.machine.openChannel());
    expectRefused(broker, "NOT_OPEN", () => broker.machine.call(1, method("basic.qos")));
    expectRefused(broker, "NOT_OPEN", () => broker.machine.publish(1, "", "q", utf8("x")));
  });
});

describe("on a channel that is not open", () => {
  it("call on a channel never opened throws CHANNEL_CLOSED", () => {
    const broker = connected();
    expectRefused(broker, "CHANNEL_CLOSED", () => broker.machine.call(1, method("queue.declare", { queue: "q" })));
    expectRefused(broker, "CHANNEL_CLOSED", () => broker.machine.send(1, method("basic.ack", { deliveryTag: 1 })));
    expectRefused(broker, "CHANNEL_CLOSED", () => broker.machine.publish(1, "", "q", utf8("x")));
    expectRefused(broker, "CHANNEL_CLOSED", () => broker.machine.closeChannel(1));
  });

  it("call on a closed channel throws CHANNEL_CLOSED", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.closeChannel(ch, 404, "NOT_FOUND");
    broker.takeFrames();
    broker.takeEvents();
    expectRefused(broker, "CHANNEL_CLOSED", () => broker.machine.call(ch, method("queue.declare", { queue: "q" })));
  });

  it("call, send and publish on a closing channel throw CHANNEL_CLOSED", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.machine.closeChannel(ch);
    broker.takeFrames();
    expectRefused(broker, "CHANNEL_CLOSED", () => broker.machine.call(ch, method("basic.qos")));
    expectRefused(broker, "CHANNEL_CLOSED", () => broker.machine.send(ch, method("basic.ack", { deliveryTag: 1 })));
    expectRefused(broker, "CHANNEL_CLOSED", () => broker.machine.publish(ch, "", "q", utf8("x")));
  });
});

describe("the wrong method for the command", () => {
  const NOT_CALLABLE: Method[] = [
    method("basic.ack", { deliveryTag: 1 }),
    method("basic.reject", { deliveryTag: 1 }),
    method("basic.publish"),
    method("channel.open"),
    method("channel.close"),
    method("connection.close"),
    method("queue.declare-ok"),
    method("basic.deliver"),
  ];
  it.each(NOT_CALLABLE.map((m) => [m.name, m] as const))("call with %s throws INVALID_METHOD", (_, m) => {
    const broker = connected();
    const ch = broker.openChannel();
    expectRefused(broker, "INVALID_METHOD", () => broker.machine.call(ch, m));
  });

  it("call with no-wait set throws INVALID_METHOD (use send)", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const e = expectRefused(broker, "INVALID_METHOD", () => broker.machine.call(ch, method("queue.declare", { queue: "q", noWait: true })));
    expect(e.message).toMatch(/no-wait/);
    expectRefused(broker, "INVALID_METHOD", () => broker.machine.call(ch, method("confirm.select", { noWait: true })));
  });

  const NOT_SENDABLE: Method[] = [
    method("queue.declare", { queue: "q" }),
    method("basic.consume", { queue: "q", consumerTag: "t" }),
    method("basic.get", { queue: "q" }),
    method("basic.qos"),
    method("tx.select"),
    method("confirm.select"),
    method("basic.publish"),
    method("channel.close"),
    method("basic.cancel-ok"),
  ];
  it.each(NOT_SENDABLE.map((m) => [m.name, m] as const))("send with %s (synchronous, no no-wait) throws INVALID_METHOD", (_, m) => {
    const broker = connected();
    const ch = broker.openChannel();
    expectRefused(broker, "INVALID_METHOD", () => broker.machine.send(ch, m));
  });

  it("send basic.consume with no-wait and no consumer tag throws INVALID_ARGUMENT", () => {
    const broker = connected();
    const ch = broker.openChannel();
    expectRefused(broker, "INVALID_ARGUMENT", () => broker.machine.send(ch, method("basic.consume", { queue: "q", consumerTag: "", noWait: true })));
  });
});

describe("arguments that cannot be encoded", () => {
  it("a 300-byte queue name: INVALID_ARGUMENT, nothing transmitted, no request id used", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const before = qos(broker, ch);
    expectRefused(broker, "INVALID_ARGUMENT", () => broker.machine.call(ch, method("queue.declare", { queue: LONG })));
    expect(qos(broker, ch)).toBe(before + 1);
  });

  it("a 300-byte queue name behind a request in flight: refused at once, nothing sent when the queue flushes", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const inFlight = broker.machine.call(ch, method("queue.declare", { queue: "ok" }));
    broker.expectMethod("queue.declare");
    expectRefused(broker, "INVALID_ARGUMENT", () => broker.machine.call(ch, method("queue.bind", { queue: LONG, exchange: "x" })));
    expectRefused(broker, "INVALID_ARGUMENT", () => broker.machine.send(ch, method("queue.bind", { queue: LONG, exchange: "x", noWait: true })));
    expectRefused(broker, "INVALID_ARGUMENT", () => broker.machine.publish(ch, "", LONG, utf8("x")));
    broker.reply(ch, method("queue.declare-ok", { queue: "ok" }));
    expect(broker.expectEvent("reply").requestId).toBe(inFlight);
    broker.expectNothingSent();
    broker.expectNoEvent();
    expect(qos(broker, ch)).toBe(inFlight + 1);
  });

  it("a 300-byte routing key or content type on publish: INVALID_ARGUMENT, and no sequence number used", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.confirmSelect(ch);
    expectRefused(broker, "INVALID_ARGUMENT", () => broker.machine.publish(ch, "", LONG, utf8("x")));
    expectRefused(broker, "INVALID_ARGUMENT", () => broker.machine.publish(ch, "", "q", utf8("x"), { contentType: LONG }));
    expect(broker.machine.publish(ch, "", "q", utf8("x"))).toBe(1);
  });

  it("a negative delivery tag on basic.ack: INVALID_ARGUMENT", () => {
    const broker = connected();
    const ch = broker.openChannel();
    expectRefused(broker, "INVALID_ARGUMENT", () => broker.machine.send(ch, method("basic.ack", { deliveryTag: -1 })));
    expectRefused(broker, "INVALID_ARGUMENT", () => broker.machine.send(ch, method("basic.ack", { deliveryTag: 2n ** 64n })));
  });

  it("a publish whose properties do not fit one frame_max-sized header frame: INVALID_ARGUMENT, nothing sent", () => {
    const broker = connected({}, { frameMax: 8192 });
    const ch = broker.openChannel();
    const headers = { big: "x".repeat(10_000) }; // the content header frame would be ~10 kB > frame_max
    expectRefused(broker, "INVALID_ARGUMENT", () => broker.machine.publish(ch, "", "q", utf8("x"), { headers }));
  });

  it("a request whose method frame would exceed frame_max: INVALID_ARGUMENT, nothing sent", () => {
    const broker = connected({}, { frameMax: 8192 });
    const ch = broker.openChannel();
    const args = { "x-big": "x".repeat(10_000) };
    expectRefused(broker, "INVALID_ARGUMENT", () => broker.machine.call(ch, method("queue.declare", { queue: "q", arguments: args })));
  });

  it("closeChannel with a 300-byte reply text: INVALID_ARGUMENT, nothing half-written, the channel still open", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const before = qos(broker, ch);
    expectRefused(broker, "INVALID_ARGUMENT", () => broker.machine.closeChannel(ch, 200, LONG));
    expect(broker.machine.isChannelOpen(ch)).toBe(true);
    expect(qos(broker, ch)).toBe(before + 1);
  });

  it("updateSecret with a 300-byte reason: INVALID_ARGUMENT, nothing half-written, no request id used", () => {
    const broker = connected();
    const ch = broker.openChannel();
    const before = qos(broker, ch);
    expectRefused(broker, "INVALID_ARGUMENT", () => broker.machine.updateSecret(utf8("token"), LONG));
    expect(qos(broker, ch)).toBe(before + 1);
    broker.send(0, method("connection.update-secret-ok")); // no request waits for it: a 505, not a reply
    expect(broker.expectMethod("connection.close").replyCode).toBe(505);
  });

  it("close with an over-long non-ASCII text leaves no half-written frame behind", () => {
    const broker = connected();
    try {
      broker.machine.close(200, "é".repeat(200));
    } catch {
      // refusing is acceptable; writing half a frame is not
    }
    const frames = broker.takeFrames();
    expect(frames.every((f) => f.type === 1 && f.method.name === "connection.close")).toBe(true);
  });
});

describe("after the connection closed", () => {
  it("every command throws CONNECTION_CLOSED and close() is a no-op", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.end();
    broker.takeEvents();
    expectRefused(broker, "CONNECTION_CLOSED", () => broker.machine.openChannel());
    expectRefused(broker, "CONNECTION_CLOSED", () => broker.machine.call(ch, method("basic.qos")));
    expectRefused(broker, "CONNECTION_CLOSED", () => broker.machine.send(ch, method("basic.ack", { deliveryTag: 1 })));
    expectRefused(broker, "CONNECTION_CLOSED", () => broker.machine.publish(ch, "", "q", utf8("x")));
    expectRefused(broker, "CONNECTION_CLOSED", () => broker.machine.updateSecret(utf8("t"), "r"));
    expect(() => broker.machine.close()).not.toThrow();
    broker.expectNothingSent();
    broker.expectNoEvent();
  });

  it("closeChannel throws a CommandError too", () => {
    const broker = connected();
    const ch = broker.openChannel();
    broker.end();
    broker.takeEvents();
    expect(() => broker.machine.closeChannel(ch)).toThrow(CommandError);
  });
});
