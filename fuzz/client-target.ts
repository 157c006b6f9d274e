/**
 * Fuzz target for the whole client over real sockets: a hostile broker on 127.0.0.1 (node:net, port 0)
 * completes a valid handshake, then — while a client workload runs (channels, declares, consumers with and
 * without signals that abort at random points, publishes with confirms, basicGet, acks, closes) — answers
 * some requests properly and sends seeded chaos: valid frames in the wrong state, wrong channels, truncated
 * and mutated frames, content declaring huge bodies, channel.close / connection.close at random points,
 * closes in the middle of a read, random bytes, and the socket destroyed mid-frame.
 *
 * Half the runs connect with recovery on (a fast reconnect policy, a short wait timeout, either publish
 * policy): the server then serves one to three connections in a row, each with a hostile broker of its own,
 * and resets every connection after those, so the client recovers, replays into a hostile broker again, and
 * finally gives up — every promise must settle all the same.
 *
 * Invariants, per run:
 * - no uncaught exception and no unhandled rejection in this process (process handlers count them);
 * - every promise the workload created settles, and the connection reports itself closed, within
 *   SETTLE_MS after the broker's socket closed;
 * - memory stays bounded: array buffers never exceed MEMORY_SPIKE_MB during a run, and the heap after GC
 *   does not grow across runs by more than MEMORY_GROWTH_MB.
 *
 * Run #i of seed S seeds its broker and its workload from (S, i), so `--seed S --input i` replays its
 * decisions; the interleaving with the socket is real, so a replay is likely but not certain to fail the
 * same way. Every failing run is saved as fuzz/crashes/client-<seed>-<index>.json with what the broker did.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as v8 from "node:v8";
import * as vm from "node:vm";
import type { Frame } from "../src/codec/amqp/frames.ts";
import type { Method } from "../src/codec/amqp/methods.generated.ts";
import { type Channel, connect, type Connection, type Consumer, isWarrenError, type Message } from "../src/adapters/node.ts";
import { bodyFrame, contentFrames, headerFrame, heartbeatFrame, method, methodFrame } from "../test/support/fake-broker.ts";
import { FakePeer } from "../test/support/fake-peer.ts";
import { concat } from "../test/support/bytes.ts";
import { hexOf, mutate } from "./corpus.ts";
import { inputSeed, Rng } from "./rng.ts";

/** After the broker's socket closed, everything must have settled within this. */
const SETTLE_MS = 2_000;
/** Array-buffer memory a run may reach: a body is allocated as it arrives, not as its header declares. */
const MEMORY_SPIKE_MB = 96;
/** Heap + array buffers after GC may grow this much from the first tenth of the runs to the end. */
const MEMORY_GROWTH_MB = 64;
/** How many times `--input I` repeats run I until it fails. */
const REPLAY_ATTEMPTS = 20;
/** Bytes of broker output a crash record keeps. */
const KEEP_BYTES = 16 * 1024;

export interface ClientFailure {
  index: number;
  kind: "uncaught" | "unhandled" | "unsettled" | "memory";
  message: string;
}

export interface ClientStats {
  runs: number;
  uncaught: number;
  unhandled: number;
  unsettled: number;
  memory: number;
  maxHeapMb: number;
  maxMs: number;
  /** Rejections that were not a WarrenError (a TypeError from inside the client, say): shown, not judged. */
  untyped: Map<string, number>;
  failures: ClientFailure[];
}

const crashDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "crashes");
const mb = (n: number) => n / (1024 * 1024);

