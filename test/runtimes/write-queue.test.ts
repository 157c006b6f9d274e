/**
 * src/adapters/write-queue.ts, the partial-write queue Bun and Deno share, against fake sockets: a
 * synchronous one that takes only what fits (Bun's socket.write) and an asynchronous one whose writes settle
 * when the test says so (Deno's conn.write). What it must keep: every byte once, in order, the tail of a
 * partial write first; bufferedAmount; write() false above the client's high-water mark; onDrain once the
 * backlog is back at the mark, never from inside write(); nothing after clear().
 */
import { describe, expect, it } from "vitest";
import { type PartialWriter, WriteQueue } from "../../src/adapters/write-queue.ts";
import { concat } from "../support/bytes.ts";
import { pattern } from "./scenarios.ts";

/** A socket like Bun's: each write takes at most what is left of `room`, and says how much it took. */
function syncSocket(room = Infinity) {
  const taken: Uint8Array[] = [];
  const offered: Uint8Array[] = [];
  const socket = {
    room,
    closing: false,
    taken,
    takenBytes: 0,
    offered,
    write(bytes: Uint8Array): number {
      offered.push(bytes);
      if (socket.closing) return -1;
      const n = Math.min(bytes.byteLength, socket.room);
      socket.room -= n;
      socket.takenBytes += n;
      if (n > 0) taken.push(bytes.slice(0, n));
      return n;
    },
    bytes: () => concat(taken),
  };
  return socket;
}

