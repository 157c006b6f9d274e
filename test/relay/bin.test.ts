/**
 * The `warren-relay` executable as npm installs it: bin/warren-relay.mjs running the compiled relay from
 * dist/. warren is compiled into a temporary directory laid out like the package (bin/ next to dist/), so
 * the test neither needs nor touches the repository's dist/.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { echoUpstream, type TestUpstream, within } from "./helpers.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
let pkg: string;
let upstream: TestUpstream & { received: () => Buffer };
const children: ChildProcess[] = [];

beforeAll(async () => {
  pkg = mkdtempSync(join(tmpdir(), "warren-relay-bin-"));
  mkdirSync(join(pkg, "bin"));
  copyFileSync(join(ROOT, "bin/warren-relay.mjs"), join(pkg, "bin/warren-relay.mjs"));
  await new Promise<void>((resolve, reject) =>
    execFile(
      process.execPath,
      [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(ROOT, "tsconfig.build.json"), "--outDir", join(pkg, "dist"), "--declaration", "false", "--sourceMap", "false"],
      { cwd: ROOT, timeout: 120_000 },
      // Type errors elsewhere in src/ still emit JavaScript; what matters is that the relay was built.
      (err, stdout) => (existsSync(join(pkg, "dist/relay/cli.js")) ? resolve() : reject(new Error(`tsc did not emit the relay: ${err?.message}\n${stdout}`))),
    ),
  );
  upstream = await echoUpstream();
}, 120_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  await upstream?.close();
  if (pkg) rmSync(pkg, { recursive: true, force: true });
});

/** Starts the bin; resolves with the process and the first line it printed. */
function run(args: string[]): Promise<{ child: ChildProcess; firstLine: string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [join(pkg, "bin/warren-relay.mjs"), ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let out = "";
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  return within(
    10_000,
    new Promise((resolve, reject) => {
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const nl = out.indexOf("\n");
        if (nl >= 0) resolve({ child, firstLine: out.slice(0, nl), exited });
      });
      void exited.then((code) => reject(new Error(`warren-relay exited with ${code}: ${out}${err}`)));
    }),
    "warren-relay start",
  );
}

describe("the warren-relay executable", () => {
  it("listens where --listen says, relays to --upstream, and stops on SIGTERM", async () => {
    const { child, firstLine, exited } = await run(["--listen", "127.0.0.1:0", "--upstream", upstream.address, "--quiet"]);
    const m = /^warren-relay listening on (ws:\/\/127\.0\.0\.1:\d+\/) → (\S+)$/.exec(firstLine);
    expect(m, firstLine).not.toBeNull();
    expect(m![2]).toBe(upstream.address);
    const ws = new WebSocket(m![1]!);
    const echoed = within(5000, new Promise<Buffer>((resolve, reject) => {
      ws.once("message", (d: Buffer) => resolve(d));
      ws.once("error", reject);
    }), "echo");
    ws.once("open", () => ws.send(Buffer.from("ping through the bin")));
    expect((await echoed).toString()).toBe("ping through the bin");
    const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await within(10_000, closed, "close")).toBe(1001);
    expect(await within(10_000, exited, "exit")).toBe(0);
  });

  it("exits with 2 and the usage on a bad argument", async () => {
    const child = spawn(process.execPath, [join(pkg, "bin/warren-relay.mjs"), "--upstream", "nope"], { stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    const code = await within(10_000, new Promise<number | null>((resolve) => child.once("exit", resolve)), "exit");
    expect(code).toBe(2);
    expect(err).toMatch(/Invalid upstream "nope"[\s\S]*Usage: warren-relay/);
  });
});
