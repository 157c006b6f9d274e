/**
 * A fake AMQP 0-9-1 broker, just enough of RabbitMQ for the benchmark scenarios, that costs almost nothing:
 * it answers the handshake and synchronous methods, counts publishes (reading frame headers only), confirms
 * them, acks nothing it does not have to, and serves pre-encoded deliveries within the prefetch window.
 *
 * Two uses:
 *   - in-process, under bench/warren-sansio.mjs: warren's client with no socket at all;
 *   - over TCP, for any client (`node bench/fake-broker.mjs --port 5673 [--chunk B] [--ack-every K]`, then
 *     `AMQP_URL=amqp://guest:guest@127.0.0.1:5673/ node bench/client-worker.mjs …`): every client with real
 *     sockets but without RabbitMQ's own CPU use on this machine's two CPUs, which otherwise slows every
 *     client down (the broker and the client share caches and cores).
 *
 * What it does per connection:
 *   - handshake: connection.start (PLAIN), tune (frame_max 131072, heartbeat 0), open-ok;
 *   - every synchronous method gets its first `-ok` reply (channel.open-ok, basic.qos-ok, …);
 *   - basic.publish: counted; in confirm mode one basic.ack(multiple) per read that completed publishes;
 *   - queue.declare: `messageCount` is the publishes counted so far — or, for a queue named
 *     `fill<N>x<SIZE>…`, N messages of SIZE bytes minus those delivered (the consume scenario's prefill);
 *   - basic.consume on such a queue: deliveries in RabbitMQ's frame layout, never more than the prefetch
 *     (basic.qos, default 1000) unacked, in writes of at most `chunk` bytes, one per event-loop turn;
 *   - basic.ack / nack / reject: the delivery tag read straight from the frame, multiple honoured.
 */
import { performance } from "node:perf_hooks";
import path from "node:path";

const DIST = process.env.WARREN_DIST ? path.resolve(process.env.WARREN_DIST) : new URL("../dist", import.meta.url).pathname;
const { Writer, encodeMethodFrame, encodeHeaderFrame, encodeBodyFrames, decodeFrame, METHODS } = await import(path.join(DIST, "codec", "index.js"));

const INFO = new Map(METHODS.map((m) => [m.name, m]));
const enc = new TextEncoder();
/** RabbitMQ's shape: "amq.ctag-" + 22 characters. */
export const CONSUMER_TAG = "amq.ctag-6Xj2pQe1bVd4nYk0fW8sLz";

/** A whole method from its name, every argument zero unless given (as test/support/fake-broker.ts does). */
export function method(name, fields = {}) {
  const info = INFO.get(name);
  const m = { name, classId: info.classId, methodId: info.methodId };
  for (const f of info.fields) {
    if (f.reserved) continue;
    m[f.name] = f.type === "bit" ? false : f.type === "shortstr" ? "" : f.type === "longstr" ? new Uint8Array(0) : f.type === "table" ? {} : 0;
  }
  return { ...m, ...fields };
}

export function frameBytes(channel, m) {
  const w = new Writer(512);
  encodeMethodFrame(w, channel, m);
  return w.finish().slice();
}

/** Pre-encodes `n` deliveries of `size` bytes (tags 1…n) and the offset where each one ends. */
export function encodeDeliveries(n, size, routingKey, channel = 1) {
  const w = new Writer(n * (size + 90 + routingKey.length));
  const ends = new Float64Array(n);
  const body = new Uint8Array(size).fill(0x78);
  for (let i = 0; i < n; i++) {
    encodeMethodFrame(w, channel, method("basic.deliver", { consumerTag: CONSUMER_TAG, deliveryTag: i + 1, redelivered: false, exchange: "", routingKey }));
    encodeHeaderFrame(w, channel, 60, size, {});
    encodeBodyFrames(w, channel, body, 131072);
    ends[i] = w.length;
  }
  return { bytes: w.finish(), ends };
}

const FILL = /^fill(\d+)x(\d+)/;