/** A socket like Deno's: each write is a promise the test settles, with how many bytes it wrote. */
function asyncSocket() {
  const pending: { bytes: Uint8Array; settle(n: number): void; fail(e: unknown): void }[] = [];
  const taken: Uint8Array[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const socket: PartialWriter & Record<string, unknown> = {
    write(bytes: Uint8Array): Promise<number> {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      return new Promise((resolve, reject) =>
        pending.push({
          bytes,
          settle(n) {
            inFlight--;
            taken.push(bytes.slice(0, n));
            resolve(n);
          },
          fail(e) {
            inFlight--;
            reject(e);
          },
        }),
      );
    },
  };
  return {
    socket,
    pending,
    taken,
    get maxInFlight() {
      return maxInFlight;
    },
    /** Settles the oldest write with `n` bytes written (all of them by default), then lets the queue go on. */
    async complete(n?: number) {
      const w = pending.shift();
      if (!w) throw new Error("no write pending");
      w.settle(n ?? w.bytes.byteLength);
      await new Promise((r) => setTimeout(r, 0));
    },
    bytes: () => concat(taken),
  };
}

function events() {
  const e = { drains: 0, idles: 0, errors: [] as unknown[], inWrite: false, drainInsideWrite: false };
  return {
    e,
    handlers: {
      onDrain: () => {
        e.drains++;
        if (e.inWrite) e.drainInsideWrite = true;
      },
      onIdle: () => void e.idles++,
      onError: (err: unknown) => void e.errors.push(err),
    },
  };
}

describe("WriteQueue over a synchronous socket (Bun)", () => {
  it("writes at once what the socket takes, and keeps nothing", () => {
    const s = syncSocket();
    const { e, handlers } = events();
    const q = new WriteQueue(s, 100, handlers);
    expect(q.write(pattern(500, 1))).toBe(true);
    expect(q.bufferedAmount).toBe(0);
    expect(q.empty).toBe(true);
    expect(s.bytes()).toEqual(pattern(500, 1));
    expect(e.drains).toBe(0); // nothing had to wait
  });

  it("keeps the tail of a partial write and writes it, before anything queued later, on drain()", () => {
    const s = syncSocket(300);
    const { e, handlers } = events();
    const q = new WriteQueue(s, 10_000, handlers);
    const a = pattern(500, 1);
    const b = pattern(400, 2);
    q.write(a);
    expect(q.bufferedAmount).toBe(200);
    q.write(b);
    expect(q.bufferedAmount).toBe(600);
    // The socket was full: b was not offered ahead of a's tail.
    expect(s.offered).toHaveLength(1);
    s.room = 250;
    q.drain();
    expect(q.bufferedAmount).toBe(350);
    s.room = Infinity;
    q.drain();
    expect(q.bufferedAmount).toBe(0);
    expect(s.bytes()).toEqual(concat([a, b]));
    expect(e.drains).toBe(2);
    expect(e.idles).toBe(1);
  });

  it("hands the socket views of the caller's buffers, never copies or changes them", () => {
    const s = syncSocket(10);
    const q = new WriteQueue(s, 1000, events().handlers);
    const a = pattern(25, 3);
    const before = a.slice();
    q.write(a);
    s.room = Infinity;
    q.drain();
    expect(s.offered.every((v) => v.buffer === a.buffer)).toBe(true);
    expect(s.offered.map((v) => v.byteOffset)).toEqual([0, 10]);
    expect(a).toEqual(before);
  });

  it("treats a write that takes 0 bytes (a full socket) as a partial write, and a 0-byte buffer as nothing", () => {
    const s = syncSocket(0);
    const { e, handlers } = events();
    const q = new WriteQueue(s, 1000, handlers);
    expect(q.write(new Uint8Array(0))).toBe(true);
    expect(s.offered).toHaveLength(0);
    q.write(pattern(50, 4));
    expect(q.bufferedAmount).toBe(50);
    q.drain(); // still full: nothing taken, nothing to report
    expect(q.bufferedAmount).toBe(50);
    expect(e.drains).toBe(0);
    q.write(new Uint8Array(0));
    s.room = Infinity;
    q.drain();
    expect(s.bytes()).toEqual(pattern(50, 4));
    expect(e.drains).toBe(1);
  });

  it("returns false above the high-water mark and reports onDrain from drain() once the backlog is back at the mark", () => {
    const s = syncSocket(0);
    const { e, handlers } = events();
    const q = new WriteQueue(s, 1000, handlers);
    e.inWrite = true;
    expect(q.write(pattern(1000, 1))).toBe(true); // at the mark: still true
    expect(q.write(pattern(1, 2))).toBe(false);
    e.inWrite = false;
    expect(q.bufferedAmount).toBe(1001);
    s.room = 0;
    q.drain();
    expect(e.drains).toBe(0);
    s.room = 500; // down to 501: at or below the mark, though not empty
    q.drain();
    expect(q.bufferedAmount).toBe(501);
    expect(e.drains).toBe(1);
    expect(e.idles).toBe(0);
    expect(e.drainInsideWrite).toBe(false);
  });

  it("never reports onDrain from inside write(), even when a write empties an old backlog", () => {
    const s = syncSocket(0);
    const { e, handlers } = events();
    const q = new WriteQueue(s, 10, handlers);
    q.write(pattern(20, 1));
    s.room = Infinity;
    e.inWrite = true;
    // A new write finds the queue non-empty: it only queues, behind the backlog (drain() writes both).
    q.write(pattern(5, 2));
    e.inWrite = false;
    expect(s.offered).toHaveLength(1);
    q.drain();
    expect(e.drainInsideWrite).toBe(false);
    expect(s.bytes()).toEqual(concat([pattern(20, 1), pattern(5, 2)]));
  });

  it("accepts writes made from inside onDrain, in order", () => {
    const s = syncSocket(0);
    const extra = pattern(30, 9);
    let q!: WriteQueue;
    let once = false;
    q = new WriteQueue(s, 100, {
      onDrain: () => {
        if (once) return;
        once = true;
        q.write(extra);
      },
      onError: () => undefined,
    });
    q.write(pattern(150, 8));
    s.room = Infinity;
    q.drain();
    expect(s.bytes()).toEqual(concat([pattern(150, 8), extra]));
    expect(q.bufferedAmount).toBe(0);
  });

  it("stops at a socket that is closing (a negative count) and writes nothing after clear()", () => {
    const s = syncSocket(0);
    const { e, handlers } = events();
    const q = new WriteQueue(s, 100, handlers);
    q.write(pattern(40, 1));
    s.closing = true;
    q.drain();
    expect(q.bufferedAmount).toBe(40);
    q.clear();
    expect(q.bufferedAmount).toBe(0);
    expect(q.empty).toBe(true);
    const offered = s.offered.length;
    expect(q.write(pattern(10, 2))).toBe(true); // dropped: nothing to wait for
    q.drain();
    expect(s.offered).toHaveLength(offered);
    expect(e.drains + e.idles).toBe(0);
  });

  it("delivers every byte once, in order, for random chunk sizes and socket room (bounded run)", () => {
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const started = performance.now();
    for (let run = 0; run < 200 && performance.now() - started < 3000; run++) {
      const s = syncSocket(rand(3000));
      const q = new WriteQueue(s, 2000, events().handlers);
      const sent: Uint8Array[] = [];
      let total = 0;
      for (let i = 0; i < 40; i++) {
        const bytes = pattern(rand(700), run * 100 + i);
        sent.push(bytes);
        total += bytes.byteLength;
        const ok = q.write(bytes);
        expect(q.bufferedAmount).toBe(total - s.takenBytes);
        expect(ok).toBe(q.bufferedAmount <= 2000);
        if (rand(3) === 0) {
          s.room = rand(2000);
          q.drain();
        }
      }
      s.room = Infinity;
      q.drain();
      // Compared as Buffers: toEqual on large byte arrays is slow.
      expect(Buffer.from(s.bytes()).equals(concat(sent)), `run ${run}: the bytes, in order`).toBe(true);
      expect(q.bufferedAmount).toBe(0);
    }
  });

  it("keeps order through a long backlog that never empties (thousands of queued chunks)", () => {
    const s = syncSocket(0);
    const q = new WriteQueue(s, 1 << 20, events().handlers);
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 5000; i++) {
      const bytes = pattern(3, i);
      sent.push(bytes);
      q.write(bytes);
      if (i % 2 === 1) {
        s.room = 4; // a little less than what was queued since the last drain
        q.drain();
      }
    }
    expect(q.bufferedAmount).toBeGreaterThan(0);
    s.room = Infinity;
    q.drain();
    expect(Buffer.from(s.bytes()).equals(concat(sent))).toBe(true);
  });
});

