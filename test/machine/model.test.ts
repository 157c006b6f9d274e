/**
 * Model-based property test: random interleavings of application commands and broker actions, played
 * against the machine through the fake broker on a simulated clock.
 *
 * The broker side is a small model of RabbitMQ: it reads what the client sent (channel.open, requests,
 * publishes, closes) and only ever answers what a real broker could — replies to the oldest pending request,
 * channel.close and connection.close of its own, acks and nacks (single and multiple) of publishes it
 * received, returns of mandatory publishes before their ack, consumer cancels, deliveries (some over
 * maxBodySize), heartbeats, a closing handshake that crosses the client's. On top come the things that end
 * or corrupt a connection: timeouts moving the clock, end of stream, random garbage bytes.
 *
 * Invariants (events.ts, connection.ts):
 * - every request id settles exactly once (reply or requestFailed), every confirm-mode publish exactly once
 *   (publishConfirmed or publishFailed), by the time connectionClosed is emitted — each run is driven to a
 *   close at the end;
 * - connectionClosed is emitted exactly once, and last;
 * - nothing is transmitted on, and no event reported for, a channel after its channelClosed (until openChannel
 *   hands the id out again);
 * - broker input never makes the machine throw; commands throw only CommandError, and then change nothing;
 * - while the broker behaves (no garbage bytes), the machine never claims a protocol violation, replies
 *   answer the request they settle, confirms say what the broker said (ack or nack, returned or not), and
 *   every delivery arrives whole.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Frame } from "../../src/codec/amqp/frames.ts";
import type { Method, MethodName } from "../../src/codec/amqp/methods.generated.ts";
import { CommandError, type MachineEvent } from "../../src/machine/index.ts";
import { connected, FakeBroker, heartbeatFrame, Ledger, method, methodFrame, contentFrames, show, utf8 } from "../support/fake-broker.ts";

const CHANNEL_MAX = 4;
const MAX_BODY = 6_000;
const HEARTBEAT_S = 5;
const FRAME_MAX = 4096;
const KEYS = ["a", "b"] as const;

// ---------------------------------------------------------------------------------------------------------
// Steps

type Step =
  | { k: "open" }
  | { k: "call"; ch: number; what: "declare" | "qos" | "confirm" | "consume" }
  | { k: "publish"; ch: number; mandatory: boolean; key: number }
  | { k: "closeChannel"; ch: number }
  | { k: "close" }
  | { k: "misuse"; ch: number; what: "asyncCall" | "syncSend" | "longName" }
  | { k: "reply"; pick: number }
  | { k: "brokerCloseChannel"; pick: number; code: number }
  | { k: "crossClose"; pick: number }
  | { k: "brokerClose"; code: number }
  | { k: "closeOk" }
  | { k: "confirm"; pick: number; which: number; multiple: boolean; nack: boolean }
  | { k: "return"; pick: number; which: number }
  | { k: "cancel"; pick: number; noWait: boolean }
  | { k: "deliver"; pick: number; size: number }
  | { k: "heartbeat" }
  | { k: "timeout"; ms: number }
  | { k: "end" }
  | { k: "garbage"; bytes: Uint8Array };

// mostly the first channels, which are likely open; ids past channel_max are never open
const ch = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 2 }) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: CHANNEL_MAX + 2 }) });
const pick = fc.nat({ max: 100 });

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ k: "open" as const }) },
  { weight: 8, arbitrary: fc.record({ k: fc.constant("call" as const), ch, what: fc.constantFrom("declare" as const, "qos" as const, "confirm" as const, "consume" as const) }) },
  { weight: 12, arbitrary: fc.record({ k: fc.constant("publish" as const), ch, mandatory: fc.boolean(), key: fc.nat({ max: 1 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("closeChannel" as const), ch }) },
  { weight: 1, arbitrary: fc.constant({ k: "close" as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("misuse" as const), ch, what: fc.constantFrom("asyncCall" as const, "syncSend" as const, "longName" as const) }) },
  { weight: 16, arbitrary: fc.record({ k: fc.constant("reply" as const), pick }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("brokerCloseChannel" as const), pick, code: fc.constantFrom(404, 406, 403) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("crossClose" as const), pick }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("brokerClose" as const), code: fc.constantFrom(320, 541) }) },
  { weight: 2, arbitrary: fc.constant({ k: "closeOk" as const }) },
  { weight: 12, arbitrary: fc.record({ k: fc.constant("confirm" as const), pick, which: pick, multiple: fc.boolean(), nack: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant("return" as const), pick, which: pick }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("cancel" as const), pick, noWait: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant("deliver" as const), pick, size: fc.oneof(fc.nat({ max: 10_000 }), fc.constantFrom(0, MAX_BODY, MAX_BODY + 1)) }) },
  { weight: 2, arbitrary: fc.constant({ k: "heartbeat" as const }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant("timeout" as const), ms: fc.oneof(fc.nat({ max: 3_000 }), fc.nat({ max: 15_000 })) }) },
  { weight: 1, arbitrary: fc.constant({ k: "end" as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("garbage" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }) },
);

// ---------------------------------------------------------------------------------------------------------
// The broker's side of the model

interface Unacked {
  seq: number;
  key: string;
  mandatory: boolean;
  returned: boolean;
}

interface BrokerChannel {
  readonly id: number;
  /** The client's generation of this id when it opened it (to name publishes as the Ledger does). */
  readonly gen: number;
  /** Requests the client sent and the broker has not answered, oldest first. */
  pending: Method[];
  open: boolean;
  /** The broker sent channel.close and waits for close-ok. */
  brokerClosing: boolean;
  /** The client sent channel.close. */
  clientClosing: boolean;
  confirm: boolean;
  published: number;
  unacked: Unacked[];
  /** Mandatory publishes outside confirm mode not yet returned, by routing key. */
  plainMandatory: string[];
  consumers: string[];
  nextTag: number;
  /** Server-generated consumer tags are unique on a channel, as RabbitMQ's are (a reused one is a 503). */
  consumersStarted: number;
}

