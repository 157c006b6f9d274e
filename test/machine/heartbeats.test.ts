/**
 * Heartbeats (spec 4.2.7) on a simulated clock: send one when nothing was sent for half the interval,
 * declare the peer dead after two intervals with nothing received, let a late timer see pending input before
 * judging — and `pollTimeout()` always names the earliest deadline.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { connected, FakeBroker, method, utf8 } from "../support/fake-broker.ts";

/** Open at t=0 with a 60 s heartbeat: send every 30 s of silence, dead after 120 s without input. */
function open60() {
  return connected({ heartbeat: 60 }, { heartbeat: 60 });
}

describe("sending heartbeats", () => {
  it("the first is due half an interval after the last transmit", () => {
    const broker = open60();
    expect(broker.machine.pollTimeout()).toBe(30_000);
    broker.advanceTo(29_999);
    broker.expectNothingSent();
    broker.advanceTo(30_000);
    broker.expectHeartbeat();
    broker.expectNothingSent();
  });

  it("one per half interval of silence, re-armed from each transmit", () => {
    const broker = open60();
    broker.advanceTo(30_000);
    broker.expectHeartbeat();
    expect(broker.machine.pollTimeout()).toBe(60_000);
    broker.heartbeat(); // keep the broker alive on our side
    broker.advanceTo(60_000);
    broker.expectHeartbeat();
  });

  it("any transmit postpones the next heartbeat", () => {
    const broker = open60();
    const ch = broker.openChannel();
    broker.advanceTo(20_000);
    broker.machine.publish(ch, "", "q", utf8("x"));
    broker.expectContent("basic.publish"); // transmitted at 20 s
    expect(broker.machine.pollTimeout()).toBe(50_000);
    broker.advanceTo(30_000);
    broker.expectNothingSent();
    broker.advanceTo(50_000);
    broker.expectHeartbeat();
  });

  it("a timer firing early does nothing", () => {
    const broker = open60();
    broker.advanceTo(10_000);
    broker.expectNothingSent();
    broker.expectNoEvent();
    expect(broker.machine.pollTimeout()).toBe(30_000);
  });

  it("none are sent when heartbeats are off; no timer is armed", () => {
    const broker = connected({ heartbeat: 0 }, { heartbeat: 60 });
    expect(broker.machine.pollTimeout()).toBeUndefined();
    broker.advanceTo(10 * 60_000);
    broker.expectNothingSent();
    broker.expectNoEvent();
    expect(broker.machine.isOpen).toBe(true);
  });

  it("the broker's 0 with a client value of 10 s: heartbeats every 5 s of silence", () => {
    const broker = connected({ heartbeat: 10 }, { heartbeat: 0 });
    expect(broker.machine.pollTimeout()).toBe(5_000);
    broker.advanceTo(5_000);
    broker.expectHeartbeat();
  });
});

