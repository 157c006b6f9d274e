/**
 * Replay tests: a session between warren's ConnectionMachine and RabbitMQ, recorded byte for byte in both
 * directions (test/fixtures/machine/session.json, by scripts/record-machine-transcript.ts), replayed into a
 * fresh machine driven by the same scenario (replay/scenario.ts).
 *
 * At every chunking of the broker's bytes the machine must write exactly what it wrote to the real broker —
 * segment by segment, so each write answers the same input — and report exactly the recorded events. The
 * last tests corrupt single recorded bytes to show that both checks would notice.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FrameDecoder } from "../../src/codec/amqp/frame-decoder.ts";
import { PROTOCOL_HEADER } from "../../src/codec/amqp/frames.ts";
import type { Method } from "../../src/codec/amqp/methods.generated.ts";
import { concat, toHex } from "../support/bytes.ts";
import { byteByByte, bySizes, loadMachineTranscript, replay, type ReplayResult, type Segment, wholeSegments } from "./replay/replay.ts";

const t = loadMachineTranscript("session");
const expectedOutput = [...t.segments.map((s) => toHex(s.c2s)), ""]; // nothing after the transport ends
const s2c = concat(t.segments.map((s) => s.s2c));

function expectFaithful(r: ReplayResult): void {
  expect(r.log).toEqual(t.expectedEvents);
  expect(r.output.map(toHex)).toEqual(expectedOutput);
  expect(r.closed).toBe(true);
}

/** The methods in a byte stream of frames, with the offset of each frame. */
function methodsIn(bytes: Uint8Array, skip = 0): { at: number; method: Method }[] {
  const out: { at: number; method: Method }[] = [];
  const d = new FrameDecoder();
  let at = skip;
  d.push(bytes.subarray(skip));
  for (let f = d.next(); f !== undefined; f = d.next()) {
    if (f.type === 1) out.push({ at, method: f.method });
    at = bytes.length - d.buffered;
  }
  expect(d.buffered).toBe(0);
  return out;
}

/** The recorded segments with the s2c stream edited by `edit` (in place, on a copy), cut at the same places. */
function withS2c(edit: (stream: Uint8Array) => void): Segment[] {
  const stream = s2c.slice();
  edit(stream);
  let at = 0;
  return t.segments.map((s) => {
    const part = stream.subarray(at, at + s.s2c.length);
    at += s.s2c.length;
    return { c2s: s.c2s, s2c: part };
  });
}

/** Offset in the s2c stream of the n-th (0-based) method frame named `name`. */
function frameOffset(name: string, n = 0): number {
  const found = methodsIn(s2c).filter((x) => x.method.name === name)[n];
  if (found === undefined) throw new Error(`no ${name} #${n} in the recording`);
  return found.at;
}

// A method frame: type(1) channel(2) size(4) class(2) method(2), then the arguments.
const ARGS = 7 + 4;

