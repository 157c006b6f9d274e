/**
 * A TCP fault proxy for tests: it listens on 127.0.0.1 (a port of its own) and forwards each connection to an
 * upstream (the broker by default), and a test can make the network between them misbehave at any moment.
 *
 *   pass()          every fault off: bytes flow as they came
 *   reset()         every current connection is reset on both sides (RST, `resetAndDestroy`): a network failure
 *   blackhole(on)   sockets stay open, every byte in both directions is dropped (a dead peer, a cut cable)
 *   refuse(on)      new connections are reset the moment they are accepted; existing ones are untouched
 *   latency(ms)     each chunk is delivered `ms` later (per direction, so a round trip grows by 2·ms), in order
 *   pause()/resume()  stop/restart reading what clients send (their sockets back up; broker→client flows on)
 *   setUpstream(t)  where new connections go (existing ones keep theirs): a failover, a moved broker
 *
 * Modes apply at once to existing and new connections, and combine (a paused, delayed link stays both).
 *
 * Invariants:
 * - Nothing grows without bound. A blackhole drops bytes as they arrive, it never queues them. Delayed bytes
 *   wait in a per-direction queue capped at MAX_QUEUED bytes: above it the proxy stops reading that side (TCP
 *   backpressure towards the sender), as it does when the receiving socket's buffer is full.
 * - Order is kept: with a latency, a chunk is never delivered before an earlier one, even when the delay is
 *   shortened while chunks wait.
 * - Connection teardown passes through in every mode: an end (FIN) is forwarded after the bytes queued
 *   before it, a reset or error on one side resets the other, a close on one side closes the other.
 * - Loopback only: the proxy listens on 127.0.0.1 and is meant to point at 127.0.0.1.
 *
 * @example
 *   const proxy = await startFaultProxy();                 // → 127.0.0.1:5672
 *   const conn = await connect(`amqp://guest:guest@127.0.0.1:${proxy.port}/?heartbeat=1`);
 *   proxy.blackhole(true);                                  // the client should declare the broker dead
 *   proxy.pass();
 *   await proxy.close();
 */
import * as net from "node:net";

export interface Upstream {
  host: string;
  port: number;
}

export type Direction = "up" | "down" | "both";

export interface FaultProxyStats {
  /** Connections accepted since the start, refused ones included. */
  accepted: number;
  /** Connections reset at once because refuse() was on. */
  refused: number;
  /** Proxied connections open now. */
  open: number;
  /** Bytes forwarded client → upstream, and upstream → client. */
  bytesUp: number;
  bytesDown: number;
  /** Bytes a blackhole dropped, per direction. */
  droppedUp: number;
  droppedDown: number;
  /** Bytes waiting in latency queues now, all connections together. */
  queued: number;
}

export interface FaultProxy {
  readonly host: "127.0.0.1";
  readonly port: number;
  /** Where new connections are forwarded. */
  readonly upstream: Upstream;
  /** Changes where new connections go; existing connections keep their upstream. */
  setUpstream(target: Upstream): void;
  /** Turns every fault off: no blackhole, no refusal, no latency, not paused. */
  pass(): void;
  /** Resets every current connection on both sides. Later connections are proxied as usual. */
  reset(): void;
  /** While on, bytes in both directions are dropped and the sockets stay open. */
  blackhole(on?: boolean): void;
  /** While on, each new connection is reset as soon as it is accepted. */
  refuse(on?: boolean): void;
  /** Delays each chunk by `ms` in the given direction(s) (default both); 0 removes the delay. */
  latency(ms: number, direction?: Direction): void;
  /** Stops reading from clients (client → upstream); upstream → client keeps flowing. */
  pause(): void;
  resume(): void;
  stats(): FaultProxyStats;
  /** Stops listening and resets every connection left. */
  close(): Promise<void>;
}

/** Largest number of delayed bytes one direction of one connection holds before it stops reading. */
export const MAX_QUEUED = 1 << 20;

/** The proxy-wide settings every connection reads on each chunk, so a change applies to all at once. */
interface Settings {
  paused: boolean;
  blackholed: boolean;
  delay: { up: number; down: number };
  stats: FaultProxyStats;
}

/** Resets a socket (RST) whatever its state; never throws. */
function resetSocket(s: net.Socket): void {
  if (s.destroyed) return;
  try {
    // A socket still connecting would only be reset once connected: destroy it now instead.
    if (s.connecting) s.destroy();
    else s.resetAndDestroy();
  } catch {
    s.destroy();
  }
}

/** One direction of one connection: reads `src`, writes `dst`, through the latency queue when there is one. */
class Pipe {
  private readonly queue: { chunk: Buffer; due: number }[] = [];
  private queuedBytes = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** `dst.write` returned false and no 'drain' came yet. */
  private backpressured = false;
  private srcEnded = false;
  private readonly src: net.Socket;
  private readonly dst: net.Socket;
  private readonly dir: "up" | "down";
  private readonly s: Settings;

  constructor(src: net.Socket, dst: net.Socket, dir: "up" | "down", s: Settings) {
    this.src = src;
    this.dst = dst;
    this.dir = dir;
    this.s = s;
    src.on("data", (chunk: Buffer) => this.onData(chunk));
    src.on("end", () => {
      this.srcEnded = true;
      if (this.queue.length === 0) this.endDst();
    });
    dst.on("drain", () => {
      this.backpressured = false;
      this.updateFlow();
    });
  }

  get queued(): number {
    return this.queuedBytes;
  }