function gcFunction(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  try {
    v8.setFlagsFromString("--expose-gc");
    return vm.runInNewContext("gc") as () => void;
  } catch {
    return () => undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The hostile broker: one per connection

interface BrokerLog {
  actions: string[];
  bytes: Uint8Array[];
  kept: number;
}

class HostileBroker {
  readonly #socket: net.Socket;
  readonly #r: Rng;
  readonly #peer: FakePeer;
  readonly #log: BrokerLog;
  #done = false;
  #ticks = 0;
  readonly #maxTicks: number;
  readonly #channels = new Set<number>();
  readonly #confirm = new Map<number, number>();
  readonly #tags: string[] = [];
  #deliveryTag = 1;
  #tagSeq = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(socket: net.Socket, r: Rng, log: BrokerLog) {
    this.#socket = socket;
    this.#r = r;
    this.#log = log;
    this.#maxTicks = r.range(3, 40);
    this.#peer = new FakePeer({
      frameMax: r.chance(0.3) ? 4096 : 131072,
      heartbeat: 0,
      onFrame: (f) => this.#onClientFrame(f),
      onOpen: () => this.#schedule(),
    });
    this.#peer.attach({ deliver: (bytes) => this.#write(bytes), close: () => this.#finish("peer closed") });
    socket.on("data", (b: Buffer) => {
      if (!this.#done) this.#peer.receive(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    });
    socket.on("error", () => undefined);
    socket.on("close", () => this.#stop());
  }

  #write(bytes: Uint8Array): void {
    if (this.#done || this.#socket.destroyed) return;
    const log = this.#log;
    if (log.kept < KEEP_BYTES) {
      log.bytes.push(bytes.slice(0, KEEP_BYTES - log.kept));
      log.kept += Math.min(bytes.length, KEEP_BYTES - log.kept);
    }
    this.#socket.write(bytes);
  }

  #act(name: string, bytes: Uint8Array): void {
    this.#log.actions.push(name);
    this.#write(bytes);
  }

  #stop(): void {
    this.#done = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #finish(how: string): void {
    if (this.#done) return;
    this.#log.actions.push(`finish: ${how}`);
    this.#stop();
    this.#socket.end();
    // A client that never answers must not hold the run: the socket goes after a short grace.
    setTimeout(() => this.#socket.destroy(), 50).unref();
  }

  #channel(): number {
    const r = this.#r;
    const known = [...this.#channels];
    if (known.length > 0 && r.chance(0.75)) return r.pick(known);
    return r.pick([0, 1, 2, 3, 7, 65535]);
  }

  /** Sends `bytes` now, after a turn, or after a few ms; sometimes split across writes. */
  #sendLater(name: string, bytes: Uint8Array): void {
    const r = this.#r;
    const send = () => {
      if (this.#done) return;
      if (r.chance(0.15) && bytes.length > 1) {
        const cut = r.range(1, bytes.length - 1);
        this.#act(`${name} (split at ${cut})`, bytes.subarray(0, cut));
        setImmediate(() => this.#act(`${name} (rest)`, bytes.subarray(cut)));
      } else this.#act(name, bytes);
    };
    const how = r.int(3);
    if (how === 0) send();
    else if (how === 1) setImmediate(send);
    else setTimeout(send, r.int(3));
  }

  /** A reply to what the client sent, mostly right, sometimes wrong, sometimes with chaos in the same read. */
  #onClientFrame(f: Frame): void {
    if (this.#done || f.type !== 1) return;
    this.#learn(f);
    const r = this.#r;
    const ch = f.channel;
    const m = f.method;
    if (m.name === "channel.open-ok" || m.name === "channel.close-ok") return;
    if (r.chance(0.12)) return; // never answered
    let reply: Uint8Array | undefined;
    switch (m.name) {
      case "queue.declare":
        reply = methodFrame(ch, method("queue.declare-ok", { queue: m.queue || `amq.gen-${r.int(1000)}`, messageCount: r.int(5), consumerCount: 0 }));
        break;
      case "basic.qos":
        reply = methodFrame(ch, method("basic.qos-ok"));
        break;
      case "confirm.select":
        this.#confirm.set(ch, 0);
        reply = methodFrame(ch, method("confirm.select-ok"));
        break;
      case "basic.consume": {
        const tag = m.consumerTag || `amq.ctag-${++this.#tagSeq}`;
        this.#tags.push(tag);
        const parts = [methodFrame(ch, method("basic.consume-ok", { consumerTag: tag }))];
        for (let i = r.int(4); i > 0; i--) parts.push(this.#delivery(ch, tag));
        reply = concat(parts);
        break;
      }
      case "basic.cancel":
        if (!m.noWait) reply = methodFrame(ch, method("basic.cancel-ok", { consumerTag: m.consumerTag }));
        break;
      case "basic.get":
        reply = r.chance(0.5)
          ? contentFrames(ch, method("basic.get-ok", { deliveryTag: this.#deliveryTag++, routingKey: "q", messageCount: r.int(3) }), r.bytes(r.int(64)), {}, this.#peer.frameMax)
          : methodFrame(ch, method("basic.get-empty"));
        break;
      case "basic.publish": {
        const n = this.#confirm.get(ch);
        if (n === undefined) return;
        this.#confirm.set(ch, n + 1);
        const multiple = r.chance(0.2);
        reply = methodFrame(ch, method(r.chance(0.9) ? "basic.ack" : "basic.nack", { deliveryTag: n + 1, multiple }));
        break;
      }
      default:
        return;
    }
    if (reply === undefined) return;
    if (r.chance(0.2)) reply = concat([reply, this.#chaos()]);
    this.#sendLater(`reply to ${m.name}`, reply);
  }

  #delivery(ch: number, tag: string): Uint8Array {
    const r = this.#r;
    return contentFrames(
      ch,
      method("basic.deliver", { consumerTag: tag, deliveryTag: this.#deliveryTag++, redelivered: r.chance(0.3), exchange: "", routingKey: "q" }),
      r.bytes(r.int(200)),
      r.chance(0.2) ? { contentType: "text/plain", headers: { n: r.int(100) } } : {},
      this.#peer.frameMax,
    );
  }

  #schedule(): void {
    if (this.#done) return;
    const r = this.#r;
    this.#timer = setTimeout(() => this.#tick(), r.int(3));
  }

  #tick(): void {
    this.#timer = undefined;
    if (this.#done) return;
    if (++this.#ticks >= this.#maxTicks) {
      this.#end();
      return;
    }
    const r = this.#r;
    const kind = r.weighted([30, 10, 8, 6, 6, 5, 4, 3, 2]);
    switch (kind) {
      case 0:
        this.#act("chaos", this.#chaos());
        break;
      case 1: {
        // deliveries for known consumers, in one read
        const parts: Uint8Array[] = [];
        for (let i = r.range(1, 6); i > 0; i--) parts.push(this.#delivery(this.#channel(), this.#tags.length > 0 && r.chance(0.8) ? r.pick(this.#tags) : `ghost-${r.int(9)}`));
        this.#act("deliveries", concat(parts));
        break;
      }
      case 2:
        this.#act("mutated", mutate(r, concat([this.#validFrame(), this.#validFrame()]), () => this.#validFrame(), 4));
        break;
      case 3: {
        // a truncated frame followed by a valid one: the stream loses its framing
        const f = this.#validFrame();
        this.#act("truncated", concat([f.subarray(0, r.int(f.length)), this.#validFrame()]));
        break;
      }
      case 4:
        this.#act("huge content", this.#hugeContent());
        break;
      case 5:
        this.#act("channel.close", methodFrame(this.#channel(), method("channel.close", { replyCode: r.pick([200, 311, 403, 404, 405, 406, 504, 505]), replyText: "fuzz", failingClassId: r.pick([0, 50, 60]), failingMethodId: r.pick([0, 10, 40]) })));
        break;
      case 6:
        this.#act("random bytes", r.bytes(r.range(1, 64)));
        break;
      case 7:
        // connection.close in the middle of a read: a reply and a close together
        this.#act("reply + connection.close", concat([this.#validFrame(), methodFrame(0, method("connection.close", { replyCode: r.pick([320, 501, 505, 541]), replyText: "fuzz" }))]));
        break;
      default: {
        // the socket destroyed mid-frame
        const f = this.#validFrame();
        this.#act("half a frame, then destroy", f.subarray(0, r.range(1, Math.max(1, f.length - 1))));
        this.#log.actions.push("destroy");
        this.#stop();
        setImmediate(() => this.#socket.destroy());
        return;
      }
    }
    if (!this.#done) this.#schedule();
  }

  #end(): void {
    const r = this.#r;
    switch (r.int(4)) {
      case 0:
        this.#act("connection.close", methodFrame(0, method("connection.close", { replyCode: 320, replyText: "CONNECTION_FORCED - fuzz" })));
        this.#finish("after connection.close");
        return;
      case 1:
        this.#finish("end");
        return;
      case 2:
        this.#log.actions.push("destroy");
        this.#stop();
        this.#socket.destroy();
        return;
      default:
        // Only the connection.close, and the socket left open: the client must answer and close it.
        this.#act("connection.close, socket left to the client", methodFrame(0, method("connection.close", { replyCode: 320, replyText: "CONNECTION_FORCED - fuzz" })));
        this.#stop();
        setTimeout(() => this.#socket.destroy(), 200).unref();
        return;
    }
  }

  /** Something hostile for one read: mostly valid frames in the wrong state, sometimes worse. */
  #chaos(): Uint8Array {
    const r = this.#r;
    switch (r.weighted([60, 10, 8, 8, 6])) {
      case 0: {
        const parts: Uint8Array[] = [];
        for (let i = r.range(1, 3); i > 0; i--) parts.push(this.#validFrame());
        return concat(parts);
      }
      case 1:
        return mutate(r, this.#validFrame(), () => this.#validFrame(), 3);
      case 2: {
        const f = this.#validFrame();
        return f.subarray(0, r.int(f.length));
      }
      case 3:
        return this.#hugeContent();
      default:
        return methodFrame(this.#channel(), method("channel.close", { replyCode: r.pick([311, 404, 406, 505]), replyText: "fuzz" }));
    }
  }

  /** A broker frame that is valid on its own, in whatever state the connection is. */
  #validFrame(): Uint8Array {
    const r = this.#r;
    const ch = this.#channel();
    const tag = this.#tags.length > 0 && r.chance(0.7) ? r.pick(this.#tags) : `ghost-${r.int(9)}`;
    const methods: (() => Method)[] = [
      () => method("basic.consume-ok", { consumerTag: tag }),
      () => method("queue.declare-ok", { queue: "q" }),
      () => method("basic.qos-ok"),
      () => method("confirm.select-ok"),
      () => method("basic.cancel-ok", { consumerTag: tag }),
      () => method("basic.cancel", { consumerTag: tag, noWait: r.chance(0.5) }),
      () => method("basic.ack", { deliveryTag: r.int(20), multiple: r.chance(0.3) }),
      () => method("basic.nack", { deliveryTag: r.int(20), multiple: r.chance(0.3) }),
      () => method("basic.get-empty"),
      () => method("channel.open-ok"),
      () => method("channel.close-ok"),
      () => method("channel.flow", { active: r.chance(0.5) }),
      () => method("channel.flow-ok", { active: r.chance(0.5) }),
      () => method("connection.blocked", { reason: "fuzz" }),
      () => method("connection.unblocked"),
      () => method("connection.tune", { channelMax: 10, frameMax: 4096, heartbeat: 0 }),
      () => method("connection.open-ok"),
      () => method("connection.close-ok"),
      () => method("tx.select-ok"),
    ];
    switch (r.int(6)) {
      case 0:
        return this.#delivery(ch, tag);
      case 1:
        return contentFrames(ch, method("basic.return", { replyCode: 312, replyText: "NO_ROUTE", exchange: "", routingKey: "q" }), r.bytes(r.int(32)), {}, this.#peer.frameMax);
      case 2:
        return contentFrames(ch, method("basic.get-ok", { deliveryTag: this.#deliveryTag++, routingKey: "q" }), r.bytes(r.int(32)), {}, this.#peer.frameMax);
      case 3:
        return r.chance(0.5) ? heartbeatFrame() : r.chance(0.5) ? headerFrame(ch, r.int(100)) : bodyFrame(ch, r.bytes(r.int(20)));
      default:
        return methodFrame(ch, r.pick(methods)());
    }
  }

  /** A delivery (or get-ok/return) whose header declares a huge body, with part of it or none. */
  #hugeContent(): Uint8Array {
    const r = this.#r;
    const ch = this.#channel();
    const tag = this.#tags.length > 0 ? r.pick(this.#tags) : "ghost";
    const size = r.pick<number | bigint>([64 * 1024 * 1024, 127 * 1024 * 1024, 2 ** 31, 2 ** 40, 2n ** 63n, 2n ** 64n - 1n]);
    const m = r.chance(0.7)
      ? method("basic.deliver", { consumerTag: tag, deliveryTag: this.#deliveryTag++, exchange: "", routingKey: "q" })
      : method("basic.get-ok", { deliveryTag: this.#deliveryTag++, routingKey: "q" });
    const parts = [methodFrame(ch, m), headerFrame(ch, size)];
    if (r.chance(0.5)) parts.push(bodyFrame(ch, r.bytes(r.int(1000))));
    return concat(parts);
  }

  // channel.open from the client is auto-answered by the peer, so the broker learns channels from the frames
  // that the client sends on them afterwards.
  #learn(f: Frame): void {
    if (f.type === 1 && f.channel !== 0) this.#channels.add(f.channel);
  }
}

// ---------------------------------------------------------------------------------------------------------
// The workload

class Workload {
  readonly #r: Rng;
  readonly pending = new Map<number, string>();
  readonly untyped: Map<string, number>;
  #next = 0;
  conn: Connection | undefined;
  readonly #channels: Channel[] = [];
  #stopped = false;

  readonly #recovery: boolean;

  constructor(r: Rng, untyped: Map<string, number>, recovery: boolean) {
    this.#r = r;
    this.untyped = untyped;
    this.#recovery = recovery;
  }

  /** Recovery options for a run with recovery on: fast, bounded, and either publish policy. */
  #recoveryOptions(): object | false {
    if (!this.#recovery) return false;
    const r = this.#r;
    return { reconnect: { initialDelayMs: 1, maxDelayMs: 5, maxAttempts: r.range(1, 4) }, waitTimeout: r.range(20, 500), unconfirmed: r.chance(0.5) ? "resend" : "reject" };
  }

  /** Tracks a promise the application created: it must settle. */
  track<T>(label: string, p: Promise<T>): Promise<T | undefined> {
    const id = this.#next++;
    this.pending.set(id, label);
    return p.then(
      (v) => {
        this.pending.delete(id);
        return v;
      },
      (e: unknown) => {
        this.pending.delete(id);
        if (!isWarrenError(e)) {
          const key = `${label}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`.slice(0, 160);
          this.untyped.set(key, (this.untyped.get(key) ?? 0) + 1);
        }
        return undefined;
      },
    );
  }

  /** Runs a synchronous API call; a throw must be a WarrenError (counted otherwise). */
  #sync(label: string, f: () => void): void {
    try {
      f();
    } catch (e) {
      if (!isWarrenError(e)) {
        const key = `${label} threw: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`.slice(0, 160);
        this.untyped.set(key, (this.untyped.get(key) ?? 0) + 1);
      }
    }
  }

  #signal(): AbortSignal | undefined {
    const r = this.#r;
    if (!r.chance(0.35)) return undefined;
    const ac = new AbortController();
    switch (r.int(4)) {
      case 0:
        ac.abort();
        break;
      case 1:
        queueMicrotask(() => ac.abort());
        break;
      case 2:
        setImmediate(() => ac.abort());
        break;
      default:
        setTimeout(() => ac.abort(), r.int(5));
    }
    return ac.signal;
  }

  async run(port: number): Promise<void> {
    const r = this.#r;
    const logger = { warn: () => undefined };
    const conn = await this.track(
      "connect",
      connect({ hostname: "127.0.0.1", port, heartbeat: 0, connectionTimeout: 1500, logger, recovery: this.#recoveryOptions() } as Parameters<typeof connect>[0]),
    );
    if (!conn) return;
    this.conn = conn;
    conn.on("close", () => (this.#stopped = true));
    conn.on("recoveryFailed", () => undefined);
    const ops = r.range(3, 30);
    for (let i = 0; i < ops && !this.#stopped && !conn.closed; i++) {
      this.#step(conn);
      await new Promise<void>((resolve) => (r.chance(0.5) ? setImmediate(resolve) : setTimeout(resolve, r.int(3))));
    }
    if (!conn.closed && r.chance(0.5)) void this.track("connection.close", conn.close());
  }

  #step(conn: Connection): void {
    const r = this.#r;
    const open = this.#channels.filter((c) => !c.closed);
    if (open.length === 0 || r.chance(0.1)) {
      void this.track("openChannel", conn.openChannel({ signal: this.#signal() })).then((ch) => {
        if (ch) this.#channels.push(ch);
      });
      return;
    }
    const ch = r.pick(open);
    switch (r.int(10)) {
      case 0:
        void this.track("queueDeclare", ch.queueDeclare(r.chance(0.5) ? "" : "q", { signal: this.#signal() }));
        return;
      case 1:
        void this.track("basicQos", ch.basicQos(r.int(10), { signal: this.#signal() }));
        return;
      case 2:
        void this.track("confirmSelect", ch.confirmSelect({ signal: this.#signal() }));
        return;
      case 3:
      case 4:
        for (let i = r.range(1, 4); i > 0; i--) void this.track("basicPublish", ch.basicPublish("", "q", r.bytes(r.int(100)), {}, { signal: this.#signal() }));
        return;
      case 5:
        void this.track("basicGet", ch.basicGet("q", { signal: this.#signal() })).then((m) => {
          if (m) this.#settle(m);
        });
        return;
      case 6:
        this.#consume(ch, true);
        return;
      case 7:
        this.#consume(ch, false);
        return;
      case 8:
        void this.track("channel.close", ch.close());
        return;
      default:
        if (r.chance(0.3)) void this.track("connection.close", conn.close());
        else void this.track("queueDelete", ch.queueDelete("q", { signal: this.#signal() }));
        return;
    }
  }

  #settle(m: Message): void {
    const r = this.#r;
    this.#sync("settle", () => {
      const k = r.int(4);
      if (k === 0) m.ack();
      else if (k === 1) m.nack(r.chance(0.5));
      else if (k === 2) m.reject(r.chance(0.5));
    });
  }

  #consume(ch: Channel, iterate: boolean): void {
    const r = this.#r;
    const onMessage = iterate
      ? undefined
      : (m: Message) => {
          if (r.chance(0.15)) throw new Error("fuzz handler failure");
          this.#settle(m);
        };
    void this.track("basicConsume", ch.basicConsume("q", { signal: this.#signal(), noAck: r.chance(0.3), onError: () => undefined }, onMessage)).then((c?: Consumer) => {
      if (!c) return;
      c.on("error", () => undefined);
      if (iterate) void this.track("consumer loop", this.#loop(c));
      if (r.chance(0.2)) setTimeout(() => void this.track("consumer.cancel", c.cancel()), r.int(5));
    });
  }

  async #loop(c: Consumer): Promise<void> {
    const r = this.#r;
    let n = 0;
    for await (const m of c) {
      this.#settle(m);
      if (++n > 1000 || r.chance(0.05)) break;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Runs

async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return check();
}

/**
 * Runs `runs` client runs under `seed` (only run `only` when given). Sequential: an uncaught exception is
 * charged to the run in progress.
 */
export async function fuzzClient(runs: number, seed: number, only?: number): Promise<ClientStats & { logs: Map<number, BrokerLog> }> {
  const stats: ClientStats & { logs: Map<number, BrokerLog> } = {
    runs: 0,
    uncaught: 0,
    unhandled: 0,
    unsettled: 0,
    memory: 0,
    maxHeapMb: 0,
    maxMs: 0,
    untyped: new Map(),
    failures: [],
    logs: new Map(),
  };
  const gc = gcFunction();
  let current = -1;
  const failed = new Set<number>();
  const memoryFailed = new Set<number>();
  const fail = (kind: ClientFailure["kind"], message: string) => {
    if (kind === "memory") {
      // Once per run: the sampler would otherwise report the same allocation every 5 ms.
      if (memoryFailed.has(current)) return;
      memoryFailed.add(current);
    }
    if (kind === "uncaught") stats.uncaught++;
    else if (kind === "unhandled") stats.unhandled++;
    else if (kind === "unsettled") stats.unsettled++;
    else stats.memory++;
    failed.add(current);
    if (stats.failures.length < 200) stats.failures.push({ index: current, kind, message: message.slice(0, 400) });
  };
  const describe = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}\n${(e.stack ?? "").split("\n").slice(1, 6).join("\n")}` : String(e));
  const onException = (e: unknown) => fail("uncaught", describe(e));
  const onRejection = (e: unknown) => fail("unhandled", describe(e));
  process.on("uncaughtException", onException);
  process.on("unhandledRejection", onRejection);

  let nextBroker: ((s: net.Socket) => void) | undefined;
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    if (nextBroker) nextBroker(socket);
    else socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;

  let baseline = 0;
  const sampleMemory = () => {
    const u = process.memoryUsage();
    const total = mb(u.heapUsed + u.arrayBuffers);
    if (total > stats.maxHeapMb) stats.maxHeapMb = total;
    if (mb(u.arrayBuffers) > MEMORY_SPIKE_MB) fail("memory", `array buffers at ${mb(u.arrayBuffers).toFixed(0)} MB during the run`);
  };

  try {
    // A replay (`only`) repeats its run until it fails, at most REPLAY_ATTEMPTS times: the socket's timing
    // is real, so one attempt may interleave differently from the run that failed.
    const order: number[] = [];
    if (only !== undefined) for (let k = 0; k < REPLAY_ATTEMPTS; k++) order.push(only);
    else for (let i = 0; i < runs; i++) order.push(i);
    const warmup = Math.max(1, Math.floor(order.length / 10));
    for (const [n, i] of order.entries()) {
      if (only !== undefined && failed.has(i)) break;
      current = i;
      const s = inputSeed(seed, i);
      const log: BrokerLog = { actions: [], bytes: [], kept: 0 };
      const brokerRng = new Rng(s);
      const recovery = new Rng(s ^ 0x2545f491).chance(0.5);
      const workload = new Workload(new Rng(s ^ 0x5bd1e995), stats.untyped, recovery);
      // Connections this run serves (more with recovery: the client reconnects); later ones are reset at once.
      const sessions = recovery ? brokerRng.range(1, 3) : 1;
      let served = 0;
      const open = new Set<net.Socket>();
      nextBroker = (socket) => {
        if (++served >= sessions) nextBroker = undefined;
        open.add(socket);
        new HostileBroker(socket, brokerRng, log); // kept alive by the socket's listeners
        socket.on("close", () => open.delete(socket));
      };
      if (recovery) log.actions.push(`recovery on, ${sessions} connection(s) served`);
      const ended = () => open.size === 0 && (served >= sessions || workload.conn === undefined || workload.conn.closed);
      // What an earlier run left for the collector must not be charged to this one.
      if (mb(process.memoryUsage().arrayBuffers) > MEMORY_SPIKE_MB / 2) gc();
      const started = performance.now();
      const sampler = setInterval(sampleMemory, 5);
      await workload.run(port).catch((e: unknown) => fail("uncaught", `workload threw: ${describe(e)}`));
      // The brokers end every run by themselves (their ticks are bounded); wait for that, bounded too.
      const closedInTime = await waitFor(ended, 5_000);
      if (!closedInTime) {
        log.actions.push("sockets still open after 5 s: destroyed by the runner");
        for (const socket of open) socket.destroy();
        nextBroker = undefined;
        await waitFor(() => open.size === 0, 500);
      }
      nextBroker = undefined;
      const settled = await waitFor(() => workload.pending.size === 0 && (workload.conn === undefined || workload.conn.closed), SETTLE_MS);
      clearInterval(sampler);
      sampleMemory();
      if (!settled) {
        const what = [...new Set(workload.pending.values())].join(", ");
        fail("unsettled", `${workload.pending.size} promises unsettled ${SETTLE_MS} ms after the socket closed (${what || "none"})${workload.conn && !workload.conn.closed ? "; connection not closed" : ""}`);
      }
      // Late uncaught exceptions belong to this run: give them a turn to show up.
      await new Promise((resolve) => setImmediate(resolve));
      stats.maxMs = Math.max(stats.maxMs, performance.now() - started - (settled ? 0 : SETTLE_MS));
      stats.runs++;
      if (failed.has(i)) stats.logs.set(i, log);
      if (n === warmup) {
        gc();
        const u = process.memoryUsage();
        baseline = mb(u.heapUsed + u.arrayBuffers);
      }
    }
    gc();
    const u = process.memoryUsage();
    const end = mb(u.heapUsed + u.arrayBuffers);
    if (baseline > 0 && end - baseline > MEMORY_GROWTH_MB) {
      fail("memory", `heap + array buffers after GC grew from ${baseline.toFixed(1)} MB to ${end.toFixed(1)} MB across the runs`);
    }
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    process.off("uncaughtException", onException);
    process.off("unhandledRejection", onRejection);
  }
  return stats;
}

/** What run.ts prints and saves for the client target; returns the number of failing runs. */
export async function runClientTarget(runs: number, seed: number, only?: number): Promise<{ runs: number; failed: number; maxMs: number }> {
  const s = await fuzzClient(runs, seed, only);
  console.log(`client: ${s.runs} runs, ${s.uncaught} uncaught, ${s.unsettled} unsettled, max heap ${s.maxHeapMb.toFixed(0)} MB`);
  const untyped = [...s.untyped.entries()].sort((a, b) => b[1] - a[1]);
  console.log(
    `  client: max ${s.maxMs.toFixed(0)} ms per run, ${s.unhandled} unhandled rejections, ${s.memory} memory failures, ${untyped.reduce((n, [, c]) => n + c, 0)} rejections that are not WarrenErrors`,
  );
  for (const [what, n] of untyped.slice(0, 5)) console.log(`    not a WarrenError ×${n}: ${what}`);
  // Distinct failures: the message's first line and the first frames of its stack, without file positions.
  const signatures = new Map<string, { count: number; first: number }>();
  for (const f of s.failures) {
    const sig = f.message.split("\n").slice(0, 4).map((l) => l.trim().replace(/\(.*\)$/, "").replace(/ \d+(\.\d+)? MB/g, " N MB").replace(/^\d+ promises/, "N promises")).join(" < ");
    const e = signatures.get(sig);
    if (e) e.count++;
    else signatures.set(sig, { count: 1, first: f.index });
  }
  for (const [sig, { count, first }] of [...signatures].sort((a, b) => b[1].count - a[1].count).slice(0, 12)) {
    console.log(`  ×${count} (first run #${first}): ${sig}`);
  }
  const byRun = new Map<number, ClientFailure[]>();
  for (const f of s.failures) byRun.set(f.index, [...(byRun.get(f.index) ?? []), f]);
  let shown = 0;
  for (const [index, failures] of byRun) {
    const log = s.logs.get(index);
    const name = `client-${seed}-${index}.json`;
    mkdirSync(crashDir, { recursive: true });
    const file = path.join(crashDir, name);
    writeFileSync(
      file,
      JSON.stringify({ target: "client", seed, index, replay: `npm run fuzz -- --target client --seed ${seed} --input ${index}`, failures, actions: log?.actions ?? [], brokerBytes: log ? hexOf(concat(log.bytes)) : "" }, null, 2) + "\n",
    );
    if (shown++ < 5) {
      console.log(`  FAIL run #${index} (${failures.map((f) => f.kind).join(", ")}) saved to ${path.relative(process.cwd(), file)}`);
      console.log(`    ${failures[0]!.message.split("\n").join("\n    ")}`);
    }
  }
  return { runs: s.runs, failed: byRun.size, maxMs: s.maxMs };
}
