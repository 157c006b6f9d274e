/**
 * Heartbeats (spec 4.2.7) on a simulated clock: send one when nothing was sent for half the interval T;
 * suspect the peer after T + T/4 with nothing received (RabbitMQ's own rule is two missed heartbeats sent
 * every T/2, i.e. about T), then look once more RECHECK_MS later so input waiting behind the timer is read
 * before judging — and `pollTimeout()` always names the earliest deadline.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RECHECK_MS } from "../../src/machine/timers.ts";
import { connected, FakeBroker, method, utf8 } from "../support/fake-broker.ts";

/** With a 60 s heartbeat, the peer is suspected after 75 s without input (and dead 50 ms later). */
const DEADLINE_60 = 75_000;

/** Open at t=0 with a 60 s heartbeat: send every 30 s of silence, suspect the peer after 75 s without input. */
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
  it("after T + T/4 with nothing received it looks once more 50 ms later, then: connectionClosed (transport), no connection.close", () => {
    const broker = open60();
    // follow the timer as an adapter would
    for (let t = broker.machine.pollTimeout()!; t < DEADLINE_60; t = broker.machine.pollTimeout()!) broker.advanceTo(t);
    broker.advanceTo(DEADLINE_60 - 1);
    expect(broker.machine.isClosed).toBe(false);
    expect(broker.takeFrames().every((f) => f.type === 8)).toBe(true); // only heartbeats went out
    expect(broker.machine.pollTimeout()).toBe(DEADLINE_60);
    broker.advanceTo(DEADLINE_60);
    expect(broker.machine.isClosed).toBe(false); // not judged yet: input may be waiting behind the timer
    expect(broker.machine.pollTimeout()).toBe(DEADLINE_60 + RECHECK_MS);
    broker.advanceTo(DEADLINE_60 + RECHECK_MS);
    const closed = broker.expectEvent("connectionClosed");
    expect(closed.reason.initiator).toBe("transport");
    expect(closed.reason.replyText).toMatch(/heartbeat/);
    broker.expectNothingSent(); // spec 4.2.7: close without the close handshake
    expect(broker.machine.pollTimeout()).toBeUndefined();
  });

  it("a blackholed peer with heartbeat 2 s is declared dead within 1.5 × the timeout (RabbitMQ's rule is about 1×)", () => {
    const broker = connected({ heartbeat: 2 }, { heartbeat: 2 });
    const silentSince = broker.now;
    for (let i = 0; i < 100 && !broker.machine.isClosed; i++) broker.fireTimer(); // only our heartbeats go out
    expect(broker.expectEvent("connectionClosed").reason.initiator).toBe("transport");
    expect(broker.now - silentSince).toBeGreaterThanOrEqual(2_000);
    expect(broker.now - silentSince).toBeLessThanOrEqual(3_000);
  });

  it("fails what is pending when it does", () => {
    const broker = open60();
    const ch = broker.openChannel();
    const id = broker.machine.call(ch, method("queue.declare", { queue: "q" }));
    broker.advanceTo(DEADLINE_60);
    broker.advanceTo(DEADLINE_60 + RECHECK_MS);
    const events = broker.takeEvents();
    expect(events.map((e) => e.type)).toEqual(["requestFailed", "channelClosed", "connectionClosed"]);
    expect(events[0]).toMatchObject({ requestId: id, reason: { initiator: "transport" }, scope: "connection" });
  });

  it("any received bytes reset the count — a heartbeat, or even one byte of a frame", () => {
    const broker = open60();
    broker.advanceTo(50_000);
    broker.heartbeat();
    expect(broker.machine.pollTimeout()).toBeLessThanOrEqual(50_000 + 75_000);
    broker.advanceTo(124_000);
    expect(broker.machine.isClosed).toBe(false);
    broker.sendBytes(Uint8Array.of(8)); // the first byte of a heartbeat frame
    broker.advanceTo(124_000 + 75_000 - 1);
    expect(broker.machine.isClosed).toBe(false);
    broker.advanceTo(124_000 + 75_000);
    broker.advanceTo(124_000 + 75_000 + RECHECK_MS);
    expect(broker.expectEvent("connectionClosed").reason.initiator).toBe("transport");
  });

  it("an empty read is not input", () => {
    const broker = open60();
    broker.advanceTo(50_000);
    broker.sendBytes(new Uint8Array(0));
    broker.advanceTo(DEADLINE_60);
    broker.advanceTo(DEADLINE_60 + RECHECK_MS);
    expect(broker.expectEvent("connectionClosed").reason.initiator).toBe("transport");
  });

  it("input during the handshake counts too (heartbeats start at tune)", () => {
    const broker = new FakeBroker({ heartbeat: 10, handshakeTimeout: 0 });
    broker.send(0, method("connection.start", { versionMajor: 0, versionMinor: 9, mechanisms: utf8("PLAIN") }));
    broker.send(0, method("connection.tune", { channelMax: 0, frameMax: 0, heartbeat: 10 }));
    broker.takeFrames();
    expect(broker.machine.pollTimeout()).toBe(5_000);
    for (let i = 0; i < 10 && !broker.machine.isClosed; i++) broker.fireTimer();
    expect(broker.expectEvent("connectionClosed").reason.initiator).toBe("transport");
    expect(broker.now).toBe(12_500 + RECHECK_MS);
  });
});

