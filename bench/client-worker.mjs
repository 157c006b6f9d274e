/**
 * One client, one scenario, one process: the worker that `bench/clients.ts` spawns for every measurement.
 *
 *   node bench/client-worker.mjs <client> <scenario> <count> [--size B] [--window W] [--warmup N]
 *                                [--queue NAME] [--profile FILE] [--profile-interval US] [--io-stats]
 *
 * Plain JavaScript on purpose: every client — warren from dist/ (compiled by `npm run build`), amqplib,
 * @cloudamqp/amqp-client, rabbitmq-client — runs in the same bare `node`, with no TypeScript loader hooks
 * (tsx registers a loader thread, which would add to the process's CPU time and RSS for one side only).
 *
 * Environment: AMQP_URL (default amqp://guest:guest@127.0.0.1:5672/; bench/fake-broker.mjs works too, with a
 * `fill<N>x<SIZE>` queue for consume), WARREN_DIST (default ../dist: point it at another build to A/B).
 *
 * Scenarios (each uses a fresh queue named ≤ 20 bytes):
 *   publish   `count` messages of `size` bytes without confirms, each client's fastest correct idiom
 *             (below). The phase ends with one synchronous round trip on the same channel (a passive
 *             queue.declare): the broker handles a channel's frames in order, so its reply means every
 *             publish before it reached the broker. Afterwards (not timed) the queue's message count is
 *             polled until it equals warm-up + count.
 *   confirm   the same in confirm mode with at most `window` unconfirmed publishes.
 *   consume   the queue `--queue` holds warm-up + count messages (prefilled by the runner, so this
 *             process's peak RSS is the consumer's own); prefetch 1000, ack each message one by one. Timed
 *             from the warm-up-th ack to the last, plus the same end-of-phase round trip (acks processed).
 *   rtt       `count` sequential passive queue.declare round trips; reports p50/p99 in µs.
 *
 * Every scenario first runs `--warmup` un-timed operations the same way, so the timed phase sees JIT-compiled
 * code. CPU is `process.cpuUsage()` (user + system, all threads of the process: GC included) over the timed
 * phase only. Prints one JSON line on stdout, which also carries, for the timed phase: CPU per thread name
 * (`threadsUs`: "main" is the JavaScript thread, "node" V8's GC/compiler helpers; Linux only), the main
 * thread's context switches (`switches.voluntary` = times it slept and woke) and minor page faults.
 *
 * `--io-stats` (a diagnostic: it slows every socket call a little, so never combined with the timed
 * figures in the table) counts over the timed phase: socket.write() calls, writes that reach the socket
 * handle (one syscall each, writev for a batch), 'data' events (reads) and bytes each way; for warren also
 * its runtime's clock reads (`now()`) and deferred flushes (`defer()`, i.e. setImmediate).
 */
import { performance } from "node:perf_hooks";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const BROKER_URL = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672/";
/** warren's build to load: dist/ by default; WARREN_DIST=/some/other/dist to A/B a change. */
const WARREN = path.join(process.env.WARREN_DIST ? path.resolve(process.env.WARREN_DIST) : fileURLToPath(new URL("../dist", import.meta.url)), "index.js");

// ---------------------------------------------------------------------------------------------------------
// Arguments

const [client, scenario, countArg, ...rest] = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? rest[i + 1] : dflt;
};
const count = Number(countArg);
const size = Number(opt("size", 16));
const window = Number(opt("window", 1000));
const warmup = Number(opt("warmup", Math.min(Math.ceil(count / 10), 20000)));
const prefilledQueue = opt("queue", undefined);
const profileFile = opt("profile", undefined);
const profileInterval = Number(opt("profile-interval", 100));
const ioStats = rest.includes("--io-stats");
if (!client || !scenario || !(count > 0)) {
  console.error("usage: node bench/client-worker.mjs <warren|warren-alt|amqplib|amqp-client|rabbitmq-client> <publish|confirm|consume|rtt> <count> [options]");
  process.exit(2);
}
const PREFETCH = 1000;