  private onData(chunk: Buffer): void {
    if (this.s.blackholed) {
      this.drop(chunk.length);
      return;
    }
    const delay = this.s.delay[this.dir];
    if (delay > 0 || this.queue.length > 0) {
      // Behind earlier chunks even when the delay was shortened since: order is kept.
      this.queue.push({ chunk, due: performance.now() + delay });
      this.queuedBytes += chunk.length;
      this.s.stats.queued += chunk.length;
      this.arm();
      this.updateFlow();
      return;
    }
    this.write(chunk);
  }

  private write(chunk: Buffer): void {
    if (this.s.blackholed) {
      // Turned on while the chunk waited in the latency queue: it is lost like any other.
      this.drop(chunk.length);
      return;
    }
    if (this.dst.destroyed) return;
    if (this.dir === "up") this.s.stats.bytesUp += chunk.length;
    else this.s.stats.bytesDown += chunk.length;
    if (!this.dst.write(chunk)) {
      this.backpressured = true;
      this.updateFlow();
    }
  }

  private drop(n: number): void {
    if (this.dir === "up") this.s.stats.droppedUp += n;
    else this.s.stats.droppedDown += n;
  }

  private arm(): void {
    if (this.timer !== undefined || this.queue.length === 0) return;
    const wait = Math.max(0, Math.ceil(this.queue[0]!.due - performance.now()));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, wait);
  }

  private flush(): void {
    const now = performance.now();
    // Bounded by the queue's length; a timer that fired a little early just re-arms.
    while (this.queue.length > 0 && this.queue[0]!.due <= now) {
      const { chunk } = this.queue.shift()!;
      this.queuedBytes -= chunk.length;
      this.s.stats.queued -= chunk.length;
      this.write(chunk);
    }
    if (this.queue.length === 0 && this.srcEnded) this.endDst();
    this.arm();
    this.updateFlow();
  }

  private endDst(): void {
    if (!this.dst.destroyed && !this.dst.writableEnded) this.dst.end();
  }

  /** Reads `src` unless paused (client side only), or — outside a blackhole — `dst` or the queue is full. */
  updateFlow(): void {
    if (this.src.destroyed) return;
    const stop = (this.dir === "up" && this.s.paused) || (!this.s.blackholed && (this.backpressured || this.queuedBytes >= MAX_QUEUED));
    if (stop && !this.src.isPaused()) this.src.pause();
    else if (!stop && this.src.isPaused()) this.src.resume();
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.s.stats.queued -= this.queuedBytes;
    this.queuedBytes = 0;
    this.queue.length = 0;
  }
}

/** A proxied connection: the client's socket, the upstream socket, a pipe each way. */
class Link {
  readonly up: Pipe;
  readonly down: Pipe;
  private disposed = false;
  private readonly client: net.Socket;
  private readonly upstream: net.Socket;
  private readonly onGone: (link: Link) => void;

  constructor(client: net.Socket, upstream: net.Socket, s: Settings, onGone: (link: Link) => void) {
    this.client = client;
    this.upstream = upstream;
    this.onGone = onGone;
    this.up = new Pipe(client, upstream, "up", s);
    this.down = new Pipe(upstream, client, "down", s);
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      // An abrupt failure on one side is passed on abruptly; a close, as a close.
      a.on("error", () => {
        resetSocket(b);
        this.dispose();
      });
      a.on("close", () => {
        if (!b.destroyed) b.destroy();
        this.dispose();
      });
    }
  }

  reset(): void {
    resetSocket(this.client);
    resetSocket(this.upstream);
    this.dispose();
  }

  updateFlow(): void {
    this.up.updateFlow();
    this.down.updateFlow();
  }

  private dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.up.dispose();
    this.down.dispose();
    this.onGone(this);
  }
}

/** Starts a fault proxy on 127.0.0.1 (a free port) in front of `target` (default the test broker), in pass mode. */
export async function startFaultProxy(target: Upstream = { host: "127.0.0.1", port: 5672 }): Promise<FaultProxy> {
  const links = new Set<Link>();
  const stats: FaultProxyStats = { accepted: 0, refused: 0, open: 0, bytesUp: 0, bytesDown: 0, droppedUp: 0, droppedDown: 0, queued: 0 };
  const s: Settings = { paused: false, blackholed: false, delay: { up: 0, down: 0 }, stats };
  let upstream: Upstream = { host: target.host, port: target.port };
  let refusing = false;
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    stats.accepted++;
    if (refusing) {
      stats.refused++;
      client.on("error", () => undefined);
      resetSocket(client);
      return;
    }
    const up = net.connect({ host: upstream.host, port: upstream.port, allowHalfOpen: true, noDelay: true });
    const link = new Link(client, up, s, (l) => {
      if (links.delete(l)) stats.open--;
    });
    links.add(link);
    stats.open++;
    link.updateFlow();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  const updateAll = () => {
    for (const link of links) link.updateFlow();
  };
  const reset = () => {
    for (const link of [...links]) link.reset();
  };
  let closing: Promise<void> | undefined;
  return {
    host: "127.0.0.1",
    port,
    get upstream() {
      return { ...upstream };
    },
    setUpstream(t) {
      upstream = { host: t.host, port: t.port };
    },
    pass() {
      refusing = false;
      s.paused = false;
      s.blackholed = false;
      s.delay = { up: 0, down: 0 };
      updateAll();
    },
    reset,
    blackhole(on = true) {
      s.blackholed = on;
      updateAll();
    },
    refuse(on = true) {
      refusing = on;
    },
    latency(ms, direction = "both") {
      if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`latency: expected a delay of 0 ms or more, got ${ms}`);
      if (direction !== "down") s.delay.up = ms;
      if (direction !== "up") s.delay.down = ms;
    },
    pause() {
      s.paused = true;
      updateAll();
    },
    resume() {
      s.paused = false;
      updateAll();
    },
    stats() {
      return { ...stats };
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        reset();
      });
      return closing;
    },
  };
}
