/**
 * A disposable RabbitMQ node of a test's own, for tests that stop, kill -9 or restart a broker: the shared
 * test broker on 127.0.0.1:5672 is never touched (vitest runs test files in parallel, and they all use it).
 *
 *   const node = await startBrokerNode({ name: "warren-restart", port: 5690 });
 *   await node.kill9();      // the beam process dies at once, no AMQP close, nothing flushed
 *   await node.start();      // resolves once AMQP answers again; durable queues and persistent messages are back
 *   await node.dispose();    // kills it and removes its data directory
 *
 * The node is started through scripts/broker.sh (installs rabbitmq-server if missing; every listener, the
 * Erlang distribution and epmd on 127.0.0.1) with its own name, directory and ports:
 *
 *   node       <name>@localhost
 *   directory  /tmp/warren-node-<name>     kept across stop/kill9/start (the mnesia data), removed by dispose()
 *   AMQP       127.0.0.1:<port>             Erlang distribution on <port> + 20000 (broker.sh's rule)
 *
 * One node boots in about 5 s here. A node left running by an interrupted run of the same test (its pid file
 * in the directory names a live process) is killed and its directory wiped by the next startBrokerNode; a
 * port that answers for anything else is an error, never reused. If the test process exits without
 * dispose(), the node is killed on the way out.
 */
import { execFile } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { alive } from "./tls-broker.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface BrokerNodeOptions {
  /** The node's short name; the Erlang node is `<name>@localhost`. Letters, digits, '-' and '_'. */
  name: string;
  /** Its AMQP port on 127.0.0.1; <port> + 20000 must be free too. */
  port: number;
  /** Milliseconds allowed for one boot. Default 60000. */
  bootTimeoutMs?: number;
}

export interface BrokerNode {
  /** The Erlang node name, e.g. "warren-restart@localhost". */
  readonly node: string;
  readonly port: number;
  /** amqp://guest:guest@127.0.0.1:<port>/ */
  readonly url: string;
  readonly dir: string;
  /** Starts the node (from its kept data); resolves once it answers AMQP. No-op when it answers already. */
  start(): Promise<void>;
  /** Stops the node cleanly (rabbitmqctl stop); resolves once the process is gone. */
  stop(): Promise<void>;
  /** SIGKILL to the node's beam process; resolves once the process is gone and the port refuses. */
  kill9(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
  /** Runs rabbitmqctl against this node; resolves with its standard output. */
  ctl(args: readonly string[]): Promise<string>;
  /** The beam process's pid while the node runs (from its pid file), else undefined. */
  pid(): number | undefined;
  /** Kills the node and removes its directory. The object is unusable afterwards. */
  dispose(): Promise<void>;
}

function run(args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("bash", ["scripts/broker.sh", ...args], { cwd: ROOT, env, timeout: timeoutMs, encoding: "utf8", maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`scripts/broker.sh ${args.join(" ")} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}


/** True when something accepts a TCP connection on 127.0.0.1:port (within 1 s). Never throws. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 1000);
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
  });
}

/** Polls `check` every 50 ms; false when `ms` passed first. */
async function until(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  for (let i = 0; i < 10_000; i++) {
    if (await check()) return true;
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

/** Starts a fresh node (an empty data directory) and resolves once it answers AMQP. */
export async function startBrokerNode(o: BrokerNodeOptions): Promise<BrokerNode> {
  if (!/^[A-Za-z0-9_-]+$/.test(o.name)) throw new Error(`startBrokerNode: bad node name ${JSON.stringify(o.name)}`);
  if (!Number.isInteger(o.port) || o.port < 1024 || o.port > 45_535) throw new Error(`startBrokerNode: port ${o.port} must leave room for its distribution port (+20000)`);
  const node = `${o.name}@localhost`;
  const dir = `/tmp/warren-node-${o.name}`;
  const pidFile = join(dir, "rabbitmq.pid");
  const bootTimeoutMs = o.bootTimeoutMs ?? 60_000;
  const env: NodeJS.ProcessEnv = { ...process.env, WARREN_BROKER_NODE: node, WARREN_BROKER_DIR: dir, WARREN_BROKER_PORT: String(o.port) };

  const pid = (): number | undefined => {
    let n = NaN;
    try {
      n = Number(readFileSync(pidFile, "utf8").trim());
    } catch {
      return undefined;
    }
    return Number.isInteger(n) && n > 0 && alive(n) ? n : undefined;
  };
  const gone = async (p: number, what: string) => {
    if (!(await until(() => !alive(p), 30_000))) throw new Error(`${node}: pid ${p} still runs 30 s after ${what}`);
    if (!(await until(async () => !(await listening(o.port)), 10_000))) throw new Error(`${node}: port ${o.port} still accepts after ${what}`);
  };
  const kill9 = async () => {
    const p = pid();
    if (p === undefined) return;
    process.kill(p, "SIGKILL");
    await gone(p, "kill -9");
  };

  // A node from an interrupted run of this test: kill it, and start from nothing.
  await kill9();
  rmSync(dir, { recursive: true, force: true });
  if (await listening(o.port)) throw new Error(`startBrokerNode: something else listens on 127.0.0.1:${o.port}; pick another port for ${node}`);

  let disposed = false;
  const onExit = () => {
    const p = pid();
    if (p !== undefined) process.kill(p, "SIGKILL");
  };
  process.once("exit", onExit);
  const usable = () => {
    if (disposed) throw new Error(`${node} was disposed`);
  };

  const start = async () => {
    usable();
    // broker.sh waits until the node answers the AMQP header with connection.start, or fails with its log.
    await run(["start"], env, bootTimeoutMs + 10_000);
    if (pid() === undefined) throw new Error(`${node}: answers on ${o.port} but its pid file ${pidFile} names no live process`);
  };
  const stop = async () => {
    usable();
    const p = pid();
    if (p === undefined) return;
    await run(["stop"], env, 60_000);
    await gone(p, "stop");
  };
  const handle: BrokerNode = {
    node,
    port: o.port,
    url: `amqp://guest:guest@127.0.0.1:${o.port}/`,
    dir,
    start,
    stop,
    async kill9() {
      usable();
      await kill9();
    },
    async restart() {
      await stop();
      await start();
    },
    async ctl(args) {
      usable();
      return run(["ctl", ...args], env, 60_000);
    },
    pid,
    async dispose() {
      if (disposed) return;
      disposed = true;
      process.off("exit", onExit);
      await kill9();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await start();
  } catch (e) {
    await handle.dispose().catch(() => undefined);
    throw e;
  }
  return handle;
}