// ---------------------------------------------------------------------------------------------------------
// Clients. Each adapter exposes the same small surface; every method is that library's own idiom.
//
//   open(confirm)          connect and open one channel (in confirm mode when asked)
//   declare(q)             a fresh exclusive queue
//   count(q)               messageCount from a passive queue.declare on the channel (also the round trip)
//   publish(q, body, n)    n publishes without confirms, honouring the library's backpressure signal
//   publishConfirmed(q, body, n, window, onSettled)  keeps ≤ window unconfirmed; resolves when all acked
//   consume(q, onMessage)  prefetch 1000, consumer acking each message; onMessage() returns true to stop
//   close()

const adapters = {
  /** warren's recommended fast paths: tryPublish + conn.writable(), and a for-await consumer. */
  async warren() {
    const { connect } = await import(WARREN);
    let conn, ch;
    return {
      async open(confirm) {
        conn = await connect(BROKER_URL);
        ch = await conn.openChannel();
        if (confirm) await ch.confirmSelect();
      },
      declare: (q) => ch.queueDeclare(q, { exclusive: true }),
      count: async (q) => (await ch.queueDeclare(q, { passive: true })).messageCount,
      async publish(q, body, n) {
        for (let i = 0; i < n; i++) {
          if (!ch.tryPublish("", q, body)) {
            const w = conn.writable();
            if (w) await w;
          }
        }
      },
      publishConfirmed: (q, body, n, win) => windowed(n, win, (ok, fail) => ch.basicPublish("", q, body).then(ok, fail)),
      async consume(q, onMessage) {
        await ch.basicQos(PREFETCH);
        const consumer = await ch.basicConsume(q);
        for await (const m of consumer) {
          m.ack();
          if (onMessage()) break; // leaving the loop cancels the consumer
        }
      },
      async close() {
        await conn.close();
      },
    };
  },

  /** warren's other documented paths: awaited basicPublish, and a callback consumer. */
  async "warren-alt"() {
    const { connect } = await import(WARREN);
    let conn, ch;
    return {
      async open(confirm) {
        conn = await connect(BROKER_URL);
        ch = await conn.openChannel();
        if (confirm) await ch.confirmSelect();
      },
      declare: (q) => ch.queueDeclare(q, { exclusive: true }),
      count: async (q) => (await ch.queueDeclare(q, { passive: true })).messageCount,
      async publish(q, body, n) {
        for (let i = 0; i < n; i++) await ch.basicPublish("", q, body);
      },
      publishConfirmed: (q, body, n, win) => windowed(n, win, (ok, fail) => ch.basicPublish("", q, body).then(ok, fail)),
      async consume(q, onMessage) {
        await ch.basicQos(PREFETCH);
        await new Promise((resolve, reject) => {
          let done = false;
          ch.basicConsume(q, {}, (m) => {
            if (done) return;
            m.ack();
            if (onMessage()) {
              done = true;
              resolve();
            }
          }).catch(reject);
        });
      },
      async close() {
        await conn.close();
      },
    };
  },

  /** amqplib 2.x promise API: publish() returning false means wait for 'drain'; ConfirmChannel callbacks. */
  async amqplib() {
    const amqplib = (await import("amqplib")).default;
    let conn, ch;
    return {
      async open(confirm) {
        conn = await amqplib.connect(BROKER_URL);
        ch = confirm ? await conn.createConfirmChannel() : await conn.createChannel();
      },
      declare: (q) => ch.assertQueue(q, { exclusive: true, durable: false }),
      count: async (q) => (await ch.checkQueue(q)).messageCount,
      async publish(q, body, n) {
        for (let i = 0; i < n; i++) {
          if (!ch.publish("", q, body)) await new Promise((resolve) => ch.once("drain", resolve));
        }
      },
      publishConfirmed: (q, body, n, win) =>
        windowed(n, win, (ok, fail) => ch.publish("", q, body, {}, (err) => (err ? fail(err) : ok()))),
      async consume(q, onMessage) {
        await ch.prefetch(PREFETCH);
        await new Promise((resolve, reject) => {
          let done = false;
          ch.consume(q, (m) => {
            if (done || m === null) return;
            ch.ack(m);
            if (onMessage()) {
              done = true;
              resolve();
            }
          }).catch(reject);
        });
      },
      async close() {
        await conn.close();
      },
    };
  },

  /**
   * @cloudamqp/amqp-client 4.x: basicPublish returns a promise that resolves once the socket took the bytes
   * (or, in confirm mode, on the broker's ack). Writes complete in order, so awaiting every 1024th keeps
   * the socket buffer bounded without a round trip per message.
   */
  async "amqp-client"() {
    const { AMQPClient } = await import("@cloudamqp/amqp-client");
    let conn, ch;
    return {
      async open(confirm) {
        conn = await new AMQPClient(BROKER_URL).connect();
        ch = await conn.channel();
        if (confirm) await ch.confirmSelect();
      },
      declare: (q) => ch.queueDeclare(q, { exclusive: true }),
      count: async (q) => (await ch.queueDeclare(q, { passive: true })).messageCount,
      async publish(q, body, n) {
        let p;
        for (let i = 0; i < n; i++) {
          p = ch.basicPublish("", q, body);
          if ((i & 1023) === 1023) await p;
        }
        await p;
      },
      publishConfirmed: (q, body, n, win) => windowed(n, win, (ok, fail) => ch.basicPublish("", q, body).then(ok, fail)),
      async consume(q, onMessage) {
        await ch.prefetch(PREFETCH);
        await new Promise((resolve, reject) => {
          let done = false;
          ch.basicConsume(q, { noAck: false }, (m) => {
            if (done) return;
            m.ack();
            if (onMessage()) {
              done = true;
              resolve();
            }
          }).catch(reject);
        });
      },
      async close() {
        await conn.close();
      },
    };
  },

  /**
   * rabbitmq-client 5.x, on a raw Channel (its Publisher/Consumer wrappers add retry and queueing on top
   * of the same calls). basicPublish resolves when the frames are written; same bounded pipelining as above.
   */
  async "rabbitmq-client"() {
    const { Connection } = await import("rabbitmq-client");
    let rabbit, ch;
    return {
      async open(confirm) {
        rabbit = new Connection({ url: BROKER_URL, retryLow: 100, retryHigh: 200 });
        rabbit.on("error", (e) => console.error("rabbitmq-client:", e));
        ch = await rabbit.acquire();
        if (confirm) await ch.confirmSelect();
      },
      declare: (q) => ch.queueDeclare({ queue: q, exclusive: true }),
      count: async (q) => (await ch.queueDeclare({ queue: q, passive: true })).messageCount,
      async publish(q, body, n) {
        let p;
        for (let i = 0; i < n; i++) {
          p = ch.basicPublish({ routingKey: q }, body);
          if ((i & 1023) === 1023) await p;
        }
        await p;
      },
      publishConfirmed: (q, body, n, win) => windowed(n, win, (ok, fail) => ch.basicPublish({ routingKey: q }, body).then(ok, fail)),
      async consume(q, onMessage) {
        await ch.basicQos({ prefetchCount: PREFETCH });
        await new Promise((resolve, reject) => {
          let done = false;
          ch.basicConsume({ queue: q }, (m) => {
            if (done) return;
            ch.basicAck({ deliveryTag: m.deliveryTag });
            if (onMessage()) {
              done = true;
              resolve();
            }
          }).catch(reject);
        });
      },
      async close() {
        await ch.close();
        await rabbit.close();
      },
    };
  },
};

