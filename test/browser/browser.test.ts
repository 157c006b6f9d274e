/**
 * The browser example in headless Chromium: the page loads warren's compiled ES modules (no bundler),
 * connects through warren-relay with the WebSocket adapter, publishes N messages with confirms to a queue
 * named after a unique marker, consumes them back and lists them. The test reads the list from the DOM and
 * checks from Node, over TCP, that the broker has the queue the page declared — drained and acked.
 *
 * Needs the broker of `scripts/broker.sh ensure` and Debian's Chromium at /usr/bin/chromium (never
 * downloaded). warren is compiled into a temporary directory, so the test neither needs nor touches dist/.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BrowserContext, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../../src/adapters/node.ts";
import { startStaticServer } from "../../examples/browser/serve.mjs";
import { Relay } from "../../src/relay/relay.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** Debian's Chromium (WARREN_CHROMIUM overrides). Without one, the browser tests are skipped, never downloaded. */
const CHROMIUM = process.env.WARREN_CHROMIUM ?? "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const N = 20;

let build: string;
let profile: string;
let site: { url: string; close(): Promise<void> };
let relay: Relay;
let relayUrl: string;
let browser: BrowserContext | undefined;
const relayLog: string[] = [];

function compile(outDir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(ROOT, "tsconfig.build.json"), "--outDir", outDir, "--declaration", "false", "--sourceMap", "false"],
      { cwd: ROOT, timeout: 120_000 },
      (err, stdout, stderr) => {
        // Type errors elsewhere in src/ still emit JavaScript; what matters is that the adapter was built.
        if (existsSync(join(outDir, "adapters/websocket.js"))) resolve();
        else reject(new Error(`tsc did not emit the WebSocket adapter: ${err?.message ?? ""}\n${stdout}\n${stderr}`));
      },
    );
  });
}

beforeAll(async () => {
  if (!HAVE_CHROMIUM) return;
  build = mkdtempSync(join(tmpdir(), "warren-browser-build-"));
  profile = mkdtempSync(join(tmpdir(), "warren-browser-profile-"));
  await compile(build);
  site = await startStaticServer({ dist: build });
  // The relay admits this page's origin only, as a real deployment should.
  relay = new Relay({ upstreams: ["127.0.0.1:5672"], origins: [site.url.replace(/\/$/, "")], log: (l) => relayLog.push(l) });
  relayUrl = (await relay.listen(0, "127.0.0.1")).url;
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}, 180_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await relay?.close();
  await site?.close();
  for (const dir of [build, profile]) if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

// CI installs Chromium and sets CI=true: there a missing browser is a failure, not a skip.
if (!HAVE_CHROMIUM && process.env.CI) throw new Error(`Chromium not found at ${CHROMIUM}; .ci/run installs it with apt-get`);

describe.skipIf(!HAVE_CHROMIUM)(`the browser example (in ${CHROMIUM})`, () => {
  it(`publishes ${N} messages through the relay and RabbitMQ and shows them consumed`, async () => {
    const marker = randomBytes(6).toString("hex");
    const page = await browser!.newPage();
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console: ${m.text()}`);
    });
    page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ""}`));

    await page.goto(`${site.url}?autorun=1&n=${N}&marker=${marker}&relay=${encodeURIComponent(relayUrl)}`, { timeout: 30_000 });
    await page.waitForSelector('body[data-state="done"], body[data-state="error"]', { timeout: 45_000 });
    const state = await page.evaluate(() => document.body.dataset.state);
    const status = await page.textContent("#status");
    const log = await page.$$eval("#log li", (lis) => lis.map((li) => li.textContent ?? ""));
    expect({ state, status, problems }, log.join("\n")).toMatchObject({ state: "done", problems: [] });

    const received = await page.$$eval("#received li", (lis) => lis.map((li) => li.textContent ?? ""));
    expect(received).toEqual(Array.from({ length: N }, (_, i) => `hello ${i + 1} of ${N} from the browser [${marker}]`));
    expect(await page.evaluate(() => document.body.dataset.server)).toMatch(/^RabbitMQ /);
    // The page ran in a real browser, over the WebSocket adapter (its platform string says so).
    expect(await page.evaluate(() => navigator.userAgent)).toMatch(/Chrome\//);
    await page.close();

    // From Node, over TCP: the broker has the queue the page declared, with every message consumed and acked.
    const conn = await connect("amqp://guest:guest@127.0.0.1:5672/");
    try {
      const ch = await conn.openChannel();
      const queue = `warren.browser.${marker}`;
      const ok = await ch.queueDeclare(queue, { passive: true });
      expect(ok).toMatchObject({ queue, messageCount: 0, consumerCount: 0 });
      await ch.queueDelete(queue);
    } finally {
      await conn.close();
    }
    // One tunnel was opened for the page, to the default upstream, and it is closed again.
    expect(relayLog.filter((l) => /: open$/.test(l))).toHaveLength(1);
    expect(relayLog.find((l) => /: open$/.test(l))).toMatch(/→ 127\.0\.0\.1:5672: open$/);
    for (let i = 0; i < 100 && relay.stats().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(relay.stats()).toEqual([]);
  }, 90_000);

  it("a page from another origin is refused by the relay", async () => {
    const page = await browser!.newPage();
    try {
      // about:blank has an opaque origin ("null"), not the example's.
      const outcome = await page.evaluate(
        (url) =>
          new Promise<string>((resolve) => {
            const ws = new WebSocket(url);
            ws.onopen = () => resolve("open");
            ws.onclose = (e) => resolve(`closed ${e.code}`);
          }),
        relayUrl,
      );
      expect(outcome).toBe("closed 1006");
      expect(relayLog.some((l) => /403 origin null is not allowed/.test(l))).toBe(true);
    } finally {
      await page.close();
    }
  }, 30_000);
});