class Run {
  readonly broker: FakeBroker;
  readonly ledger = new Ledger();
  readonly channels = new Map<number, BrokerChannel>();
  readonly problems: string[] = [];
  /** Set once garbage went in: from then on only the settlement invariants are checked. */
  corrupted = false;
  sawConnectionClose = false;
  /** request id → the replies that may settle it */
  readonly replies = new Map<number, readonly MethodName[]>();
  /** publish key → what the broker said about it */
  readonly verdicts = new Map<string, { ack: boolean; returned: boolean }>();
  private consumerCounter = 0;
  private readonly log: string[] = [];

  /** @param tamper lets the self-test below break the machine on purpose, to prove the checks bite */
  constructor(tamper?: (m: FakeBroker["machine"]) => void) {
    this.broker = connected({ channelMax: CHANNEL_MAX, maxBodySize: MAX_BODY, heartbeat: HEARTBEAT_S, closeTimeout: 5_000 }, { frameMax: FRAME_MAX, heartbeat: HEARTBEAT_S });
    this.broker.takeFrames();
    this.broker.takeEvents();
    tamper?.(this.broker.machine);
  }

  private problem(text: string): void {
    this.problems.push(`${text}\n  steps: ${this.log.join(" | ")}`);
  }

  // --- after every step: read what the client sent, then the events ---------------------------------

  private settle(expectDelivery?: { channel: number; size: number; delivered: boolean }): void {
    const frames = this.broker.takeFrames();
    for (const f of frames) this.onClientFrame(f);
    const events = this.broker.takeEvents();
    let deliveries = 0;
    for (const e of events) {
      this.ledger.event(e);
      this.onEvent(e);
      if (e.type === "delivery") {
        deliveries++;
        if (!this.corrupted && expectDelivery && (e.channel !== expectDelivery.channel || e.message.body.length !== expectDelivery.size)) {
          this.problem(`delivery ${show(e)} is not the ${expectDelivery.size}-byte message sent on ${expectDelivery.channel}`);
        }
      }
    }
    if (!this.corrupted && expectDelivery && !this.broker.machine.isClosed) {
      const want = expectDelivery.delivered ? 1 : 0;
      if (deliveries !== want) this.problem(`expected ${want} delivery, got ${deliveries}`);
    }
    for (const v of this.ledger.violations.splice(0)) this.problem(v);
  }