/**
 * Runs `n` publishes keeping at most `win` unsettled; `publishOne(ok, fail)` starts one and calls back once.
 * One closure pair per run, not per message: what is measured is the client, not this helper.
 */
function windowed(n, win, publishOne) {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let settled = 0;
    let pumping = false;
    const ok = () => {
      settled++;
      if (settled === n) resolve();
      else if (!pumping) pump();
    };
    const pump = () => {
      pumping = true;
      while (sent - settled < win && sent < n) {
        sent++;
        publishOne(ok, fail);
      }
      pumping = false;
    };
    const fail = (e) => reject(e);
    pump();
  });
}

// ---------------------------------------------------------------------------------------------------------
// Measurement

/** Starts the timed phase; the returned function ends it and gives wall seconds and CPU µs. */
async function startPhase() {
  const stopProfile = profileFile ? await startProfile() : undefined;
  io.on = true;
  const threads0 = threadTicks();
  const switches0 = contextSwitches();
  const faults0 = process.resourceUsage().minorPageFault;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  return async () => {
    io.on = false;
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const threads = threadTicks();
    const switches = contextSwitches();
    switches.voluntary -= switches0.voluntary;
    switches.involuntary -= switches0.involuntary;
    const pageFaults = process.resourceUsage().minorPageFault - faults0;
    for (const k of Object.keys(threads)) threads[k] = (threads[k] - (threads0[k] ?? 0)) * 10_000; // µs
    if (stopProfile) await stopProfile();
    return { seconds, cpuUs: cpu.user + cpu.system, userUs: cpu.user, systemUs: cpu.system, threadsUs: threads, switches, pageFaults };
  };
}

