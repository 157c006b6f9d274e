/**
 * Fuzz target for the sans-IO machine: a connection whose handshake is done (scripted with the fake broker),
 * with channels in every state worth having (confirm mode, consumers, a request in flight, publishes
 * unconfirmed), then fed arbitrary broker bytes — random bytes, and valid broker frames (deliveries, acks,
 * nacks, returns, replies, channel.close, connection.close, cancels, heartbeats…) both whole and mutated —
 * in random chunks, with timeouts and application commands interleaved.
 *
 * Invariants, per run:
 * - broker input (`handleInput`, `handleTimeout`, `handleEnd`) never throws; commands throw only CommandError;
 * - what the machine transmits always decodes as frames (checked by the fake broker);
 * - the settlement rules hold (test/support/fake-broker.ts `Ledger`): every request and confirm-mode publish
 *   settles exactly once, nothing is reported on a channel after its channelClosed, connectionClosed comes
 *   once and last — after the run is driven to a close (close(), close-ok, end of stream);
 * - the run ends closed, with no timer armed, and within `SLOW_MS`.
 *
 * Run #i of seed S uses its own generator seeded from (S, i), so a crash reproduces from those two numbers,
 * which the crash record names along with the broker bytes.
 */
import { type FieldTable } from "../src/codec/amqp/field-table.ts";
import type { Method } from "../src/codec/amqp/methods.generated.ts";
import { CommandError } from "../src/machine/errors.ts";
import {
  bodyFrame,
  contentFrames,
  FakeBroker,
  headerFrame,
  heartbeatFrame,
  Ledger,
  method,
  methodFrame,
} from "../test/support/fake-broker.ts";
import { concat } from "../test/support/bytes.ts";

/** A run slower than this counts as a crash (the machine must stay bounded in time). */
const SLOW_MS = 2_000;
/** Largest body the fuzzed machines accept: big enough to split, small enough to never hurt. */
const MAX_BODY = 64 * 1024;
/** How much of a crashing input the record keeps, in bytes. */
const KEEP_BYTES = 8 * 1024;

// ---------------------------------------------------------------------------------------------------------
// PRNG

/** mulberry32: a tiny seedable 32-bit generator; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of run `index` under `seed` (independent of how many runs there are). */
export function runSeed(seed: number, index: number): number {
  let x = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d) >>> 0;
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

class Gen {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
  /** A message body: its bytes do not matter to the machine, only its size, so it is cheap to make. */
  body(n: number): Uint8Array {
    return n <= 64 ? this.bytes(n) : new Uint8Array(n).fill(this.int(256));
  }
  /** A small number, usually tiny, sometimes an edge. */
  tag(): number | bigint {
    return this.pick<number | bigint>([0, 1, 2, 3, this.range(1, 20), this.range(1, 1000), 2 ** 53 - 1, 2n ** 64n - 1n]);
  }
}

function hex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += b[i]!.toString(16).padStart(2, "0");
  return s;
}