  private onClientFrame(f: Frame): void {
    if (f.type === "protocol-header" || f.type === 8) return;
    if (f.channel !== 0 && this.ledger.closedChannels.has(f.channel)) {
      this.problem(`transmitted a frame of type ${f.type}${f.type === 1 ? ` (${f.method.name})` : ""} on channel ${f.channel} after its channelClosed`);
    }
    if (f.type !== 1) return; // content header and body frames: the method said it all
    const m = f.method;
    if (f.channel === 0) {
      if (m.name === "connection.close") {
        this.sawConnectionClose = true;
        if (!this.corrupted && m.replyCode !== 200) this.problem(`a well-behaved broker got connection.close ${m.replyCode} ${m.replyText}`);
      }
      return;
    }
    if (m.name === "channel.open") {
      this.channels.set(f.channel, {
        id: f.channel,
        gen: this.ledger.generationOf(f.channel),
        pending: [m],
        open: false,
        brokerClosing: false,
        clientClosing: false,
        confirm: false,
        published: 0,
        unacked: [],
        plainMandatory: [],
        consumers: [],
        nextTag: 1,
        consumersStarted: 0,
      });
      return;
    }
    const c = this.channels.get(f.channel);
    if (c === undefined) {
      if (!this.corrupted) this.problem(`client sent ${m.name} on channel ${f.channel}, which the broker does not know`);
      return;
    }
    switch (m.name) {
      case "channel.close":
        if (m.replyCode !== 200 && m.replyCode !== 311 && !this.corrupted) this.problem(`unexpected channel.close ${m.replyCode}`);
        c.clientClosing = true;
        c.pending.push(m);
        return;
      case "channel.close-ok":
        this.channels.delete(c.id); // answers the broker's channel.close
        return;
      case "queue.declare":
      case "basic.qos":
      case "basic.consume":
        c.pending.push(m);
        return;
      case "confirm.select":
        c.confirm = true;
        c.pending.push(m);
        return;
      case "basic.publish":
        if (c.confirm) {
          c.published++;
          c.unacked.push({ seq: c.published, key: m.routingKey, mandatory: m.mandatory, returned: false });
        } else if (m.mandatory) {
          c.plainMandatory.push(m.routingKey);
        }
        return;
      default:
        return; // flow-ok, cancel-ok, acks: nothing to track
    }
  }

  private onEvent(e: MachineEvent): void {
    if (this.corrupted) return;
    switch (e.type) {
      case "reply": {
        const ok = this.replies.get(e.requestId);
        if (ok !== undefined && !ok.includes(e.method.name)) this.problem(`request ${e.requestId} settled by ${e.method.name}, expected ${ok.join("/")}`);
        return;
      }
      case "publishConfirmed": {
        const v = this.verdicts.get(this.ledger.key(e.channel, e.seq));
        if (v === undefined) this.problem(`publishConfirmed ${e.channel}/${e.seq} without the broker confirming it`);
        else {
          if (v.ack !== e.ack) this.problem(`publishConfirmed ${e.channel}/${e.seq} ack=${e.ack}, the broker said ${v.ack ? "ack" : "nack"}`);
          if (v.returned !== (e.returned !== undefined)) this.problem(`publishConfirmed ${e.channel}/${e.seq} returned=${e.returned !== undefined}, the broker returned it: ${v.returned}`);
          if (e.returned !== undefined && e.returned.publishSeq !== e.seq) this.problem(`return attached to ${e.seq} names publish ${e.returned.publishSeq}`);
        }
        return;
      }
      default:
        return;
    }
  }

  // --- commands ----------------------------------------------------------------------------------------