/** Samples the timed phase with V8's CPU profiler (the same format as `node --cpu-prof`). */
async function startProfile() {
  const inspector = await import("node:inspector/promises");
  const session = new inspector.Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: profileInterval });
  await session.post("Profiler.start");
  return async () => {
    const { profile } = await session.post("Profiler.stop");
    writeFileSync(profileFile, JSON.stringify(profile));
    session.disconnect();
  };
}

/**
 * CPU ticks (user + system, 1/100 s) per thread name from /proc (Linux only; {} elsewhere): which part of
 * the process's CPU is the main thread's JavaScript and which V8's helpers (GC, compiler) on other threads.
 */
function threadTicks() {
  const out = {};
  try {
    for (const tid of readdirSync("/proc/self/task")) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const name = tid === String(process.pid) ? "main" : readFileSync(`/proc/self/task/${tid}/comm`, "utf8").trim();
      out[name] = (out[name] ?? 0) + Number(f[11]) + Number(f[12]);
    }
  } catch {
    // not Linux
  }
  return out;
}

/** Context switches of the main thread: voluntary (it waited, e.g. in epoll) and involuntary (preempted). */
function contextSwitches() {
  try {
    const st = readFileSync(`/proc/self/task/${process.pid}/status`, "utf8");
    return { voluntary: Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(st)[1]), involuntary: Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(st)[1]) };
  } catch {
    return { voluntary: 0, involuntary: 0 };
  }
}

/** Counters for --io-stats; `io.on` is true only during the timed phase. */
const io = { on: false, write: 0, handleWrites: 0, writev: 0, bytesOut: 0, reads: 0, bytesIn: 0, now: 0, defer: 0 };