export class FakeBroker {
  /**
   * @param send   hands bytes to the client (a socket write, or the next turn's onData in-process)
   * @param chunk  largest delivery write
   * @param ackEvery  confirm in steps of this many publishes (each basic.ack its own send); 0: one per read
   */
  constructor(send, { chunk = 65536, ackEvery = 0 } = {}) {
    this.sendRaw = send;
    this.chunk = chunk;
    this.ackEvery = ackEvery;
    this.leftover = undefined; // a partial frame from the previous read
    this.first = true;
    this.confirming = false;
    this.published = 0;
    this.prefetch = 1000;
    this.acked = 0; // every tag ≤ acked is settled (multiple-aware; single acks assumed in order)
    this.acks = 0; // ack frames received
    this.queue = undefined; // { name, total, deliveries? }
    this.consumeChannel = 1;
    this.fed = 0;
    this.delivered = 0;
    this.feeding = false;
    this.brokerMs = 0; // time in this object's own code (for the in-process harness to subtract)
    this.writes = 0; // client writes seen
    this.reads = 0; // sends to the client
  }

  send(bytes) {
    this.reads++;
    this.sendRaw(bytes);
  }

  /** Bytes from the client, in any split. */
  input(b) {
    const t = performance.now();
    this.writes++;
    if (this.leftover) {
      const joined = new Uint8Array(this.leftover.length + b.length);
      joined.set(this.leftover);
      joined.set(b, this.leftover.length);
      b = joined;
      this.leftover = undefined;
    }
    let i = 0;
    if (this.first) {
      if (b.length < 8) {
        this.leftover = b;
        return;
      }
      this.first = false;
      i = 8; // the protocol header
      this.send(
        frameBytes(
          0,
          method("connection.start", {
            versionMajor: 0,
            versionMinor: 9,
            serverProperties: { product: "RabbitMQ", version: "3.10.0", capabilities: { publisher_confirms: true, "basic.nack": true, consumer_cancel_notify: true, "connection.blocked": true, per_consumer_qos: true } },
            mechanisms: enc.encode("PLAIN AMQPLAIN"),
            locales: enc.encode("en_US"),
          }),
        ),
      );
    }
    let newPublishes = 0;
    while (i + 7 <= b.length) {
      const type = b[i];
      const size = ((b[i + 3] << 24) >>> 0) + ((b[i + 4] << 16) | (b[i + 5] << 8) | b[i + 6]);
      if (i + size + 8 > b.length) break;
      if (type === 1) {
        const cls = (b[i + 7] << 8) | b[i + 8];
        const mth = (b[i + 9] << 8) | b[i + 10];
        if (cls === 60 && mth === 40) newPublishes++;
        else if (cls === 60 && (mth === 80 || mth === 120 || mth === 90)) {
          // basic.ack / nack / reject: the tag's low 32 bits, then the multiple bit (reject has none)
          const tag = ((b[i + 15] << 24) >>> 0) + ((b[i + 16] << 16) | (b[i + 17] << 8) | b[i + 18]);
          const multiple = mth !== 90 && (b[i + 19] & 1) === 1;
          this.acks++;
          if (multiple || tag > this.acked) this.acked = Math.max(this.acked, tag);
        } else this.onMethod((b[i + 1] << 8) | b[i + 2], decodeFrame(b.subarray(i, i + size + 8)).method);
      }
      i += size + 8;
    }
    if (i < b.length) this.leftover = b.slice(i);
    if (newPublishes > 0) {
      const from = this.published;
      this.published += newPublishes;
      if (this.confirming) {
        const step = this.ackEvery > 0 ? this.ackEvery : newPublishes;
        for (let tag = Math.min(from + step, this.published); ; tag = Math.min(tag + step, this.published)) {
          this.send(frameBytes(1, method("basic.ack", { deliveryTag: tag, multiple: true })));
          if (tag === this.published) break;
        }
      }
    }
    this.brokerMs += performance.now() - t;
    if (this.queue?.deliveries && !this.feeding) this.feed();
  }

