/// <reference types="bun" />
/**
 * src/adapters/bun.ts's transport against a local Bun.listen server, without a broker: the partial-write
 * handling (Bun's socket.write takes only what fits), the read buffers it hands over, end() and destroy(),
 * and the connect attempt under the client's signal.
 *
 *   npx bun test test/runtimes/bun/
 */
import { afterEach, describe, expect, test } from "bun:test";
import { bunTransport, resolveConnectOptions, type Transport } from "../../../src/adapters/bun.ts";
import { pattern } from "../scenarios.ts";
import { concat } from "../../support/bytes.ts";

type ServerSocket = Bun.Socket<undefined>;

/** A server whose first connection is handed to the test; it records everything it receives. */
function server(onOpen?: (s: ServerSocket) => void) {
  const received: Uint8Array[] = [];
  let ended!: () => void;
  const closed = new Promise<void>((r) => (ended = r));
  let socket: ServerSocket | undefined;
  const listener = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      binaryType: "uint8array",
      open(s) {
        socket = s;
        onOpen?.(s);
      },
      data(_s, d) {
        received.push(d.slice());
      },
      close() {
        ended();
      },
    },
  });
  return {
    port: listener.port,
    received,
    closed,
    get socket() {
      return socket;
    },
    bytes: () => concat(received),
    stop: () => listener.stop(true),
  };
}

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await Bun.sleep(5);
  }
}

function open(port: number, hwm = 64 * 1024) {
  const events = { drains: 0, closes: [] as unknown[], data: [] as Uint8Array[] };
  const t = bunTransport(resolveConnectOptions(`amqp://127.0.0.1:${port}/`, { writeHighWaterMark: hwm }), {
    onData: (b) => events.data.push(b),
    onDrain: () => events.drains++,
    onClose: (e) => events.closes.push(e ?? "clean"),
  });
  return { t, events };
}

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

describe("Bun transport", () => {
  test("keeps the tail of a partial write and writes it, in order, from drain", async () => {
    const srv = server((s) => s.pause());
    cleanup.push(srv.stop);
    const { t: opening, events } = open(srv.port);
    const t: Transport = await opening;
    await until(() => srv.socket !== undefined);
    // Chunks of an odd size, each different: a lost, repeated or reordered piece changes the bytes.
    const chunk = 1024 * 1024 + 13;
    const sent: Uint8Array[] = [];
    let refused = 0;
    let partialTail = false;
    for (let i = 0; i < 24; i++) {
      const bytes = pattern(chunk, i);
      sent.push(bytes);
      if (!t.write(bytes)) refused++;
      // A backlog that is not whole chunks means a write took part of a chunk and the rest was kept.
      if (t.bufferedAmount % chunk !== 0) partialTail = true;
    }
    expect(refused).toBeGreaterThan(0);
    expect(t.bufferedAmount).toBeGreaterThan(64 * 1024);
    expect(partialTail).toBe(true);
    const drainsBefore = events.drains;
    srv.socket!.resume();
    const total = sent.reduce((n, c) => n + c.byteLength, 0);
    await until(() => srv.received.reduce((n, c) => n + c.byteLength, 0) >= total);
    expect(t.bufferedAmount).toBe(0);
    expect(events.drains).toBeGreaterThan(drainsBefore);
    expect(srv.bytes()).toEqual(concat(sent));
    t.destroy();
    await until(() => events.closes.length > 0);
    expect(events.closes).toEqual(["clean"]);
  }, 60_000);

  test("end() writes the backlog first, then closes", async () => {
    const srv = server((s) => s.pause());
    cleanup.push(srv.stop);
    const { t: opening, events } = open(srv.port);
    const t = await opening;
    await until(() => srv.socket !== undefined);
    const sent = Array.from({ length: 12 }, (_, i) => pattern(1024 * 1024 + 1, 100 + i));
    for (const b of sent) t.write(b);
    expect(t.bufferedAmount).toBeGreaterThan(0);
    t.end();
    expect(t.write(pattern(10, 1))).toBe(true); // after end(): dropped, nothing to wait for
    srv.socket!.resume();
    await srv.closed;
    expect(srv.bytes()).toEqual(concat(sent));
    await until(() => events.closes.length > 0);
    expect(events.closes).toEqual(["clean"]);
  }, 60_000);

  test("destroy() drops the backlog and reports one close", async () => {
    const srv = server((s) => s.pause());
    cleanup.push(srv.stop);
    const { t: opening, events } = open(srv.port);
    const t = await opening;
    for (let i = 0; i < 12; i++) t.write(pattern(1024 * 1024, i));
    expect(t.bufferedAmount).toBeGreaterThan(0);
    t.destroy();
    expect(t.bufferedAmount).toBe(0);
    t.destroy();
    await until(() => events.closes.length > 0);
    await Bun.sleep(20);
    expect(events.closes.length).toBe(1);
  });

  test("hands over read buffers that Bun does not reuse", async () => {
    const n = 8 * 1024 * 1024;
    const data = pattern(n, 7);
    const srv = server((s) => {
      let at = 0;
      const push = () => {
        while (at < n) {
          const w = s.write(data.subarray(at, Math.min(n, at + 65536)));
          if (w <= 0) return;
          at += w;
        }
      };
      (s as unknown as { push: () => void }).push = push;
      push();
    });
    cleanup.push(srv.stop);
    // The server's drain handler is not wired; poll its push instead.
    const { t: opening, events } = open(srv.port);
    const t = await opening;
    await until(() => {
      (srv.socket as unknown as { push?: () => void } | undefined)?.push?.();
      return events.data.reduce((s, c) => s + c.byteLength, 0) >= n;
    });
    // Every chunk was kept as handed over, without a copy: had Bun refilled a buffer it passed earlier, the
    // concatenation would differ.
    expect(events.data.length).toBeGreaterThan(1);
    expect(concat(events.data)).toEqual(data);
    t.destroy();
  }, 60_000);

  test("pauseReading(true) stops data callbacks until pauseReading(false)", async () => {
    const srv = server();
    cleanup.push(srv.stop);
    const { t: opening, events } = open(srv.port);
    const t = await opening;
    await until(() => srv.socket !== undefined);
    t.pauseReading!(true);
    srv.socket!.write(pattern(1000, 1));
    await Bun.sleep(150);
    expect(events.data.length).toBe(0);
    t.pauseReading!(false);
    await until(() => events.data.reduce((n, c) => n + c.byteLength, 0) === 1000);
    t.destroy();
  });

  test("rejects a refused connection with a TransportError naming the address", async () => {
    const { t } = open(1);
    const err = (await t.catch((e: unknown) => e)) as Error;
    expect(err.name).toBe("TransportError");
    expect(err.message).toContain("127.0.0.1:1");
    expect(err.message).toMatch(/ECONNREFUSED/);
  });
});

