/**
 * Client benchmark against a real broker: warren beside amqplib, @cloudamqp/amqp-client and rabbitmq-client.
 *
 *   npm run bench                     # ≈ 4–5 min: 5 scenarios × 4 clients × 3 rounds
 *   npm run bench -- --quick          # ≈ 1½ min: a quarter of the messages, still 3 rounds
 *   npm run bench -- --alt            # also warren's other paths (awaited basicPublish, callback consumer)
 *   npm run bench -- --profile        # warren only, one run per scenario under V8's CPU profiler;
 *                                     # prints the hottest functions (self time) mapped back to src/
 *   npm run bench -- --fake           # against bench/fake-broker.mjs instead of RabbitMQ: real sockets, but
 *                                     # a broker that costs ~nothing, so the figures are the clients' own
 *   options: --rounds N  --clients a,b  --scenarios publish16,confirm  --json FILE  --no-build
 *
 * Every measurement is its own process (bench/client-worker.mjs, plain JS, one client loaded), so JIT
 * state, heap and sockets are never shared. Rounds alternate: round r runs every client once, in an order
 * rotated by r, so a slow minute on this shared machine hits all clients alike. The table shows the median
 * over rounds of each figure.
 *
 * The figure that matters is the client's CPU time per message (user + system of the client process over
 * the timed phase, `process.cpuUsage()`): other jobs load this machine, and the broker (on the same CPUs) is
 * usually what bounds msgs/s, so wall-clock rates say more about the broker than about the client.
 * Columns: "of it sys" is the kernel's share (µs/msg); "msgs/wake" is messages per time the client's main
 * thread went to sleep and woke again (voluntary context switches) — the batch each wake-up pays for.
 *
 * warren runs from dist/ (compiled JS); the runner rebuilds it first when a file in src/ is newer.
 * The consume scenario's queue is prefilled here (with amqplib, un-timed) so the consumer process's peak
 * RSS is its own.
 *
 * Why --fake exists: RabbitMQ shares this machine's two CPUs with the client. Its confirms and deliveries
 * then arrive in small batches, and every batch costs the client a wake-up (epoll, read, write, cold
 * caches after the broker ran) that is far dearer than the per-message work. Against the fake broker the
 * batches are the clients' own doing and the CPU per message is what each library itself spends.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { loadavg, availableParallelism } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import amqplib from "amqplib";
import { type CpuProfile, formatTop } from "./cpuprofile.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const WORKER = path.join(ROOT, "bench", "client-worker.mjs");
let URL = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672/";

// ---------------------------------------------------------------------------------------------------------
// What runs

interface Scenario {
  id: string;
  title: string;
  mode: "publish" | "confirm" | "consume" | "rtt";
  count: number;
  size: number;
  /** The issue's figure for the best peer on this machine, CPU µs per message (warren's target: half). */
  issuePeerUs?: number;
}

const SCENARIOS: Scenario[] = [
  { id: "publish16", title: "publish 16 B, no confirms", mode: "publish", count: 150_000, size: 16, issuePeerUs: 2.6 },
  { id: "publish1k", title: "publish 1 KiB, no confirms", mode: "publish", count: 50_000, size: 1024 },
  { id: "confirm", title: "publish 16 B with confirms, window 1000", mode: "confirm", count: 50_000, size: 16, issuePeerUs: 5.5 },
  { id: "consume", title: "consume 16 B, prefetch 1000, ack each", mode: "consume", count: 60_000, size: 16, issuePeerUs: 3.2 },
  { id: "rtt", title: "sequential round trip (passive queue.declare)", mode: "rtt", count: 2_000, size: 0 },
];
const PEERS = ["amqplib", "amqp-client", "rabbitmq-client"];