describe("a late timer (the host was busy)", () => {
  it("a stall of 2 T, then the broker's heartbeats read just after the timer fired: the connection lives", () => {
    const broker = connected({ heartbeat: 2 }, { heartbeat: 2 });
    broker.advanceTo(4_000); // the event loop was blocked for 2 T; every deadline passed
    expect(broker.machine.isClosed).toBe(false);
    broker.expectNoEvent();
    const recheck = broker.machine.pollTimeout()!;
    expect(recheck).toBe(4_000 + RECHECK_MS);
    broker.clock.advance(1);
    broker.heartbeat(); // the input that was queued behind the timer
    broker.advanceTo(Math.max(recheck, broker.now));
    expect(broker.machine.isClosed).toBe(false);
    broker.expectNoEvent();
    // and the count restarted from that input
    expect(broker.machine.pollTimeout()).toBeLessThanOrEqual(4_001 + 2_500);
  });

  it("input handled at the same instant as the late timer saves the connection too", () => {
    const broker = open60();
    broker.advanceTo(500_000);
    broker.heartbeat();
    broker.advance(0);
    expect(broker.machine.isClosed).toBe(false);
  });

  it("kills it once the re-check finds nothing received", () => {
    const broker = open60();
    broker.advanceTo(200_000);
    expect(broker.machine.isClosed).toBe(false);
    const recheck = broker.machine.pollTimeout()!;
    expect(recheck).toBe(200_000 + RECHECK_MS); // a short look, not another interval
    broker.advanceTo(recheck);
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

  it("is always the earliest deadline: send (T/2 after the last transmit) or suspect (T + T/4 after the last input, then a re-check)", () => {
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
          let recheckAt: number | undefined;
          const deadAt = () => recheckAt ?? lastReceived + hb * 1250;
          const expected = () => Math.min(lastSent + hb * 500, deadAt());
          for (const step of steps) {
            if (broker.machine.isClosed) break;
            expect(broker.machine.pollTimeout()).toBe(expected());
            if (step.kind === "input") {
              broker.heartbeat();
              lastReceived = broker.now;
              recheckAt = undefined;
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
                const dueDead = t === deadAt();
                broker.advanceTo(t);
                if (broker.machine.isClosed) {
                  expect(recheckAt).toBe(t); // dead only at the re-check
                  expect(broker.takeEvents().at(-1)?.type).toBe("connectionClosed");
                  return;
                }
                if (dueDead) recheckAt = t + RECHECK_MS;
                const sent = broker.takeFrames();
                if (sent.length > 0) {
                  expect(sent.map((f) => f.type)).toEqual([8]);
                  expect(t).toBe(lastSent + hb * 500);
                  lastSent = t;
                }
                expect(sent.length > 0 || dueDead).toBe(true); // the timer was due for something
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
    // Silence after resuming is still fatal, counted from the resume.
    while (!broker.machine.isClosed && broker.now < resumed + 300_000) broker.fireTimer();
    expect(broker.expectEvent("connectionClosed").reason.initiator).toBe("transport");
    expect(broker.now).toBe(resumed + DEADLINE_60 + RECHECK_MS);
  });
});
