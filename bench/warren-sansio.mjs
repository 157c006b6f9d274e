/**
 * warren's client — Connection, Channel, Consumer, the machine and the codec, exactly as `connect()` builds
 * them — driven over an in-process fake broker instead of a socket. What it measures is the client's own CPU
 * per message, with no kernel, no broker and no other process in the figure: a tool for iterating on src/,
 * where a 0.1 µs change is visible (the broker benchmark's noise on this shared machine is larger).
 *
 *   npm run build && node bench/warren-sansio.mjs [scenario…] [--count N] [--rounds R] [--chunk BYTES]
 *                                                  [--ack-every K] [--alt] [--profile DIR]
 *   WARREN_DIST=/tmp/other/dist node bench/warren-sansio.mjs …     # A/B: another build of warren
 *
 * Scenarios, each in the same shape as bench/client-worker.mjs (same client calls):
 *   publish16 / publish1k  tryPublish loop (+ conn.writable() when it returns false), no confirms
 *   confirm                basicPublish in confirm mode, ≤ 1000 unconfirmed; the broker acks each write's
 *                          publishes with one basic.ack(multiple) a turn later (`--ack-every K`: one
 *                          basic.ack(multiple) per K publishes instead, each in its own read)
 *   consume                prefetch 1000, for-await consumer acking each message; deliveries arrive in reads of
 *                          `--chunk` bytes (default 4096: about what RabbitMQ's reads carried in the broker
 *                          benchmark), split anywhere, never more than 1000 unacked, one read per turn
 *   rtt                    sequential passive queue.declare, answered a turn later
 * `--alt` uses the other documented paths instead (awaited basicPublish, callback consumer).
 *
 * The fake broker costs something too: it walks the frames the client writes (header reads only, full
 * decoding only for the rare non-publish, non-ack method) and slices pre-encoded deliveries. Its time is
 * measured with performance.now() around each of its calls (per write or per read, not per message) and
 * subtracted; the table shows it as "broker µs/msg".
 */
import { performance } from "node:perf_hooks";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

const DIST = process.env.WARREN_DIST ? path.resolve(process.env.WARREN_DIST) : new URL("../dist", import.meta.url).pathname;
const warren = await import(path.join(DIST, "index.js"));
const { FakeBroker } = await import("./fake-broker.mjs");

// ---------------------------------------------------------------------------------------------------------
// Arguments

const argv = process.argv.slice(2);
const value = (n, d) => {
  const i = argv.indexOf(`--${n}`);
  return i >= 0 ? argv[i + 1] : d;
};
const alt = argv.includes("--alt");
const rounds = Number(value("rounds", 3));
const chunkSize = Number(value("chunk", 4096));
const ackEvery = Number(value("ack-every", 0));
const profileDir = value("profile", undefined);
const countArg = value("count", undefined);
const valueFlags = new Set(["--count", "--rounds", "--chunk", "--profile", "--ack-every"]);
const named = argv.filter((a, i) => !a.startsWith("--") && !valueFlags.has(argv[i - 1]));
const SCENARIOS = {
  publish16: { mode: "publish", size: 16, count: 400_000 },
  publish1k: { mode: "publish", size: 1024, count: 200_000 },
  confirm: { mode: "confirm", size: 16, count: 200_000 },
  consume: { mode: "consume", size: 16, count: 200_000 },
  rtt: { mode: "rtt", size: 0, count: 20_000 },
};
const chosen = named.length > 0 ? named : Object.keys(SCENARIOS);
const PREFETCH = 1000;
const WINDOW = 1000;

// ---------------------------------------------------------------------------------------------------------
// The fake broker, in-process: whatever it sends arrives as the client's next read, one per turn

function fakeTransport(broker, handlers) {
  return {
    write: (bytes) => {
      broker.input(bytes);
      return true;
    },
    get bufferedAmount() {
      return 0;
    },
    end: () => setImmediate(() => handlers.onClose(undefined)),
    destroy: () => undefined,
  };
}

// ---------------------------------------------------------------------------------------------------------
// One measured run

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
    const fail = (e) => reject(e);
    const pump = () => {
      pumping = true;
      while (sent - settled < win && sent < n) {
        sent++;
        publishOne(ok, fail);
      }
      pumping = false;
    };
    pump();
  });
}

async function startProfile(file) {
  const inspector = await import("node:inspector/promises");
  const session = new inspector.Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 50 });
  await session.post("Profiler.start");
  return async () => {
    const { profile } = await session.post("Profiler.stop");
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
}

