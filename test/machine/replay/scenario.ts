/**
 * The replay scenario: one AMQP session as a deterministic reaction to the machine's events.
 *
 * `ReplayScenario.react` is the only place commands are issued, and it decides from the events seen so far
 * alone — never from time, chunking or anything outside the machine — so the same event sequence always
 * yields the same commands, hence the same bytes. The recorder (scripts/record-machine-transcript.ts) runs it
 * against a real broker; the replay test (test/machine/replay.test.ts) runs it against the recorded bytes.
 *
 * Session: handshake → open channel 1 → queue.declare → confirm.select → three publishes (a plain one, one with
 * every property and a headers table, one mandatory to an unroutable key on amq.direct that comes back as
 * basic.return before its ack) → all confirms → basic.qos → basic.consume → both deliveries acked →
 * basic.cancel → open channel 2 → a queue.declare that contradicts the queue (the broker closes channel 2
 * with 406) → queue.delete on channel 1 → close channel 1 → close the connection.
 *
 * Determinism against the broker: commands go out only in answer to the last frame of whatever the broker
 * sends for the previous write (e.g. the acks wait until both deliveries are in), so the client never writes
 * while the broker is still mid-answer. Otherwise how TCP split the broker's reply would decide where the
 * client's writes fall, and two recordings would differ.
 */
import { Decimal, type FieldTable, type FieldValue, TypedField } from "../../../src/codec/amqp/field-table.ts";
import type { BasicProperties } from "../../../src/codec/amqp/properties.ts";
import { ConnectionMachine, type MachineOptions } from "../../../src/machine/index.ts";
import type { CloseReason, Content, MachineEvent } from "../../../src/machine/index.ts";

export const QUEUE = "warren.replay.q";
export const CONSUMER_TAG = "warren.replay.ctag";
export const UNROUTABLE_KEY = "warren.replay.nowhere";

/** Everything that reaches the wire is pinned: no default that could change with the host or Node version. */
export const MACHINE_OPTIONS: MachineOptions = {
  username: "guest",
  password: "guest",
  vhost: "/",
  mechanism: "PLAIN",
  frameMax: 131072,
  channelMax: 2047,
  heartbeat: 0,
  clientProperties: { platform: "replay", connection_name: "warren.replay" },
};

const utf8 = new TextEncoder();

/** The three publishes, in order; sequence numbers 1, 2, 3. */
export const PUBLISHES: readonly {
  exchange: string;
  routingKey: string;
  body: Uint8Array;
  properties: BasicProperties;
  mandatory: boolean;
}[] = [
  { exchange: "", routingKey: QUEUE, body: utf8.encode("replay message 1"), properties: {}, mandatory: false },
  {
    exchange: "",
    routingKey: QUEUE,
    body: utf8.encode('{"n":2,"text":"replay message 2"}'),
    properties: {
      contentType: "application/json",
      contentEncoding: "utf-8",
      headers: {
        "x-replay": "yes",
        attempt: 2,
        ratio: 0.5,
        negative: -40000,
        flag: true,
        nothing: null,
        nested: { depth: 1, list: [1, "two", false] },
        raw: new Uint8Array([0xde, 0xad, 0xbe, 0xef]),
      },
      deliveryMode: 1,
      priority: 5,
      correlationId: "corr-2",
      replyTo: "warren.replay.reply",
      expiration: "600000",
      messageId: "msg-2",
      timestamp: 1700000000,
      type: "replay.test",
      userId: "guest",
      appId: "warren-replay",
    },
    mandatory: false,
  },
  {
    exchange: "amq.direct",
    routingKey: UNROUTABLE_KEY,
    body: utf8.encode("replay message 3 (unroutable)"),
    properties: { messageId: "msg-3" },
    mandatory: true,
  },
];

/** The machine every run starts from. `now` only sets timers, which this scenario never reaches. */
export function createMachine(now: number): ConnectionMachine {
  return new ConnectionMachine(MACHINE_OPTIONS, now);
}

/**
 * Issues the scenario's commands in answer to events, and logs every event in a compact, stable text form.
 * @example
 * const s = new ReplayScenario();
 * s.drain(m); // after every handleInput
 */
export class ReplayScenario {
  readonly log: string[] = [];
  private confirmed = 0;
  private readonly deliveryTags: (number | bigint)[] = [];

  /** Feeds every pending event to `react`. */
  drain(m: ConnectionMachine): void {
    for (let e = m.pollEvent(); e !== undefined; e = m.pollEvent()) this.react(m, e);
  }

  react(m: ConnectionMachine, e: MachineEvent): void {
    this.log.push(formatEvent(e));
    switch (e.type) {
      case "handshakeDone":
        m.openChannel(); // channel 1
        return;
      case "reply":
        this.onReply(m, e.channel, e.method.name);
        return;
      case "publishConfirmed":
        if (++this.confirmed === PUBLISHES.length) {
          m.call(1, { name: "basic.qos", classId: 60, methodId: 10, prefetchSize: 0, prefetchCount: 10, global: false });
        }
        return;
      case "delivery":
        this.deliveryTags.push(e.deliveryTag);
        // Both routable messages are in: ack each, then stop consuming. Waiting for the last one keeps the
        // client silent while the broker is still delivering (see the file comment).
        if (this.deliveryTags.length === 2) {
          for (const deliveryTag of this.deliveryTags) m.send(1, { name: "basic.ack", classId: 60, methodId: 80, deliveryTag, multiple: false });
          m.call(1, { name: "basic.cancel", classId: 60, methodId: 30, consumerTag: CONSUMER_TAG, noWait: false });
        }
        return;
      case "channelClosed":
        if (e.channel === 2 && e.reason.initiator === "broker") {
          m.call(1, { name: "queue.delete", classId: 50, methodId: 40, queue: QUEUE, ifUnused: false, ifEmpty: false, noWait: false });
        } else if (e.channel === 1 && e.reason.initiator === "client") {
          m.close();
        }
        return;
      default:
        return;
    }
  }