describe(`machine replay of a RabbitMQ session (${t.broker})`, () => {
  it("the recording holds the session the scenario asks for", () => {
    const c2s = concat(t.segments.map((s) => s.c2s));
    expect(toHex(c2s.subarray(0, 8))).toBe(toHex(PROTOCOL_HEADER));
    const sent = methodsIn(c2s, 8).map((x) => `${x.method.name}`);
    const received = methodsIn(s2c).map((x) => x.method);
    expect(sent.filter((n) => n === "basic.publish")).toHaveLength(3);
    expect(sent.at(-1)).toBe("connection.close");
    const names = received.map((m) => m.name);
    expect(names[0]).toBe("connection.start");
    expect(names.at(-1)).toBe("connection.close-ok");
    expect(names.filter((n) => n === "basic.deliver")).toHaveLength(2);
    // the unroutable mandatory publish comes back before its ack
    expect(names.indexOf("basic.return")).toBeLessThan(names.indexOf("basic.ack"));
    expect(received.find((m) => m.name === "channel.close")).toMatchObject({ replyCode: 406, failingClassId: 50, failingMethodId: 10 });
    expect(t.segments.length).toBeGreaterThan(10);
  });

  it("the event log is the expected session", () => {
    const kinds = t.expectedEvents.map((l) => l.split(" ", 2).join(" "));
    expect(kinds).toEqual([
      "handshakeDone channelMax=2047",
      "reply 1",
      "reply 1",
      "reply 1",
      "return 1",
      "publishConfirmed 1",
      "publishConfirmed 1",
      "publishConfirmed 1",
      "reply 1",
      "reply 1",
      "delivery 1",
      "delivery 1",
      "reply 1",
      "reply 2",
      "requestFailed 2",
      "channelClosed 2",
      "reply 1",
      "reply 1",
      "channelClosed 1",
      "connectionClosed client",
    ]);
    expect(t.expectedEvents).toContain("publishConfirmed 1 seq=3 ack returned=312");
    expect(t.expectedEvents.filter((l) => l.startsWith("channelClosed 2 broker 406 50.10 "))).toHaveLength(1);
    expect(t.expectedEvents.at(-1)).toBe('connectionClosed client 200 0.0 "Goodbye"');
  });

  it("whole segments: the machine writes the recorded bytes and reports the recorded events", () => {
    expectFaithful(replay(t.segments, wholeSegments));
  });

  it("one byte at a time: the same bytes and events", () => {
    expectFaithful(replay(t.segments, byteByByte));
  });

  it("every segment cut once at every position: the same bytes and events", () => {
    t.segments.forEach((seg, i) => {
      for (let cut = 1; cut < seg.s2c.length; cut++) {
        const r = replay(t.segments, (bytes, j) => (j === i ? [bytes.subarray(0, cut), bytes.subarray(cut)] : [bytes]));
        if (r.log.length !== t.expectedEvents.length || r.output.map(toHex).some((h, k) => h !== expectedOutput[k])) {
          expectFaithful(r); // fails with a diff
        }
      }
    });
  });

  it("random chunkings: the same bytes and events", () => {
    const size = fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 2048 }));
    fc.assert(
      fc.property(fc.array(size, { minLength: 1, maxLength: 64 }), (sizes) => {
        expectFaithful(replay(t.segments, bySizes(sizes)));
      }),
      { numRuns: 300 },
    );
  });

  describe("the checks notice a changed byte", () => {
    it("an ack for tag 1 instead of 3: seq 3 is never confirmed, so the events and the writes diverge", () => {
      const at = frameOffset("basic.ack", 0);
      expect(s2c[at + ARGS + 7]).toBe(3); // low byte of the 64-bit delivery tag
      const segments = withS2c((s) => {
        s[at + ARGS + 7] = 1;
      });
      for (const split of [wholeSegments, byteByByte]) {
        const r = replay(segments, split);
        expect(r.log).not.toEqual(t.expectedEvents);
        const i = t.expectedEvents.indexOf("publishConfirmed 1 seq=3 ack returned=312");
        expect(r.log.slice(0, i)).toEqual(t.expectedEvents.slice(0, i));
        expect(r.log[i]).toBe("publishConfirmed 1 seq=1 ack");
        expect(r.log).not.toContain("publishConfirmed 1 seq=3 ack returned=312");
        // no basic.qos without the last confirm: the machine falls silent where the broker expected a write
        expect(r.output.map(toHex)).not.toEqual(expectedOutput);
      }
    });

    it("a 407 in the broker's channel.close: the same writes, but the events differ", () => {
      const at = frameOffset("channel.close");
      expect((s2c[at + ARGS]! << 8) | s2c[at + ARGS + 1]!).toBe(406);
      const r = replay(
        withS2c((s) => {
          s[at + ARGS + 1]! += 1;
        }),
        wholeSegments,
      );
      expect(r.output.map(toHex)).toEqual(expectedOutput);
      expect(r.log).not.toEqual(t.expectedEvents);
      expect(r.log.filter((l) => l.startsWith("channelClosed 2 broker 407 "))).toHaveLength(1);
    });

    it("a delivery tag 3 instead of 2: the events differ, and so does the ack the machine writes", () => {
      const at = frameOffset("basic.deliver", 1);
      const r = replay(
        withS2c((s) => {
          // basic.deliver: consumer-tag (shortstr), then the 64-bit delivery tag
          const tagEnd = at + ARGS + 1 + s[at + ARGS]! + 8;
          expect(s[tagEnd - 1]).toBe(2);
          s[tagEnd - 1] = 3;
        }),
        wholeSegments,
      );
      expect(r.log).not.toEqual(t.expectedEvents);
      const differing = r.output.map(toHex).flatMap((h, i) => (h === expectedOutput[i] ? [] : [i]));
      expect(differing[0]).toBe(t.segments.findIndex((s) => methodsIn(s.c2s).some((x) => x.method.name === "basic.ack")));
    });
  });
});