async function run(id, s, count, profileFile) {
  let handlers;
  const broker = new FakeBroker((bytes) => setImmediate(() => handlers.onData(bytes)), { chunk: chunkSize, ackEvery });
  const runtime = {
    connect: async (_o, h) => fakeTransport(broker, (handlers = h)),
    now: () => performance.now(),
    defer: (fn) => setImmediate(fn),
    platform: `Node.js ${process.version} (fake broker)`,
  };
  const conn = await warren.connectWith(runtime, "amqp://guest:guest@127.0.0.1:5672/");
  const ch = await conn.openChannel();
  const warm0 = Math.min(Math.ceil(count / 10), 20000);
  const q = s.mode === "consume" ? `fill${warm0 + count}x${s.size}` : "bq-sansio";
  const body = new Uint8Array(s.size).fill(0x78);
  const warm = Math.min(Math.ceil(count / 10), 20000);
  const publish = async (n) => {
    if (alt) for (let i = 0; i < n; i++) await ch.basicPublish("", q, body);
    else
      for (let i = 0; i < n; i++) {
        if (!ch.tryPublish("", q, body)) {
          const w = conn.writable();
          if (w) await w;
        }
      }
  };
  let phase;
  const start = async () => {
    const stop = profileFile ? await startProfile(profileFile) : undefined;
    const b0 = broker.brokerMs;
    const w0 = broker.writes;
    const r0 = broker.reads;
    const f0 = process.resourceUsage().minorPageFault;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    phase = async () => {
      const seconds = (performance.now() - t0) / 1000;
      const c = process.cpuUsage(c0);
      const pageFaults = process.resourceUsage().minorPageFault - f0;
      if (stop) await stop();
      return { seconds, cpuUs: c.user + c.system, brokerUs: (broker.brokerMs - b0) * 1000, writes: broker.writes - w0, reads: broker.reads - r0, pageFaults };
    };
  };
  switch (s.mode) {
    case "publish":
      await publish(warm);
      await ch.queueDeclare(q, { passive: true });
      await start();
      await publish(count);
      await ch.queueDeclare(q, { passive: true });
      if (broker.published !== warm + count) throw new Error(`broker saw ${broker.published} publishes`);
      break;
    case "confirm": {
      await ch.confirmSelect();
      const one = (ok, fail) => ch.basicPublish("", q, body).then(ok, fail);
      await windowed(warm, WINDOW, one);
      await start();
      await windowed(count, WINDOW, one);
      break;
    }
    case "consume": {
      broker.prepare(q);
      await ch.basicQos(PREFETCH);
      let seen = 0;
      const onMessage = () => {
        seen++;
        if (seen === warm) start();
        return seen === warm + count;
      };
      if (alt) {
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
      } else {
        const consumer = await ch.basicConsume(q);
        for await (const m of consumer) {
          m.ack();
          if (onMessage()) break;
        }
      }
      await ch.queueDeclare(q, { passive: true });
      if (broker.acked !== warm + count) throw new Error(`broker saw acks up to ${broker.acked}, expected ${warm + count}`);
      break;
    }
    case "rtt":
      for (let i = 0; i < warm; i++) await ch.queueDeclare(q, { passive: true });
      await start();
      for (let i = 0; i < count; i++) await ch.queueDeclare(q, { passive: true });
      break;
  }
  const r = await phase();
  await conn.close();
  const clientUs = r.cpuUs - r.brokerUs;
  return { id, count, ...r, clientUsPerMsg: clientUs / count, brokerUsPerMsg: r.brokerUs / count, rate: count / r.seconds, acksPerMsg: broker.acks / (s.mode === "consume" ? warm + count : 1) };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

console.log(`warren over a fake broker (no sockets) — ${DIST}${alt ? " — alt paths" : ""}; median of ${rounds}`);
console.log(`${"scenario".padEnd(10)} ${"messages".padStart(9)} ${"client µs/msg".padStart(14)}  ${"(rounds)".padEnd(20)} ${"broker µs/msg".padStart(13)} ${"msgs/s".padStart(9)} ${"writes/msg".padStart(11)} ${"reads/msg".padStart(10)} ${"faults/msg".padStart(10)}`);

for (const id of chosen) {
  const s = SCENARIOS[id];
  if (!s) throw new Error(`unknown scenario ${id} (have ${Object.keys(SCENARIOS).join(", ")})`);
  const count = Number(countArg ?? s.count);
  const rs = [];
  for (let i = 0; i < rounds; i++) {
    let file;
    if (profileDir && i === rounds - 1) {
      mkdirSync(profileDir, { recursive: true });
      file = path.join(profileDir, `sansio-${id}${alt ? "-alt" : ""}.cpuprofile`);
    }
    rs.push(await run(id, s, count, file));
  }
  const m = (k) => median(rs.map((r) => r[k]));
  console.log(
    `${id.padEnd(10)} ${String(count).padStart(9)} ${m("clientUsPerMsg").toFixed(3).padStart(14)}  ${rs.map((r) => r.clientUsPerMsg.toFixed(3)).join(" ").padEnd(20)} ${m("brokerUsPerMsg").toFixed(3).padStart(13)} ${(m("rate") / 1000).toFixed(0).padStart(8)}k ${(m("writes") / count).toFixed(4).padStart(11)} ${(m("reads") / count).toFixed(4).padStart(10)} ${(m("pageFaults") / count).toFixed(4).padStart(10)}`,
  );
}
process.exit(0);