  /** Runs a command; a throw must be a CommandError that changed nothing. Returns undefined when it threw. */
  private command<T>(what: string, f: () => T, mustThrow = false): T | undefined {
    const before = this.broker.machine.pendingTransmit;
    let out: T;
    try {
      out = f();
    } catch (e) {
      if (!(e instanceof CommandError)) {
        this.problem(`${what} threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}, not a CommandError`);
        return undefined;
      }
      if (this.broker.machine.pendingTransmit !== before) this.problem(`${what} threw ${e.code} but queued ${this.broker.machine.pendingTransmit - before} bytes`);
      this.broker.pump();
      if (this.broker.unreadEvents().length > 0) this.problem(`${what} threw ${e.code} but emitted ${show(this.broker.unreadEvents())}`);
      return undefined;
    }
    if (mustThrow) this.problem(`${what} did not throw`);
    return out;
  }

  private callMethod(what: "declare" | "qos" | "confirm" | "consume"): [Method, MethodName[]] {
    switch (what) {
      case "declare":
        return [method("queue.declare", { queue: "q" }), ["queue.declare-ok"]];
      case "qos":
        return [method("basic.qos", { prefetchCount: 10 }), ["basic.qos-ok"]];
      case "confirm":
        return [method("confirm.select"), ["confirm.select-ok"]];
      case "consume":
        return [method("basic.consume", { queue: "q", consumerTag: this.consumerCounter++ % 2 === 0 ? "" : `mine-${this.consumerCounter}` }), ["basic.consume-ok"]];
    }
  }

  // --- broker actions ----------------------------------------------------------------------------------

  private feed(bytes: Uint8Array): void {
    try {
      this.broker.machine.handleInput(bytes, this.broker.now);
    } catch (e) {
      this.problem(`handleInput threw ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}`);
    }
  }

  private choose<T>(items: T[], n: number): T | undefined {
    return items.length === 0 ? undefined : items[n % items.length];
  }

  private live(): BrokerChannel[] {
    return [...this.channels.values()].sort((a, b) => a.id - b.id);
  }

  private replyTo(c: BrokerChannel): void {
    const req = c.pending.shift()!;
    switch (req.name) {
      case "channel.open":
        c.open = true;
        this.feed(methodFrame(c.id, method("channel.open-ok")));
        return;
      case "queue.declare":
        this.feed(methodFrame(c.id, method("queue.declare-ok", { queue: "q", messageCount: 0, consumerCount: 0 })));
        return;
      case "basic.qos":
        this.feed(methodFrame(c.id, method("basic.qos-ok")));
        return;
      case "confirm.select":
        this.feed(methodFrame(c.id, method("confirm.select-ok")));
        return;
      case "basic.consume": {
        const tag = req.consumerTag === "" ? `amq.ctag-${c.id}-${++c.consumersStarted}` : req.consumerTag;
        c.consumers.push(tag);
        this.feed(methodFrame(c.id, method("basic.consume-ok", { consumerTag: tag })));
        return;
      }
      case "channel.close":
        this.channels.delete(c.id);
        this.feed(methodFrame(c.id, method("channel.close-ok")));
        return;
      default:
        this.problem(`the model cannot answer ${req.name}`);
    }
  }

