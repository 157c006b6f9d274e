/**
 * src/adapters/deno.ts's transport against a local Deno.listen server, without a broker: the write queue
 * (partial writes, order, bufferedAmount, onDrain), the read buffers it hands over, pauseReading, end(),
 * destroy(), the TLS settings Deno cannot honour, and the connect attempt under the client's signal.
 *
 *   npx deno test -A test/runtimes/deno/
 */
import { denoTransport, resolveConnectOptions, type Transport, TransportError, UsageError } from "../../../src/adapters/deno.ts";
import { pattern } from "../scenarios.ts";
import { concat } from "../../support/bytes.ts";

// deno-lint-ignore no-explicit-any
type DenoNs = typeof globalThis extends { Deno: infer D } ? D : any;
const Deno = (globalThis as unknown as { Deno: DenoNs }).Deno;

function assert(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`expected ${what}`);
}
function assertBytes(a: Uint8Array, b: Uint8Array, what: string): void {
  assert(a.byteLength === b.byteLength, `${what}: ${b.byteLength} bytes, got ${a.byteLength}`);
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) throw new Error(`${what}: bytes differ at ${i}`);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await sleep(5);
  }
}

/** Reads `conn` to its end. */
async function readAll(conn: { read(p: Uint8Array): Promise<number | null> }): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for (;;) {
    const buf = new Uint8Array(256 * 1024);
    const n = await conn.read(buf);
    if (n === null) return concat(chunks);
    chunks.push(buf.subarray(0, n));
  }
}

/** A listener, a transport connected to it, and the server side of that connection. */
async function pair(hwm = 64 * 1024) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const events = { drains: 0, closes: [] as unknown[], data: [] as Uint8Array[] };
  const t: Transport = await denoTransport(resolveConnectOptions(`amqp://127.0.0.1:${listener.addr.port}/`, { writeHighWaterMark: hwm }), {
    onData: (b) => events.data.push(b),
    onDrain: () => events.drains++,
    onClose: (e) => events.closes.push(e ?? "clean"),
  });
  const server = await accepted;
  listener.close();
  return { t, events, server };
}

Deno.test("Deno transport: queues writes past what the socket takes, in order, with backpressure and onDrain", async () => {
  const { t, events, server } = await pair();
  const sent: Uint8Array[] = [];
  let refused = 0;
  // The server reads nothing yet: the kernel's buffers fill and conn.write writes part of a chunk.
  for (let i = 0; i < 24; i++) {
    const bytes = pattern(1024 * 1024 + 13, i);
    sent.push(bytes);
    if (!t.write(bytes)) refused++;
  }
  assert(refused > 0, "write() to return false past the high-water mark");
  await sleep(50);
  assert(t.bufferedAmount > 64 * 1024, `a backlog while the peer does not read (got ${t.bufferedAmount})`);
  const drainsBefore = events.drains;
  t.end(); // flushes the queue, then closes
  const got = await readAll(server);
  assertBytes(got, concat(sent), "bytes received");
  assert(t.bufferedAmount === 0, "an empty queue at the end");
  assert(events.drains > drainsBefore, "onDrain once the queue fell");
  await until(() => events.closes.length > 0);
  assert(JSON.stringify(events.closes) === '["clean"]', `one clean close, got ${events.closes}`);
  server.close();
});

Deno.test("Deno transport: hands over read buffers it never reuses, for small and large reads", async () => {
  const { t, events, server } = await pair();
  const data = pattern(4 * 1024 * 1024 + 5, 9);
  // Small writes with pauses make small reads (copied out); then one large write makes full reads (handed over).
  let at = 0;
  for (let i = 0; i < 20; i++, at += 100) {
    await server.write(data.subarray(at, at + 100));
    await sleep(2);
  }
  while (at < data.byteLength) at += await server.write(data.subarray(at));
  await until(() => events.data.reduce((n, c) => n + c.byteLength, 0) >= data.byteLength);
  assert(events.data.length > 20, `many reads (got ${events.data.length})`);
  assert(events.data.some((c) => c.buffer.byteLength === c.byteLength), "a small read copied to its own buffer");
  assert(events.data.some((c) => c.byteLength >= 32 * 1024 && c.buffer.byteLength === 64 * 1024), "a large read handed over in its read buffer");
  // Had a buffer been read into again after it was handed over, an earlier chunk would have changed.
  assertBytes(concat(events.data), data, "bytes handed over");
  t.destroy();
  await until(() => events.closes.length > 0);
  server.close();
});