  private onReply(m: ConnectionMachine, channel: number, name: string): void {
    switch (`${channel} ${name}`) {
      case "1 channel.open-ok":
        m.call(1, declare(false));
        return;
      case "1 queue.declare-ok":
        m.call(1, { name: "confirm.select", classId: 85, methodId: 10, noWait: false });
        return;
      case "1 confirm.select-ok":
        for (const p of PUBLISHES) m.publish(1, p.exchange, p.routingKey, p.body, p.properties, p.mandatory);
        return;
      case "1 basic.qos-ok":
        m.call(1, {
          name: "basic.consume",
          classId: 60,
          methodId: 20,
          queue: QUEUE,
          consumerTag: CONSUMER_TAG,
          noLocal: false,
          noAck: false,
          exclusive: false,
          noWait: false,
          arguments: {},
        });
        return;
      case "1 basic.cancel-ok":
        m.openChannel(); // channel 2
        return;
      case "2 channel.open-ok":
        // The queue exists as non-durable: redeclaring it durable is a 406 PRECONDITION_FAILED channel error.
        m.call(2, declare(true));
        return;
      case "1 queue.delete-ok":
        m.closeChannel(1);
        return;
    }
  }
}

function declare(durable: boolean) {
  return {
    name: "queue.declare",
    classId: 50,
    methodId: 10,
    queue: QUEUE,
    passive: false,
    durable,
    exclusive: false,
    autoDelete: false,
    noWait: false,
    arguments: {},
  } as const;
}

// ---------------------------------------------------------------------------------------------------------
// The event log

/** One line per event, e.g. `publishConfirmed 1 seq=3 ack returned=312`, `channelClosed 2 broker 406 50.10 "…"`. */
export function formatEvent(e: MachineEvent): string {
  switch (e.type) {
    case "handshakeDone": {
      const p = e.serverProperties;
      return `handshakeDone channelMax=${e.channelMax} frameMax=${e.frameMax} heartbeat=${e.heartbeat} server=${show(p["product"])}/${show(p["version"])}`;
    }
    case "reply": {
      const { name: _n, classId: _c, methodId: _m, ...fields } = e.method;
      const rest = Object.keys(fields).length > 0 ? ` ${show(fields as FieldTable)}` : "";
      return `reply ${e.channel} #${e.requestId} ${e.method.name}${rest}${e.message ? ` ${showMessage(e.message)}` : ""}`;
    }
    case "requestFailed":
      return `requestFailed ${e.channel} #${e.requestId} ${showReason(e.reason)}`;
    case "delivery":
      return `delivery ${e.channel} ctag=${e.consumerTag} tag=${e.deliveryTag} redelivered=${e.redelivered} exchange=${show(e.exchange)} rk=${show(e.routingKey)} ${showMessage(e.message)}`;
    case "return":
      return `return ${e.channel} ${e.replyCode} ${e.replyText} exchange=${show(e.exchange)} rk=${show(e.routingKey)} seq=${e.publishSeq ?? "none"} ${showMessage(e.message)}`;
    case "publishConfirmed":
      return `publishConfirmed ${e.channel} seq=${e.seq} ${e.ack ? "ack" : "nack"}${e.returned ? ` returned=${e.returned.replyCode}` : ""}`;
    case "publishFailed":
      return `publishFailed ${e.channel} seq=${e.seq} ${showReason(e.reason)}`;
    case "consumerCancelled":
      return `consumerCancelled ${e.channel} ctag=${e.consumerTag}`;
    case "channelFlow":
      return `channelFlow ${e.channel} active=${e.active}`;
    case "channelClosed":
      return `channelClosed ${e.channel} ${showReason(e.reason)}`;
    case "blocked":
      return `blocked ${show(e.reason)}`;
    case "unblocked":
      return "unblocked";
    case "connectionClosed":
      return `connectionClosed ${showReason(e.reason)}`;
    default: {
      const never: never = e;
      return `unknown ${show(never as unknown as FieldValue)}`;
    }
  }
}

function showReason(r: CloseReason): string {
  return `${r.initiator} ${r.replyCode} ${r.classId}.${r.methodId} ${show(r.replyText)}`;
}

function showMessage(msg: Content): string {
  return `body=${show(new TextDecoder().decode(msg.body))} props=${show(msg.properties as FieldTable)}`;
}

/** A compact, deterministic rendering of a decoded value (JSON-like, with the types JSON lacks spelled out). */
export function show(v: FieldValue): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (v instanceof Uint8Array) return `x"${Array.from(v, (b) => b.toString(16).padStart(2, "0")).join("")}"`;
  if (v instanceof Date) return `T(${v.toISOString()})`;
  if (Array.isArray(v)) return `[${v.map(show).join(",")}]`;
  if (v instanceof Decimal) return `D(${v.value}e-${v.scale})`;
  if (v instanceof TypedField) return `${v.type}(${show(v.value)})`;
  const entries = Object.entries(v as FieldTable).filter(([, x]) => x !== undefined);
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${show(x)}`).join(",")}}`;
}