  step(s: Step): void {
    this.log.push(JSON.stringify(s, (_, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v)));
    const m = this.broker.machine;
    let expectDelivery: { channel: number; size: number; delivered: boolean } | undefined;
    switch (s.k) {
      case "open": {
        const r = this.command("openChannel", () => m.openChannel());
        if (r) {
          this.ledger.opened(r.channel, r.requestId);
          this.replies.set(r.requestId, ["channel.open-ok"]);
        }
        break;
      }
      case "call": {
        const [req, ok] = this.callMethod(s.what);
        const id = this.command(`call ${req.name}`, () => m.call(s.ch, req));
        if (id !== undefined) {
          this.ledger.request(id);
          this.replies.set(id, ok);
        }
        break;
      }
      case "publish": {
        const seq = this.command("publish", () => m.publish(s.ch, "ex", KEYS[s.key]!, utf8("m"), {}, s.mandatory));
        if (seq !== undefined) this.ledger.published(s.ch, seq);
        break;
      }
      case "closeChannel": {
        const id = this.command("closeChannel", () => m.closeChannel(s.ch));
        if (id !== undefined) {
          this.ledger.request(id);
          this.replies.set(id, ["channel.close-ok"]);
        }
        break;
      }
      case "close":
        this.command("close", () => m.close());
        break;
      case "misuse": {
        const f =
          s.what === "asyncCall"
            ? () => m.call(s.ch, method("basic.ack", { deliveryTag: 1 }))
            : s.what === "syncSend"
              ? () => m.send(s.ch, method("queue.declare", { queue: "q" }))
              : () => m.call(s.ch, method("queue.declare", { queue: "x".repeat(300) }));
        this.command(`misuse ${s.what}`, f, true);
        break;
      }
      case "reply": {
        const c = this.choose(
          this.live().filter((c) => c.pending.length > 0 && !c.brokerClosing),
          s.pick,
        );
        if (c) this.replyTo(c);
        break;
      }
      case "brokerCloseChannel": {
        const c = this.choose(
          this.live().filter((c) => c.open && !c.brokerClosing && !c.clientClosing),
          s.pick,
        );
        if (c) {
          c.brokerClosing = true;
          c.pending = [];
          this.feed(methodFrame(c.id, method("channel.close", { replyCode: s.code, replyText: "SOFT_ERROR", failingClassId: 50, failingMethodId: 10 })));
        }
        break;
      }
      case "crossClose": {
        // the broker's channel.close crossed the client's on the wire; it answers the client's close too
        const c = this.choose(
          this.live().filter((c) => c.clientClosing && !c.brokerClosing),
          s.pick,
        );
        if (c) {
          c.brokerClosing = true;
          c.pending = [];
          this.feed(methodFrame(c.id, method("channel.close", { replyCode: 406, replyText: "PRECONDITION_FAILED", failingClassId: 0, failingMethodId: 0 })));
          this.feed(methodFrame(c.id, method("channel.close-ok")));
        }
        break;
      }
      case "brokerClose":
        this.feed(methodFrame(0, method("connection.close", { replyCode: s.code, replyText: "CONNECTION_FORCED", failingClassId: 0, failingMethodId: 0 })));
        break;
      case "closeOk":
        if (this.sawConnectionClose) this.feed(methodFrame(0, method("connection.close-ok")));
        break;
      case "confirm": {
        const c = this.choose(
          this.live().filter((c) => c.unacked.length > 0 && !c.brokerClosing),
          s.pick,
        );
        if (c) {
          const target = c.unacked[s.which % c.unacked.length]!;
          const settled = s.multiple ? c.unacked.filter((u) => u.seq <= target.seq) : [target];
          c.unacked = c.unacked.filter((u) => !settled.includes(u));
          for (const u of settled) this.verdicts.set(`${c.id}/${c.gen}/${u.seq}`, { ack: !s.nack, returned: u.returned });
          const name = s.nack ? "basic.nack" : "basic.ack";
          this.feed(methodFrame(c.id, method(name, { deliveryTag: target.seq, multiple: s.multiple })));
        }
        break;
      }
      case "return": {
        // a mandatory publish that could not be routed is returned before its ack, the earliest first
        const c = this.choose(
          this.live().filter((c) => c.open && !c.brokerClosing && !c.clientClosing && (c.unacked.some((u) => u.mandatory && !u.returned) || c.plainMandatory.length > 0)),
          s.pick,
        );
        if (!c) break;
        let key: string;
        if (c.confirm) {
          const candidates = c.unacked.filter((u) => u.mandatory && !u.returned);
          if (candidates.length === 0) break;
          key = candidates[s.which % candidates.length]!.key;
          candidates.find((u) => u.key === key)!.returned = true;
        } else {
          key = c.plainMandatory.shift()!;
        }
        this.feed(contentFrames(c.id, method("basic.return", { replyCode: 312, replyText: "NO_ROUTE", exchange: "ex", routingKey: key }), utf8("m"), {}, FRAME_MAX));
        break;
      }
      case "cancel": {
        const c = this.choose(
          this.live().filter((c) => c.consumers.length > 0 && !c.brokerClosing && !c.clientClosing),
          s.pick,
        );
        if (c) {
          const tag = c.consumers.shift()!;
          this.feed(methodFrame(c.id, method("basic.cancel", { consumerTag: tag, noWait: s.noWait })));
        }
        break;
      }
      case "deliver": {
        const c = this.choose(
          this.live().filter((c) => c.open && !c.brokerClosing),
          s.pick,
        );
        if (c) {
          const body = new Uint8Array(s.size).fill(c.id);
          // A delivery for a tag the channel does not consume is rejected by the machine, never emitted.
          const consumed = c.consumers.length > 0;
          expectDelivery = { channel: c.id, size: s.size, delivered: m.isOpen && !c.clientClosing && s.size <= MAX_BODY && consumed };
          const deliver = method("basic.deliver", { consumerTag: c.consumers[0] ?? "none", deliveryTag: c.nextTag++, redelivered: false, exchange: "ex", routingKey: "a" });
          this.feed(contentFrames(c.id, deliver, body, {}, FRAME_MAX));
        }
        break;
      }
      case "heartbeat":
        this.feed(heartbeatFrame());
        break;
      case "timeout":
        this.broker.clock.advance(s.ms);
        try {
          m.handleTimeout(this.broker.now);
        } catch (e) {
          this.problem(`handleTimeout threw ${String(e)}`);
        }
        break;
      case "end":
        try {
          m.handleEnd(this.broker.now);
        } catch (e) {
          this.problem(`handleEnd threw ${String(e)}`);
        }
        break;
      case "garbage":
        this.corrupted = true;
        this.feed(s.bytes.slice());
        break;
    }
    this.settle(expectDelivery);
  }