function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}${e.stack ? `\n${e.stack.split("\n").slice(1, 6).join("\n")}` : ""}` : String(e);
}

// ---------------------------------------------------------------------------------------------------------
// Broker frames

/** A valid broker frame (or message) on one of `channels` (sometimes on any channel). */
function validSegment(g: Gen, channels: readonly number[], frameMax: number): Uint8Array {
  const ch = channels.length > 0 && g.chance(0.85) ? g.pick(channels) : g.range(0, 10);
  const props = g.chance(0.5) ? {} : { contentType: "text/plain", headers: { n: g.int(100) } as FieldTable, deliveryMode: 2 };
  const body = () => g.body(g.pick([0, 1, g.int(frameMax), g.int(3 * frameMax), MAX_BODY, MAX_BODY + 1]));
  switch (g.int(30)) {
    case 24:
    case 25:
    case 26:
    case 27:
      // the common traffic, again: deliveries and confirms
      return g.chance(0.5)
        ? contentFrames(ch, method("basic.deliver", { consumerTag: "c1", deliveryTag: g.tag(), redelivered: false, exchange: "ex", routingKey: "k" }), g.body(g.int(2 * frameMax)), props, frameMax)
        : methodFrame(ch, method(g.chance(0.8) ? "basic.ack" : "basic.nack", { deliveryTag: g.range(1, 8), multiple: g.chance(0.3) }));
    case 28:
    case 29:
      return heartbeatFrame();
    case 0:
    case 1:
    case 2: {
      const b = body();
      // tiny body frames too, but not hundreds of thousands of them
      const split = b.length <= 2_000 ? g.pick([frameMax, 4096, 9, 100]) : frameMax;
      return contentFrames(ch, method("basic.deliver", { consumerTag: g.pick(["c1", "c2", "amq.ctag-x"]), deliveryTag: g.tag(), redelivered: g.chance(0.2), exchange: "ex", routingKey: "k" }), b, props, split);
    }
    case 3:
    case 4:
      return methodFrame(ch, method("basic.ack", { deliveryTag: g.tag(), multiple: g.chance(0.4) }));
    case 5:
      return methodFrame(ch, method("basic.nack", { deliveryTag: g.tag(), multiple: g.chance(0.4), requeue: false }));
    case 6:
      return contentFrames(ch, method("basic.return", { replyCode: 312, replyText: "NO_ROUTE", exchange: "ex", routingKey: g.pick(["a", "b"]) }), body(), props, frameMax);
    case 7:
      return methodFrame(ch, method("channel.close", { replyCode: g.pick([404, 406, 403, 320]), replyText: "SOFT", failingClassId: 50, failingMethodId: 10 }));
    case 8:
      return methodFrame(ch, method("channel.close-ok"));
    case 9:
      return methodFrame(0, method("connection.close", { replyCode: g.pick([320, 541, 501]), replyText: "HARD", failingClassId: 0, failingMethodId: 0 }));
    case 10:
      return methodFrame(0, method("connection.close-ok"));
    case 11:
      return methodFrame(ch, method("basic.cancel", { consumerTag: g.pick(["c1", "c2"]), noWait: g.chance(0.5) }));
    case 12:
      return methodFrame(ch, method("channel.open-ok"));
    case 13:
      return methodFrame(ch, method("queue.declare-ok", { queue: "q", messageCount: g.int(5), consumerCount: 0 }));
    case 14:
      return methodFrame(ch, method(g.pick(["basic.qos-ok", "confirm.select-ok", "basic.get-empty", "tx.select-ok", "basic.recover-ok"] as const)));
    case 15:
      return contentFrames(ch, method("basic.get-ok", { deliveryTag: g.tag(), redelivered: false, exchange: "", routingKey: "q", messageCount: 0 }), body(), props, frameMax);
    case 16:
      return methodFrame(ch, method("basic.consume-ok", { consumerTag: g.pick(["c1", "c2"]) }));
    case 17:
      return heartbeatFrame();
    case 18:
      return methodFrame(ch, method("channel.flow", { active: g.chance(0.5) }));
    case 19:
      return methodFrame(0, g.chance(0.5) ? method("connection.blocked", { reason: "memory" }) : method("connection.unblocked"));
    case 20:
      return methodFrame(0, method("connection.update-secret-ok"));
    case 21:
      return headerFrame(ch, g.pick<number | bigint>([0, 3, frameMax, MAX_BODY + 1, 2 ** 40, 2n ** 64n - 1n]), props);
    case 22:
      return bodyFrame(ch, g.body(g.int(Math.min(frameMax - 8, 300))));
    default:
      return methodFrame(ch, method("basic.cancel-ok", { consumerTag: "c1" }));
  }
}

/** A valid segment with a few mutations: flipped, overwritten, cut, repeated or inserted bytes. */
function mutated(g: Gen, seg: Uint8Array): Uint8Array {
  let b: Uint8Array = seg.slice();
  const n = g.range(1, 4);
  for (let i = 0; i < n && b.length > 0; i++) {
    switch (g.int(7)) {
      case 0:
        b[g.int(b.length)]! ^= 1 << g.int(8);
        break;
      case 1:
        b[g.int(b.length)] = g.pick([0, 0xff, 0xce, 1, 2, 3, 8, 0x80, g.int(256)]);
        break;
      case 2:
        b = b.subarray(0, g.int(b.length));
        break;
      case 3: {
        const at = g.int(b.length);
        b = concat([b.subarray(0, at), b.subarray(at, at + g.range(1, 16)), b.subarray(at)]);
        break;
      }
      case 4: {
        const at = g.int(b.length);
        b = concat([b.subarray(0, at), g.bytes(g.range(1, 8)), b.subarray(at)]);
        break;
      }
      case 5: {
        const at = g.int(b.length);
        b = concat([b.subarray(0, at), b.subarray(at + g.range(1, 8))]);
        break;
      }
      default: {
        // the size field of the first frame: claim more or less than there is
        if (b.length >= 7) {
          const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
          v.setUint32(3, g.pick([0, 1, v.getUint32(3) + 1, Math.max(0, v.getUint32(3) - 1), 0xffffffff, 131072]));
        }
      }
    }
  }
  return b;
}

// ---------------------------------------------------------------------------------------------------------
// One run

interface RunResult {
  ms: number;
  crash: { input: string; error: string } | undefined;
}

function fuzzOne(seed: number): RunResult {
  const g = new Gen(seed);
  const started = performance.now();
  const sent: Uint8Array[] = [];
  let error: string | undefined;
  const crash = (what: string) => {
    error ??= what;
  };

  const frameMax = g.pick([4096, 8192, 131072]);
  const broker = new FakeBroker({ maxBodySize: MAX_BODY, heartbeat: g.pick([0, 5, 60]), channelMax: 8, closeTimeout: 5_000 });
  const m = broker.machine;
  const ledger = new Ledger();

  const drain = () => {
    try {
      broker.pump();
    } catch (e) {
      crash(`the machine transmitted something broken: ${describe(e)}`);
    }
    for (const e of broker.takeEvents()) ledger.event(e);
    broker.takeFrames();
  };
  const input = (bytes: Uint8Array) => {
    sent.push(bytes);
    try {
      m.handleInput(bytes, broker.now);
    } catch (e) {
      crash(`handleInput threw ${describe(e)}`);
    }
    drain();
  };
  const command = <T>(what: string, f: () => T): T | undefined => {
    const before = m.pendingTransmit;
    try {
      return f();
    } catch (e) {
      if (!(e instanceof CommandError)) crash(`${what} threw ${describe(e)} (not a CommandError)`);
      else if (m.pendingTransmit !== before) crash(`${what} threw ${e.code} but left ${m.pendingTransmit - before} bytes queued`);
      return undefined;
    }
  };
  const call = (ch: number, req: Method) => {
    const id = command(`call ${req.name}`, () => m.call(ch, req));
    if (id !== undefined) ledger.request(id);
  };
  const publish = (ch: number) => {
    const seq = command("publish", () => m.publish(ch, "ex", g.pick(["a", "b"]), g.body(g.int(2 * frameMax)), {}, g.chance(0.5)));
    if (seq !== undefined) ledger.published(ch, seq);
  };

  // --- a connection in an interesting state ----------------------------------------------------------
  try {
    broker.handshake({ frameMax, heartbeat: g.pick([0, 5, 60]) });
    broker.takeEvents();
    const channels: number[] = [];
    const count = g.range(1, 3);
    for (let i = 0; i < count; i++) {
      const { channel, requestId } = m.openChannel();
      ledger.opened(channel, requestId);
      channels.push(channel);
      broker.reply(channel, method("channel.open-ok"));
      if (g.chance(0.6)) {
        call(channel, method("confirm.select"));
        broker.reply(channel, method("confirm.select-ok"));
      }
      if (g.chance(0.5)) {
        call(channel, method("basic.consume", { queue: "q", consumerTag: g.pick(["c1", "c2"]) }));
        broker.reply(channel, method("basic.consume-ok", { consumerTag: "c1" }));
      }
      for (let p = g.int(4); p > 0; p--) publish(channel);
      if (g.chance(0.5)) call(channel, method("queue.declare", { queue: "q" })); // left in flight
      for (let p = g.int(3); p > 0; p--) publish(channel); // queued behind it
    }
    drain();
    if (ledger.violations.length > 0) crash(`during setup: ${ledger.violations.join("; ")}`);

    // --- the broker stream ---------------------------------------------------------------------------
    // how broken this run's broker is: from well-formed frames only (which may still break the protocol's
    // rules) to mostly mutations and noise — so that runs get deep into a session as well as fail early
    const corruption = g.pick([0, 0, 0.02, 0.1, 0.3, 0.8]);
    const segments: Uint8Array[] = [];
    for (let n = g.range(4, 60); n > 0; n--) {
      if (!g.chance(corruption)) segments.push(validSegment(g, channels, frameMax));
      else if (g.chance(0.8)) segments.push(mutated(g, validSegment(g, channels, frameMax)));
      else segments.push(g.bytes(g.range(1, 64)));
    }
    const stream = concat(segments);
    for (let at = 0; at < stream.length && error === undefined; ) {
      const size = g.chance(0.3) ? g.range(1, 8) : g.range(1, 4096);
      const closed = m.isClosed;
      input(stream.slice(at, at + size)); // once closed, one more read shows it is ignored; then stop
      at += size;
      if (closed) break;
      // the world goes on between reads
      const r = g.int(20);
      if (r === 0) {
        broker.clock.advance(g.pick([1, 100, 2_500, 10_000, 200_000]));
        try {
          m.handleTimeout(broker.now);
        } catch (e) {
          crash(`handleTimeout threw ${describe(e)}`);
        }
        drain();
      } else if (r === 1 && channels.length > 0) {
        publish(g.pick(channels));
        drain();
      } else if (r === 2 && channels.length > 0) {
        call(g.pick(channels), method("basic.qos", { prefetchCount: 1 }));
        drain();
      } else if (r === 3 && channels.length > 0) {
        const id = command("closeChannel", () => m.closeChannel(g.pick(channels)));
        if (id !== undefined) ledger.request(id);
        drain();
      } else if (r === 4) {
        const opened = command("openChannel", () => m.openChannel());
        if (opened) {
          ledger.opened(opened.channel, opened.requestId);
          if (!channels.includes(opened.channel)) channels.push(opened.channel);
        }
        drain();
      } else if (r === 5 && channels.length > 0) {
        command("send basic.ack", () => m.send(g.pick(channels), method("basic.ack", { deliveryTag: g.tag(), multiple: g.chance(0.3) })));
        drain();
      }
    }

    // --- drive it to the end -------------------------------------------------------------------------
    command("close", () => m.close());
    drain();
    if (!m.isClosed) input(methodFrame(0, method("connection.close-ok")));
    if (!m.isClosed) {
      try {
        m.handleEnd(broker.now);
      } catch (e) {
        crash(`handleEnd threw ${describe(e)}`);
      }
      drain();
    }
    if (!m.isClosed) crash("the machine is not closed after close(), close-ok and the end of the stream");
    if (m.pollTimeout() !== undefined) crash("a closed machine still asks for a timer");
    // a closed machine stays quiet
    input(heartbeatFrame());
    ledger.checkAllSettled();
    if (ledger.violations.length > 0) crash(ledger.violations.slice(0, 5).join("; "));
  } catch (e) {
    crash(`the run failed: ${describe(e)}`);
  }

  const ms = performance.now() - started;
  if (error === undefined && ms > SLOW_MS) error = `the run took ${ms.toFixed(0)} ms (limit ${SLOW_MS} ms)`;
  if (error === undefined) return { ms, crash: undefined };
  const bytes = concat(sent);
  const shown = bytes.length > KEEP_BYTES ? `${hex(bytes.subarray(0, KEEP_BYTES))}… (${bytes.length} bytes)` : hex(bytes);
  return { ms, crash: { input: `run seed ${seed}; broker bytes ${shown}`, error } };
}

/**
 * Runs the machine fuzz target `runs` times from `seed`.
 * @returns how many runs, the slowest run in ms, and every crash (the run's seed and broker bytes, and why)
 * @example
 * const { crashes } = fuzzMachine(300, 1);
 * if (crashes.length > 0) console.log(crashes[0]!.error);
 */
export function fuzzMachine(runs: number, seed: number): { runs: number; maxMs: number; crashes: { input: string; error: string }[] } {
  let maxMs = 0;
  const crashes: { input: string; error: string }[] = [];
  for (let i = 0; i < runs; i++) {
    const r = fuzzOne(runSeed(seed, i));
    maxMs = Math.max(maxMs, r.ms);
    if (r.crash) crashes.push(r.crash);
  }
  return { runs, maxMs, crashes };
}