describe("WriteQueue over an asynchronous socket (Deno)", () => {
  it("writes one chunk at a time, the rest of a partial write before the next chunk", async () => {
    const s = asyncSocket();
    const { e, handlers } = events();
    const q = new WriteQueue(s.socket, 10_000, handlers);
    const a = pattern(100, 1);
    const b = pattern(50, 2);
    q.write(a);
    q.write(b);
    expect(s.pending).toHaveLength(1);
    expect(q.bufferedAmount).toBe(150);
    await s.complete(30); // partial
    expect(q.bufferedAmount).toBe(120);
    expect(s.pending[0]!.bytes.byteLength).toBe(70); // a's tail, not b
    await s.complete();
    await s.complete();
    expect(s.pending).toHaveLength(0);
    expect(s.maxInFlight).toBe(1);
    expect(s.bytes()).toEqual(concat([a, b]));
    expect(q.empty).toBe(true);
    expect(e.idles).toBe(1);
  });

  it("returns false above the mark and reports onDrain when a write completes at or below it", async () => {
    const s = asyncSocket();
    const { e, handlers } = events();
    const q = new WriteQueue(s.socket, 100, handlers);
    e.inWrite = true;
    expect(q.write(pattern(80, 1))).toBe(true);
    expect(q.write(pattern(80, 2))).toBe(false);
    e.inWrite = false;
    await s.complete(); // 80 left: at or below the mark
    expect(q.bufferedAmount).toBe(80);
    expect(e.drains).toBe(1);
    await s.complete();
    expect(e.drains).toBe(2);
    expect(e.drainInsideWrite).toBe(false);
  });

  it("queues writes made while a write is under way behind it, and writes them in order", async () => {
    const s = asyncSocket();
    const q = new WriteQueue(s.socket, 1 << 20, events().handlers);
    const sent = Array.from({ length: 10 }, (_, i) => pattern(10 + i, i));
    q.write(sent[0]!);
    for (const b of sent.slice(1)) q.write(b);
    for (let i = 0; i < 10; i++) await s.complete(i % 2 === 0 ? undefined : 3);
    while (s.pending.length > 0) await s.complete();
    expect(s.maxInFlight).toBe(1);
    expect(s.bytes()).toEqual(concat(sent));
  });

  it("reports a failed write once through onError and drops the queue", async () => {
    const s = asyncSocket();
    const { e, handlers } = events();
    const q = new WriteQueue(s.socket, 100, handlers);
    q.write(pattern(10, 1));
    q.write(pattern(10, 2));
    const boom = new Error("broken pipe");
    s.pending.shift()!.fail(boom);
    await new Promise((r) => setTimeout(r, 0));
    expect(e.errors).toEqual([boom]);
    expect(q.bufferedAmount).toBe(0);
    expect(s.pending).toHaveLength(0);
    expect(q.write(pattern(5, 3))).toBe(true);
    expect(s.pending).toHaveLength(0);
  });

  it("ignores a write that settles after clear(): nothing more is written or reported", async () => {
    const s = asyncSocket();
    const { e, handlers } = events();
    const q = new WriteQueue(s.socket, 100, handlers);
    q.write(pattern(10, 1));
    q.write(pattern(10, 2));
    q.clear();
    await s.complete();
    expect(s.pending).toHaveLength(0);
    expect(e.drains + e.idles + e.errors.length).toBe(0);
  });
});