describe("declaring the peer dead", () => {
  it("after two intervals with nothing received: connectionClosed (transport), no connection.close", () => {
    const broker = open60();
    // follow the timer as an adapter would
    while (!broker.machine.isClosed && broker.now < 119_999) {
      const t = broker.machine.pollTimeout()!;
      if (t >= 120_000) break;
      broker.advanceTo(t);
    }
    broker.advanceTo(119_999);
    expect(broker.machine.isClosed).toBe(false);
    expect(broker.takeFrames().every((f) => f.type === 8)).toBe(true); // only heartbeats went out
    expect(broker.machine.pollTimeout()).toBe(120_000);
    broker.advanceTo(120_000);
    const closed = broker.expectEvent("connectionClosed");
    expect(closed.reason.initiator).toBe("transport");
    expect(closed.reason.replyText).toMatch(/heartbeat/);
    broker.expectNothingSent(); // spec 4.2.7: close without the close handshake
    expect(broker.machine.pollTimeout()).toBeUndefined();
  });

  it("fails what is pending when it does", () => {
    const broker = open60();
    const ch = broker.openChannel();
    const id = broker.machine.call(ch, method("queue.declare", { queue: "q" }));
    broker.advanceTo(120_000);
    const events = broker.takeEvents();
    expect(events.map((e) => e.type)).toEqual(["requestFailed", "channelClosed", "connectionClosed"]);
    expect(events[0]).toMatchObject({ requestId: id, reason: { initiator: "transport" } });
  });

  it("any received bytes reset the count — a heartbeat, or even one byte of a frame", () => {
    const broker = open60();
    broker.advanceTo(100_000);
    broker.heartbeat();
    expect(broker.machine.pollTimeout()).toBeLessThanOrEqual(220_000);
    broker.advanceTo(219_000);
    expect(broker.machine.isClosed).toBe(false);
    broker.sendBytes(Uint8Array.of(8)); // the first byte of a heartbeat frame
    broker.advanceTo(338_999);
    expect(broker.machine.isClosed).toBe(false);
    broker.advanceTo(339_000);
    expect(broker.expectEvent("connectionClosed").reason.initiator).toBe("transport");
  });

  it("an empty read is not input", () => {
    const broker = open60();
    broker.advanceTo(100_000);
    broker.sendBytes(new Uint8Array(0));
    broker.advanceTo(120_000);
    expect(broker.expectEvent("connectionClosed").reason.initiator).toBe("transport");
  });

  it("input during the handshake counts too (heartbeats start at tune)", () => {
    const broker = new FakeBroker({ heartbeat: 10, handshakeTimeout: 0 });
    broker.send(0, method("connection.start", { versionMajor: 0, versionMinor: 9, mechanisms: utf8("PLAIN") }));
    broker.send(0, method("connection.tune", { channelMax: 0, frameMax: 0, heartbeat: 10 }));
    broker.takeFrames();
    expect(broker.machine.pollTimeout()).toBe(5_000);
    broker.advanceTo(20_000);
    expect(broker.expectEvent("connectionClosed").reason.initiator).toBe("transport");
  });
});

describe("a late timer (the host was busy)", () => {
  it("does not kill the connection if input is then handled before the grace period ends", () => {
    const broker = open60();
    broker.advanceTo(200_000); // the 120 s deadline passed long ago: the event loop was blocked
    expect(broker.machine.isClosed).toBe(false);
    broker.expectNoEvent();
    const grace = broker.machine.pollTimeout()!;
    expect(grace).toBeGreaterThan(200_000);
    broker.clock.advance(100);
    broker.heartbeat(); // the input that was queued behind the timer
    broker.advanceTo(Math.max(grace, broker.now));
    expect(broker.machine.isClosed).toBe(false);
    broker.expectNoEvent();
    // and the count restarted from that input
    expect(broker.machine.pollTimeout()).toBeLessThanOrEqual(200_100 + 120_000);
  });

  it("input handled at the same instant as the late timer saves the connection too", () => {
    const broker = open60();
    broker.advanceTo(500_000);
    broker.heartbeat();
    broker.advance(0);
    expect(broker.machine.isClosed).toBe(false);
  });

  it("kills it once the grace period ends with nothing received", () => {
    const broker = open60();
    broker.advanceTo(200_000);
    expect(broker.machine.isClosed).toBe(false);
    const grace = broker.machine.pollTimeout()!;
    expect(grace).toBeGreaterThan(200_000);
    expect(grace).toBeLessThanOrEqual(200_000 + 60_000); // a grace, not another interval
    broker.advanceTo(grace);
    expect(broker.expectEvent("connectionClosed").reason.initiator).toBe("transport");
  });

  it("still sends the heartbeat that is overdue", () => {
    const broker = open60();
    broker.advanceTo(200_000);
    broker.expectHeartbeat();
  });
});