Deno.test("Deno transport: pauseReading(true) stops reading until pauseReading(false)", async () => {
  const { t, events, server } = await pair();
  t.pauseReading!(true);
  await sleep(10);
  await server.write(pattern(1000, 1));
  await sleep(100);
  // The read already pending when pausing may still complete; nothing is read after it.
  const seen = events.data.length;
  await server.write(pattern(1000, 2));
  await sleep(100);
  assert(events.data.length === seen, "no reads while paused");
  t.pauseReading!(false);
  await until(() => events.data.reduce((n, c) => n + c.byteLength, 0) === 2000);
  t.destroy();
  await until(() => events.closes.length > 0);
  server.close();
});

Deno.test("Deno transport: destroy() drops the queue and reports one close; the peer closing reports one too", async () => {
  const a = await pair();
  for (let i = 0; i < 12; i++) a.t.write(pattern(1024 * 1024, i));
  a.t.destroy();
  a.t.destroy();
  assert(a.t.bufferedAmount === 0, "an empty queue after destroy()");
  await until(() => a.events.closes.length > 0);
  await sleep(20);
  assert(a.events.closes.length === 1, "one close");
  a.server.close();

  const b = await pair();
  b.server.close();
  await until(() => b.events.closes.length > 0);
  assert(b.events.closes.length === 1, "one close when the peer closes");
});

Deno.test("Deno transport: a refused connection rejects with a TransportError naming the address", async () => {
  const err = await denoTransport(resolveConnectOptions("amqp://127.0.0.1:1/"), { onData() {}, onDrain() {}, onClose() {} }).catch((e: unknown) => e);
  assert(err instanceof TransportError, `a TransportError, got ${err}`);
  assert(/127\.0\.0\.1:1: ECONNREFUSED/.test(err.message), `the address and the code in "${err.message}"`);
});

Deno.test("Deno transport: refuses, with a UsageError naming the option, the TLS settings Deno cannot honour", async () => {
  const h = { onData() {}, onDrain() {}, onClose() {} };
  const cases: [string, Parameters<typeof resolveConnectOptions>[1], RegExp][] = [
    ["amqps://127.0.0.1:1/", { tls: { verify: false } }, /tls\.verify = false/],
    ["amqps://127.0.0.1:1/", { tls: { cert: "c", key: "k", passphrase: "p" } }, /passphrase/],
    ["amqps://localhost/", { socketPath: "/tmp/none.sock" }, /unix socket/],
    ["amqps://127.0.0.1:1/", { tls: { cert: "c" } }, /tls\.cert and tls\.key/],
    ["amqps://127.0.0.1:1/", { tls: { cert: "c", key: "k", servername: "other.example" } }, /servername/],
  ];
  for (const [url, options, re] of cases) {
    const err = await denoTransport(resolveConnectOptions(url, options), h).catch((e: unknown) => e);
    assert(err instanceof UsageError, `a UsageError for ${JSON.stringify(options)}, got ${err}`);
    assert(re.test(err.message), `${re} in "${err.message}"`);
  }
});

/** A listener that accepts and never says a word, counting connections and noticing each one close. */
function silentListener() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const state = { accepted: 0, closed: 0 };
  const conns: { close(): void }[] = [];
  const accepting = (async () => {
    try {
      for await (const c of listener) {
        state.accepted++;
        conns.push(c);
        // Reads (and drops) what the client sends, so that its hang-up is seen.
        void (async () => {
          const buf = new Uint8Array(4096);
          try {
            while ((await c.read(buf)) !== null);
          } catch {
            // reset
          }
          state.closed++;
        })();
      }
    } catch {
      // the listener closed
    }
  })();
  return {
    port: listener.addr.port as number,
    state,
    async close() {
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed already
        }
      }
      listener.close();
      await accepting;
    },
  };
}

function recorder() {
  const calls: string[] = [];
  return { calls, handlers: { onData: () => void calls.push("data"), onDrain: () => void calls.push("drain"), onClose: () => void calls.push("close") } };
}