/** A listener that accepts and never says a word, counting connections and noticing each one close. */
function silentListener() {
  const state = { accepted: 0, closed: 0 };
  const listener = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open() {
        state.accepted++;
      },
      data() {},
      close() {
        state.closed++;
      },
    },
  });
  cleanup.push(() => listener.stop(true));
  return { port: listener.port, state };
}

function recorder() {
  const calls: string[] = [];
  return { calls, handlers: { onData: () => void calls.push("data"), onDrain: () => void calls.push("drain"), onClose: () => void calls.push("close") } };
}

describe("Bun transport under the client's signal", () => {
  for (const scheme of ["amqp", "amqps"]) {
    test(`an already-aborted signal rejects with its reason and opens no socket (${scheme})`, async () => {
      const srv = silentListener();
      const reason = new Error("aborted before the start");
      const { calls, handlers } = recorder();
      const err = await bunTransport(resolveConnectOptions(`${scheme}://localhost:${srv.port}/`), handlers, AbortSignal.abort(reason)).catch((e: unknown) => e);
      expect(err).toBe(reason);
      await Bun.sleep(100);
      expect(srv.state.accepted).toBe(0);
      expect(calls).toEqual([]);
    });
  }

  test("an abort during a TLS handshake the peer never answers rejects at once and closes the socket", async () => {
    const srv = silentListener();
    const abort = new AbortController();
    const { calls, handlers } = recorder();
    const settled = bunTransport(resolveConnectOptions(`amqps://localhost:${srv.port}/`), handlers, abort.signal).catch((e: unknown) => e);
    await until(() => srv.state.accepted === 1, 2000);
    await Bun.sleep(20); // the ClientHello is out; the server never answers it
    const reason = new Error("given up");
    const t0 = performance.now();
    abort.abort(reason);
    expect(await settled).toBe(reason);
    expect(performance.now() - t0).toBeLessThan(200);
    await until(() => srv.state.closed === 1, 2000);
    await Bun.sleep(20);
    expect(calls).toEqual([]);
  });

  test("an abort after the connect resolved changes nothing", async () => {
    const srv = server();
    cleanup.push(srv.stop);
    const abort = new AbortController();
    const { calls, handlers } = recorder();
    const t = await bunTransport(resolveConnectOptions(`amqp://127.0.0.1:${srv.port}/`), handlers, abort.signal);
    abort.abort(new Error("too late"));
    t.write(pattern(100, 1));
    await until(() => srv.received.reduce((n, c) => n + c.byteLength, 0) === 100);
    expect(srv.bytes()).toEqual(pattern(100, 1));
    t.destroy();
    await until(() => calls.includes("close"));
    await Bun.sleep(20);
    expect(calls).toEqual(["close"]);
  });
});