describe("pollTimeout", () => {
  it("during the handshake: the handshake deadline, or an earlier heartbeat once tuned", () => {
    const broker = new FakeBroker({ handshakeTimeout: 30_000, heartbeat: 10 });
    expect(broker.machine.pollTimeout()).toBe(30_000);
    broker.send(0, method("connection.start", { versionMajor: 0, versionMinor: 9, mechanisms: utf8("PLAIN") }));
    broker.send(0, method("connection.tune", { channelMax: 0, frameMax: 0, heartbeat: 10 }));
    broker.takeFrames();
    expect(broker.machine.pollTimeout()).toBe(5_000);
  });

  it("while closing: the close deadline (heartbeats stop)", () => {
    const broker = connected({ closeTimeout: 4_000 });
    broker.advanceTo(1_000);
    broker.machine.close();
    broker.expectMethod("connection.close");
    expect(broker.machine.pollTimeout()).toBe(5_000);
  });

  it("once closed: undefined", () => {
    const broker = open60();
    broker.end();
    expect(broker.machine.pollTimeout()).toBeUndefined();
  });

  it("is always the earliest deadline: send (half interval after the last transmit) or dead (two after the last input)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant("wait" as const), ms: fc.integer({ min: 0, max: 90_000 }) }),
            fc.record({ kind: fc.constant("input" as const) }),
            fc.record({ kind: fc.constant("publish" as const) }),
          ),
          { maxLength: 40 },
        ),
        (hb, steps) => {
          const broker = connected({ heartbeat: hb }, { heartbeat: hb });
          const ch = broker.openChannel();
          broker.takeFrames();
          let lastSent = 0;
          let lastReceived = 0;
          const expected = () => Math.min(lastSent + hb * 500, lastReceived + hb * 2000);
          for (const step of steps) {
            if (broker.machine.isClosed) break;
            expect(broker.machine.pollTimeout()).toBe(expected());
            if (step.kind === "input") {
              broker.heartbeat();
              lastReceived = broker.now;
            } else if (step.kind === "publish") {
              broker.machine.publish(ch, "", "q", utf8("x"));
              broker.pump();
              lastSent = broker.now;
              broker.takeFrames();
            } else {
              const target = broker.now + step.ms;
              for (let t = broker.machine.pollTimeout(); t !== undefined && t <= target; t = broker.machine.pollTimeout()) {
                // an early call changes nothing
                if (t > broker.now) {
                  broker.advanceTo(t - 1);
                  expect(broker.takeFrames()).toEqual([]);
                  expect(broker.takeEvents()).toEqual([]);
                }
                broker.advanceTo(t);
                const sent = broker.takeFrames();
                if (sent.length > 0) {
                  expect(sent.map((f) => f.type)).toEqual([8]);
                  expect(t).toBe(lastSent + hb * 500);
                  lastSent = t;
                }
                if (broker.machine.isClosed) {
                  expect(t).toBe(lastReceived + hb * 2000);
                  expect(broker.takeEvents().at(-1)?.type).toBe("connectionClosed");
                  return;
                }
                expect(sent.length > 0 || t === lastReceived + hb * 2000).toBe(true); // the timer was due for something
              }
              broker.advanceTo(target);
              expect(broker.takeFrames()).toEqual([]);
            }
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe("while the caller has paused reading", () => {
  it("does not judge the broker dead, and restarts the count on resume", () => {
    const broker = open60();
    const start = broker.now;
    broker.machine.handleReadPaused(true, broker.now);
    // Step through every deadline for 10 minutes of silence: only our own heartbeats go out.
    while (broker.now < start + 600_000) broker.fireTimer();
    expect(broker.machine.isClosed).toBe(false);
    broker.machine.handleReadPaused(false, broker.now);
    const resumed = broker.now;
    // Two intervals of silence after resuming are still fatal, counted from the resume.
    while (!broker.machine.isClosed && broker.now < resumed + 300_000) broker.fireTimer();
    expect(broker.expectEvent("connectionClosed").reason.initiator).toBe("transport");
    expect(broker.now).toBeGreaterThanOrEqual(resumed + 120_000);
    expect(broker.now).toBeLessThan(resumed + 125_000);
  });
});