for (const scheme of ["amqp", "amqps"]) {
  Deno.test(`Deno transport: an already-aborted signal rejects with its reason and opens no socket (${scheme})`, async () => {
    const srv = silentListener();
    const reason = new Error("aborted before the start");
    const { calls, handlers } = recorder();
    const err = await denoTransport(resolveConnectOptions(`${scheme}://localhost:${srv.port}/`), handlers, AbortSignal.abort(reason)).catch((e: unknown) => e);
    assert(err === reason, `the signal's reason, got ${err}`);
    await sleep(100);
    assert(srv.state.accepted === 0, `no connection, got ${srv.state.accepted}`);
    assert(calls.length === 0, `no handler call, got ${calls}`);
    await srv.close();
  });
}

Deno.test("Deno transport: an abort during a TLS handshake the peer never answers rejects at once, calling no handler", async () => {
  // What Deno cannot do: close the TCP socket under a TLS handshake. Closing a TlsConn mid-handshake
  // leaves a background task waiting for the handshake to finish before it shuts the socket down
  // (rustls-tokio-stream's Drop, with no timeout), so the socket stays open until the peer answers or hangs
  // up. It no longer keeps the process alive (see the connectionTimeout test below), and nothing more is
  // reported to the client.
  const srv = silentListener();
  const abort = new AbortController();
  const { calls, handlers } = recorder();
  const settled = denoTransport(resolveConnectOptions(`amqps://localhost:${srv.port}/`), handlers, abort.signal).catch((e: unknown) => e);
  await until(() => srv.state.accepted === 1, 2000);
  await sleep(20); // the ClientHello is out; the server never answers it
  const reason = new Error("given up");
  const t0 = performance.now();
  abort.abort(reason);
  const err = await settled;
  const ms = performance.now() - t0;
  assert(err === reason, `the signal's reason, got ${err}`);
  assert(ms < 200, `a rejection at once, took ${ms.toFixed(0)} ms`);
  await srv.close(); // the peer hangs up: Deno's handshake task ends and releases the socket
  await sleep(50);
  assert(calls.length === 0, `no handler call, got ${calls}`);
});

Deno.test("Deno transport: an abort after the connect resolved changes nothing", async () => {
  const srv = silentListener();
  const abort = new AbortController();
  const { calls, handlers } = recorder();
  const t = await denoTransport(resolveConnectOptions(`amqp://127.0.0.1:${srv.port}/`), handlers, abort.signal);
  abort.abort(new Error("too late"));
  t.write(pattern(100, 1));
  await sleep(50);
  assert(srv.state.closed === 0, "the connection still open");
  t.destroy();
  await until(() => calls.includes("close"));
  await sleep(20);
  const closes = calls.filter((c) => c === "close");
  assert(closes.length === 1 && calls.at(-1) === "close", `one close, last, got ${calls}`);
  await srv.close();
});

Deno.test("Deno transport: a TLS peer that never answers is given up at connectionTimeout, and the process can exit", async () => {
  // The client rejects at its deadline and aborts the transport's signal; a handshake left pending behind
  // it would keep Deno running. So: a child Deno connects to a server here that accepts and never answers,
  // prints the error, and must exit on its own.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: { close(): void }[] = [];
  const accepting = (async () => {
    for await (const c of listener) held.push(c);
  })();
  const adapter = new URL("../../../src/adapters/deno.ts", import.meta.url).href;
  const code = `const { connect } = await import(${JSON.stringify(adapter)});
const e = await connect("amqps://localhost:${listener.addr.port}/", { connectionTimeout: 300 }).catch((e) => e);
console.log(e.name);`;
  const child = new Deno.Command(Deno.execPath(), { args: ["eval", code], stdout: "piped", stderr: "piped" }).spawn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const exited = await Promise.race([
    child.output().then((o: { stdout: Uint8Array; stderr: Uint8Array }) => new TextDecoder().decode(o.stdout).trim() + new TextDecoder().decode(o.stderr)),
    new Promise<string>((r) => (timer = setTimeout(() => r("still running after 10 s"), 10_000))),
  ]);
  clearTimeout(timer);
  if (exited === "still running after 10 s") {
    child.kill();
    await child.status;
  }
  for (const c of held) c.close();
  listener.close();
  await accepting.catch(() => undefined);
  assert(exited === "ConnectTimeoutError", `the child to print ConnectTimeoutError and exit, got: ${exited}`);
});