  /** Drives the connection to its end: close, answer close-ok, or end the stream. */
  finish(): void {
    const m = this.broker.machine;
    if (!m.isClosed) {
      this.command("close", () => m.close());
      this.settle();
      if (this.sawConnectionClose && !m.isClosed) {
        this.feed(methodFrame(0, method("connection.close-ok")));
        this.settle();
      }
      if (!m.isClosed) {
        m.handleEnd(this.broker.now);
        this.settle();
      }
    }
    if (!m.isClosed) this.problem("the machine is not closed after close + close-ok + end of stream");
    if (m.pollTimeout() !== undefined) this.problem("a closed machine still asks for a timer");
    this.ledger.checkAllSettled();
    for (const v of this.ledger.violations.splice(0)) this.problem(v);
  }
}

/** Half the runs start with two open channels, the first in confirm mode, so confirms get exercised. */
const WARM_START: Step[] = [
  { k: "open" },
  { k: "open" },
  { k: "reply", pick: 0 },
  { k: "reply", pick: 0 },
  { k: "call", ch: 1, what: "confirm" },
  { k: "reply", pick: 0 },
];

function runs(step: fc.Arbitrary<Step>, minLength: number): fc.Arbitrary<Step[]> {
  return fc
    .tuple(fc.boolean(), fc.array(step, { minLength, maxLength: 60, size: "max" }))
    .map(([warm, steps]) => (warm ? [...WARM_START, ...steps].slice(0, 60) : steps));
}

function problems(steps: Step[], tamper?: (m: FakeBroker["machine"]) => void): string[] {
  const run = new Run(tamper);
  for (const s of steps) run.step(s);
  run.finish();
  return run.problems;
}

function check(steps: Step[]): void {
  const found = problems(steps);
  if (found.length > 0) throw new Error(found.slice(0, 3).join("\n\n"));
}