  onMethod(ch, m) {
    switch (m.name) {
      case "connection.start-ok":
        return this.send(frameBytes(0, method("connection.tune", { channelMax: 2047, frameMax: 131072, heartbeat: 0 })));
      case "connection.tune-ok":
        return;
      case "connection.close":
        this.queue = undefined;
        return this.send(frameBytes(0, method("connection.close-ok")));
      case "confirm.select":
        this.confirming = true;
        this.published = 0;
        break;
      case "basic.qos":
        this.prefetch = m.prefetchCount || 1000;
        break;
      case "queue.declare": {
        const fill = FILL.exec(m.queue);
        if (!this.queue || this.queue.name !== m.queue) this.queue = { name: m.queue, total: fill ? Number(fill[1]) : 0, size: fill ? Number(fill[2]) : 0, deliveries: undefined };
        const ready = fill ? this.queue.total - this.delivered : this.published;
        return this.send(frameBytes(ch, method("queue.declare-ok", { queue: m.queue, messageCount: ready, consumerCount: 0 })));
      }
      case "basic.consume": {
        const tag = m.consumerTag || CONSUMER_TAG;
        this.send(frameBytes(ch, method("basic.consume-ok", { consumerTag: tag })));
        const fill = FILL.exec(m.queue);
        if (fill) {
          this.queue = { name: m.queue, total: Number(fill[1]), size: Number(fill[2]), deliveries: this.prepared ?? encodeDeliveries(Number(fill[1]), Number(fill[2]), m.queue, ch) };
          this.prepared = undefined;
          this.fed = 0;
          this.delivered = 0;
          this.acked = 0;
          this.consumeChannel = ch;
          setImmediate(() => this.feed());
        }
        return;
      }
      case "basic.cancel":
        if (this.queue) this.queue.deliveries = undefined;
        break;
    }
    const info = INFO.get(m.name);
    if (!info || info.responses.length === 0) return; // asynchronous: nothing to answer
    if (m.noWait || m.nowait) return;
    const reply = info.responses[0];
    const fields = reply === "basic.cancel-ok" ? { consumerTag: m.consumerTag } : reply === "queue.delete-ok" || reply === "queue.purge-ok" ? { messageCount: 0 } : {};
    this.send(frameBytes(ch, method(reply, fields)));
  }

  /** Pre-encodes the deliveries for a `fill…` queue ahead of time (un-timed), for the next basic.consume. */
  prepare(queueName, channel = 1) {
    const fill = FILL.exec(queueName);
    this.prepared = encodeDeliveries(Number(fill[1]), Number(fill[2]), queueName, channel);
  }

  /** One write of deliveries, as far as the prefetch window allows; then again on the next turn. */
  feed() {
    const t = performance.now();
    const d = this.queue?.deliveries;
    if (!d || this.fed >= d.bytes.length || this.delivered - this.acked >= this.prefetch) {
      this.feeding = false;
      this.brokerMs += performance.now() - t;
      return;
    }
    const windowEnd = d.ends[Math.min(d.ends.length, this.acked + this.prefetch) - 1];
    const end = Math.min(this.fed + this.chunk, windowEnd);
    const bytes = d.bytes.subarray(this.fed, end);
    this.fed = end;
    while (this.delivered < d.ends.length && d.ends[this.delivered] <= end) this.delivered++;
    this.feeding = true;
    this.brokerMs += performance.now() - t;
    this.send(bytes);
    setImmediate(() => this.feed());
  }
}

// ---------------------------------------------------------------------------------------------------------
// Over TCP

if (process.argv[1] && path.resolve(process.argv[1]) === new URL(import.meta.url).pathname) {
  const net = await import("node:net");
  const arg = (n, d) => {
    const i = process.argv.indexOf(`--${n}`);
    return i >= 0 ? Number(process.argv[i + 1]) : d;
  };
  const port = arg("port", 5673); // 0: any free port (printed)
  const options = { chunk: arg("chunk", 65536), ackEvery: arg("ack-every", 0) };
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    const broker = new FakeBroker((bytes) => socket.write(bytes), options);
    socket.on("data", (d) => broker.input(d));
    socket.on("error", () => undefined);
    socket.on("end", () => socket.end());
  });
  server.listen(port, "127.0.0.1", () => console.log(`fake broker on 127.0.0.1:${server.address().port}`));
}