const argv = process.argv.slice(2);
const flag = (n: string) => argv.includes(`--${n}`);
const value = (n: string) => {
  const i = argv.indexOf(`--${n}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const quick = flag("quick");
const profiling = flag("profile");
const fake = flag("fake");
const rounds = Number(value("rounds") ?? (profiling ? 1 : 3));
let clients = value("clients")?.split(",") ?? ["warren", ...(flag("alt") ? ["warren-alt"] : []), ...PEERS];
if (profiling && !value("clients")) clients = ["warren"];
const wanted = value("scenarios")?.split(",");
const scenarios = SCENARIOS.filter((s) => !wanted || wanted.includes(s.id)).map((s) => ({
  ...s,
  count: quick ? Math.max(500, Math.round(s.count / 4)) : s.count,
}));

// ---------------------------------------------------------------------------------------------------------
// Preparation: a broker, and an up-to-date dist/

function ensureBroker(): void {
  const r = spawnSync("bash", [path.join(ROOT, "scripts", "broker.sh"), "ensure"], { stdio: ["ignore", "inherit", "inherit"] });
  if (r.status !== 0) throw new Error("no broker on 127.0.0.1:5672 (scripts/broker.sh ensure failed)");
}

function newestMtime(dir: string, ext: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p, ext));
    else if (e.name.endsWith(ext)) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** dist/ is stale when a file of src/ is newer than dist's oldest output, or dist is missing. */
function buildIfStale(): void {
  if (flag("no-build")) return;
  const dist = path.join(ROOT, "dist");
  let stale = !existsSync(path.join(dist, "index.js"));
  if (!stale) {
    const src = newestMtime(path.join(ROOT, "src"), ".ts");
    let oldest = Infinity;
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith(".js")) oldest = Math.min(oldest, statSync(p).mtimeMs);
      }
    };
    walk(dist);
    stale = src > oldest;
  }
  if (!stale) return;
  console.error("dist/ is older than src/: npm run build");
  const r = spawnSync("npm", ["run", "build", "--silent"], { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] });
  if (r.status !== 0) {
    // tsc still emits on type errors; someone may be mid-edit. Say so, and measure what was emitted.
    console.error(`warning: npm run build exited with ${r.status}; measuring the JavaScript it emitted`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Running one worker

interface Result {
  switches?: { voluntary: number; involuntary: number };
  client: string;
  scenario: string;
  count: number;
  seconds: number;
  cpuUs: number;
  userUs: number;
  systemUs: number;
  cpuUsPerMsg: number;
  rate: number;
  maxRssKB: number;
  verified: boolean;
  detail?: string;
  p50Us?: number;
  p99Us?: number;
}

function runWorker(args: string[], url: string, timeoutMs = 180_000): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, AMQP_URL: url } });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d));
    child.stderr.on("data", (d: Buffer) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const line = out.trim().split("\n").pop();
      if (code === 0 && line) resolve(JSON.parse(line) as Result);
      else reject(new Error(`worker ${args.join(" ")} failed (${signal ?? code}):\n${err.trim() || out.trim()}`));
    });
  });
}

/** Fills a fresh queue with `n` messages of `size` bytes and waits until the broker counts them all. */
async function prefill(ch: amqplib.Channel, q: string, n: number, size: number): Promise<void> {
  await ch.assertQueue(q, { durable: false, autoDelete: false });
  await ch.purgeQueue(q);
  const body = Buffer.alloc(size, 0x78);
  for (let i = 0; i < n; i++) {
    if (!ch.publish("", q, body)) await new Promise((r) => ch.once("drain", r));
  }
  const until = Date.now() + 60_000;
  for (;;) {
    const { messageCount } = await ch.checkQueue(q);
    if (messageCount === n) return;
    if (Date.now() > until) throw new Error(`prefill: queue ${q} holds ${messageCount}, expected ${n}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Tables

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmtRate = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(1)}k` : x.toFixed(0));

interface Row {
  client: string;
  rate: number;
  cpu: number;
  cpuAll: number[];
  rssMB: number;
  sys: number;
  perWake: number;
  ok: boolean;
  p50?: number;
  p99?: number;
  notes: string[];
}

function rows(results: Result[]): Row[] {
  const by = new Map<string, Result[]>();
  for (const r of results) by.set(r.client, [...(by.get(r.client) ?? []), r]);
  return clients
    .filter((c) => by.has(c))
    .map((c) => {
      const rs = by.get(c)!;
      return {
        client: c,
        rate: median(rs.map((r) => r.rate)),
        cpu: median(rs.map((r) => r.cpuUsPerMsg)),
        cpuAll: rs.map((r) => r.cpuUsPerMsg),
        rssMB: median(rs.map((r) => r.maxRssKB / 1024)),
        sys: median(rs.map((r) => r.systemUs / r.count)),
        perWake: median(rs.map((r) => r.count / Math.max(1, r.switches?.voluntary ?? 0))),
        ok: rs.every((r) => r.verified),
        p50: rs[0]!.p50Us !== undefined ? median(rs.map((r) => r.p50Us!)) : undefined,
        p99: rs[0]!.p99Us !== undefined ? median(rs.map((r) => r.p99Us!)) : undefined,
        notes: rs.filter((r) => !r.verified).map((r) => r.detail ?? "not verified"),
      };
    });
}

function table(s: Scenario, results: Result[]): string {
  const rs = rows(results);
  const unit = s.mode === "rtt" ? "round trip" : "msg";
  const rtt = s.mode === "rtt";
  const head = `${"client".padEnd(16)} ${(rtt ? "trips/s" : "msgs/s").padStart(9)} ${`CPU µs/${unit}`.padStart(rtt ? 18 : 11)}  ${"(rounds)".padEnd(22)} ${"of it sys".padStart(9)} ${(rtt ? "" : "msgs/wake").padStart(9)} ${"peak RSS".padStart(9)}${rtt ? `${"p50 µs".padStart(9)}${"p99 µs".padStart(9)}` : ""}  verified`;
  const lines = [`${s.title} — ${s.count.toLocaleString("en")} ${rtt ? "round trips" : "messages"}${s.size && !rtt ? ` of ${s.size} B` : ""}, median of ${rounds}`, head];
  for (const r of rs) {
    lines.push(
      `${r.client.padEnd(16)} ${fmtRate(r.rate).padStart(9)} ${r.cpu.toFixed(2).padStart(rtt ? 18 : 11)}  ${r.cpuAll.map((x) => x.toFixed(2)).join(" ").padEnd(22)} ${r.sys.toFixed(2).padStart(9)} ${(rtt ? "" : r.perWake.toFixed(0)).padStart(9)} ${`${r.rssMB.toFixed(0)} MB`.padStart(9)}${rtt ? `${r.p50!.toFixed(0).padStart(9)}${r.p99!.toFixed(0).padStart(9)}` : ""}  ${r.ok ? "yes" : `NO: ${r.notes.join("; ")}`}`,
    );
  }
  const w = rs.find((r) => r.client === "warren");
  const peers = rs.filter((r) => PEERS.includes(r.client));
  if (w && peers.length > 0) {
    const best = peers.reduce((a, b) => (b.cpu < a.cpu ? b : a));
    const fastest = peers.reduce((a, b) => (b.rate > a.rate ? b : a));
    const target = best.cpu / 2;
    lines.push(
      `warren / best peer: CPU ${(w.cpu / best.cpu).toFixed(2)}× ${best.client} (target ≤ 0.50×, i.e. ≤ ${target.toFixed(2)} µs: ${w.cpu <= target ? "met" : "NOT met"})` +
        `; rate ${(w.rate / fastest.rate).toFixed(2)}× ${fastest.client}` +
        (s.issuePeerUs ? `; issue's best-peer figure ${s.issuePeerUs} µs → ${(w.cpu / s.issuePeerUs).toFixed(2)}×` : ""),
    );
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------------------