/** Wraps pollEvent so that `edit` decides what the caller sees of each event. */
function editEvents(edit: (e: MachineEvent) => MachineEvent[]) {
  return (m: FakeBroker["machine"]) => {
    const queue: MachineEvent[] = [];
    const poll = m.pollEvent.bind(m);
    m.pollEvent = () => {
      for (let e = poll(); e !== undefined; e = poll()) queue.push(...edit(e));
      return queue.shift();
    };
  };
}

describe("model: the checks bite", () => {
  const scenario: Step[] = [
    ...WARM_START,
    { k: "publish", ch: 1, mandatory: true, key: 0 },
    { k: "publish", ch: 1, mandatory: false, key: 1 },
    { k: "call", ch: 2, what: "declare" },
    { k: "confirm", pick: 0, which: 0, multiple: false, nack: false },
    { k: "call", ch: 1, what: "consume" },
    { k: "reply", pick: 0 },
    { k: "deliver", pick: 0, size: 10 },
  ];

  it("the scenario itself is clean", () => {
    expect(problems(scenario)).toEqual([]);
  });

  it("a publish settled twice is caught", () => {
    const found = problems(scenario, editEvents((e) => (e.type === "publishConfirmed" ? [e, e] : [e])));
    expect(found.join("\n")).toMatch(/settled twice/);
  });

  it("a request never settled is caught", () => {
    const found = problems(scenario, editEvents((e) => (e.type === "requestFailed" ? [] : [e])));
    expect(found.join("\n")).toMatch(/settled 0 times/);
  });

  it("an event after connectionClosed is caught", () => {
    const found = problems(scenario, editEvents((e) => (e.type === "connectionClosed" ? [e, { type: "unblocked" }] : [e])));
    expect(found.join("\n")).toMatch(/after connectionClosed/);
  });

  it("an event on a closed channel is caught", () => {
    const found = problems(scenario, editEvents((e) => (e.type === "channelClosed" ? [e, { type: "channelFlow", channel: e.channel, active: true }] : [e])));
    expect(found.join("\n")).toMatch(/after its channelClosed/);
  });

  it("a frame transmitted on a closed channel is caught", () => {
    const closed: number[] = [];
    const steps: Step[] = [...scenario, { k: "brokerCloseChannel", pick: 0, code: 406 }, { k: "heartbeat" }];
    const found = problems(steps, (m) => {
      const poll = m.pollEvent.bind(m);
      m.pollEvent = () => {
        const e = poll();
        if (e?.type === "channelClosed") closed.push(e.channel);
        return e;
      };
      const transmit = m.pollTransmit.bind(m);
      m.pollTransmit = (now) => {
        const out = transmit(now);
        if (out !== undefined || closed.length === 0) return out;
        return methodFrame(closed.shift()!, method("basic.ack", { deliveryTag: 1 }));
      };
    });
    expect(found.join("\n")).toMatch(/basic\.ack\) on channel 1 after its channelClosed/);
  });

  it("a nack reported as an ack is caught", () => {
    const nacked = scenario.map((s) => (s.k === "confirm" ? { ...s, nack: true } : s));
    const found = problems(nacked, editEvents((e) => (e.type === "publishConfirmed" ? [{ ...e, ack: true }] : [e])));
    expect(found.join("\n")).toMatch(/the broker said nack/);
  });

  it("a lost delivery is caught", () => {
    const found = problems(scenario, editEvents((e) => (e.type === "delivery" ? [] : [e])));
    expect(found.join("\n")).toMatch(/expected 1 delivery, got 0/);
  });
});

describe("model: random commands and broker actions", () => {
  it("every request and publish settles exactly once, nothing on closed channels, connectionClosed once and last, no throws", () => {
    fc.assert(fc.property(runs(stepArb, 5), check), { numRuns: 200 });
  });

  it("the same, with a well-behaved broker only (no garbage, no end of stream, no long timeouts)", () => {
    const quiet = stepArb.filter((s) => s.k !== "garbage" && s.k !== "end" && !(s.k === "timeout" && s.ms > 2_000));
    fc.assert(fc.property(runs(quiet, 20), check), { numRuns: 200 });
  });
});