async function instrument() {
  const net = await import("node:net");
  const P = net.Socket.prototype;
  const write = P.write;
  P.write = function (chunk, ...a) {
    if (io.on) {
      io.write++;
      io.bytesOut += chunk?.length ?? 0;
    }
    return write.call(this, chunk, ...a);
  };
  const generic = P._writeGeneric;
  P._writeGeneric = function (writev, data, ...a) {
    if (io.on) {
      io.handleWrites++;
      if (writev) io.writev++;
    }
    return generic.call(this, writev, data, ...a);
  };
  const emit = P.emit;
  P.emit = function (ev, chunk, ...a) {
    if (io.on && ev === "data") {
      io.reads++;
      io.bytesIn += chunk.length;
    }
    return emit.call(this, ev, chunk, ...a);
  };
  if (client.startsWith("warren")) {
    const { nodeRuntime } = await import(WARREN);
    const { now, defer } = nodeRuntime;
    nodeRuntime.now = () => {
      if (io.on) io.now++;
      return now();
    };
    nodeRuntime.defer = (fn) => {
      if (io.on) io.defer++;
      defer(fn);
    };
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls until the queue holds `expected` messages (the broker's queue process may lag its channel). */
async function settle(a, q, expected, timeoutMs = 30000) {
  const until = performance.now() + timeoutMs;
  let n = await a.count(q);
  while (n !== expected && performance.now() < until) {
    await sleep(n > expected ? 200 : 20);
    n = await a.count(q);
  }
  return n;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

async function main() {
  if (ioStats) await instrument();
  const a = await adapters[client]?.();
  if (!a) throw new Error(`unknown client ${client}`);
  const body = Buffer.alloc(size, 0x78);
  const q = prefilledQueue ?? `b${process.pid.toString(36)}${Date.now().toString(36).slice(-5)}`;
  const result = { client, scenario, count, size, warmup };

  switch (scenario) {
    case "publish": {
      await a.open(false);
      await a.declare(q);
      await a.publish(q, body, warmup);
      await a.count(q);
      const end = await startPhase();
      await a.publish(q, body, count);
      await a.count(q); // the round trip that ends the phase: every publish before it reached the broker
      Object.assign(result, await end());
      const got = await settle(a, q, warmup + count);
      result.verified = got === warmup + count;
      result.detail = `queue holds ${got} of ${warmup + count}`;
      break;
    }
    case "confirm": {
      await a.open(true);
      await a.declare(q);
      await a.publishConfirmed(q, body, warmup, window);
      const end = await startPhase();
      await a.publishConfirmed(q, body, count, window);
      Object.assign(result, await end());
      const got = await settle(a, q, warmup + count);
      result.verified = got === warmup + count;
      result.detail = `queue holds ${got} of ${warmup + count}`;
      result.window = window;
      break;
    }
    case "consume": {
      if (!prefilledQueue) throw new Error("consume needs --queue (prefilled by the runner)");
      await a.open(false);
      const before = await a.count(q);
      if (before !== warmup + count) throw new Error(`queue ${q} holds ${before}, expected ${warmup + count}`);
      let seen = 0;
      let end;
      let starting;
      const total = warmup + count;
      await a.consume(q, () => {
        seen++;
        if (seen === warmup) starting = startPhase().then((e) => (end = e));
        return seen === total;
      });
      await starting;
      await a.count(q); // acks were handled
      Object.assign(result, await end());
      const left = await settle(a, q, 0, 5000);
      result.verified = seen === total && left === 0;
      result.detail = `consumed ${seen} of ${total}, ${left} left ready`;
      break;
    }
    case "rtt": {
      await a.open(false);
      await a.declare(q);
      for (let i = 0; i < warmup; i++) await a.count(q);
      const lat = new Float64Array(count);
      const end = await startPhase();
      for (let i = 0; i < count; i++) {
        const t = performance.now();
        await a.count(q);
        lat[i] = (performance.now() - t) * 1000;
      }
      Object.assign(result, await end());
      lat.sort();
      result.p50Us = percentile(lat, 50);
      result.p99Us = percentile(lat, 99);
      result.verified = true;
      break;
    }
    default:
      throw new Error(`unknown scenario ${scenario}`);
  }
  result.rate = count / result.seconds;
  result.cpuUsPerMsg = result.cpuUs / count;
  result.maxRssKB = process.resourceUsage().maxRSS;
  if (ioStats) {
    const { on, ...counts } = io;
    result.io = Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v / count]));
  }
  if (!prefilledQueue) await a.count(q).catch(() => undefined);
  await a.close();
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`${client} ${scenario}:`, e);
    process.exit(1);
  },
);