/** Starts bench/fake-broker.mjs on a free port; resolves with its URL and a function that stops it. */
function startFakeBroker(): Promise<{ url: string; stop(): void }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, "bench", "fake-broker.mjs"), "--port", "0"], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    child.once("error", reject);
    child.stdout.once("data", (d: Buffer) => {
      const port = /:(\d+)/.exec(String(d))?.[1];
      if (!port) return reject(new Error(`fake broker said: ${d}`));
      resolve({ url: `amqp://guest:guest@127.0.0.1:${port}/`, stop: () => child.kill() });
    });
  });
}

async function main(): Promise<void> {
  buildIfStale();
  let stopFake: (() => void) | undefined;
  if (fake) {
    const f = await startFakeBroker();
    URL = f.url;
    stopFake = f.stop;
  } else ensureBroker();
  const [l1] = loadavg();
  console.log(
    `warren client benchmark — node ${process.version}, ${availableParallelism()} CPUs, load average ${l1!.toFixed(1)} at start; ` +
      `${rounds} round(s), ${quick ? "quick" : "full"} counts${profiling ? ", CPU profiler on (figures inflated)" : ""}` +
      (fake ? `; FAKE BROKER (bench/fake-broker.mjs) at ${URL.replace(/\/\/.*@/, "//")}` : "; RabbitMQ at 127.0.0.1:5672"),
  );
  const conn = fake ? undefined : await amqplib.connect(URL);
  const ch = await conn?.createChannel();
  const all: Record<string, Result[]> = {};
  const profileDir = path.join(ROOT, "bench", "profiles");
  if (profiling) {
    mkdirSync(profileDir, { recursive: true });
    writeFileSync(path.join(profileDir, ".gitignore"), "*\n");
  }
  const started = Date.now();
  try {
    for (const s of scenarios) {
      const results: Result[] = [];
      for (let round = 0; round < rounds; round++) {
        const order = clients.map((_, i) => clients[(i + round) % clients.length]!);
        for (const client of order) {
          // Un-timed warm-up in the same process, the same way: enough iterations for V8 to have optimised
          // the hot paths (a short phase otherwise measures the compiler threads as much as the client).
          const warm = s.mode === "rtt" ? s.count : Math.min(20_000, Math.max(10_000, Math.round(s.count / 5)));
          const args = [client, s.mode, String(s.count), "--size", String(s.size || 16), "--warmup", String(warm)];
          let queue: string | undefined;
          if (s.mode === "consume") {
            if (ch) {
              queue = `bq${process.pid.toString(36)}${round}${client.slice(0, 3)}`;
              await prefill(ch, queue, s.count + warm, s.size);
              args.push("--queue", queue);
            } else args.push("--queue", `fill${s.count + warm}x${s.size}`); // the fake broker's prefilled queue
          }
          const prof = path.join(profileDir, `${client}-${s.id}.cpuprofile`);
          if (profiling) args.push("--profile", prof);
          process.stderr.write(`  ${s.id} round ${round + 1}/${rounds} ${client} … `);
          try {
            const r = await runWorker(args, URL);
            results.push(r);
            process.stderr.write(`${fmtRate(r.rate)}/s, ${r.cpuUsPerMsg.toFixed(2)} µs CPU${r.verified ? "" : ` — NOT VERIFIED: ${r.detail}`}\n`);
          } catch (e) {
            process.stderr.write(`failed\n${(e as Error).message}\n`);
          } finally {
            if (queue) await ch?.deleteQueue(queue).catch(() => undefined);
          }
          if (profiling && existsSync(prof)) {
            console.log(`\n${client}, ${s.title}: hottest functions by self time (${path.relative(ROOT, prof)})`);
            console.log(formatTop(JSON.parse(readFileSync(prof, "utf8")) as CpuProfile, 30, s.count));
          }
        }
      }
      all[s.id] = results;
      if (!profiling) console.log(`\n${table(s, results)}`);
    }
  } finally {
    await conn?.close().catch(() => undefined);
    stopFake?.();
  }
  console.log(`\ndone in ${((Date.now() - started) / 1000).toFixed(0)} s; load average now ${loadavg()[0]!.toFixed(1)}`);
  const json = value("json");
  if (json) writeFileSync(json, JSON.stringify({ node: process.version, rounds, quick, results: all }, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
