/**
 * A TCP proxy in front of the broker that a test can stall or cut: `pause()` stops reading what clients send
 * (so their sockets back up, as with a slow network or a broker that stopped reading), `resume()` carries
 * on, `cutAll()` resets every connection abruptly (a network failure, no AMQP close).
 *
 * The small interface the older tests use; it is the fault proxy (test/support/fault-proxy.ts) underneath,
 * which has more faults (blackhole, refuse, latency) for the tests that need them.
 */
import { startFaultProxy, type Upstream } from "./fault-proxy.ts";

export interface Proxy {
  readonly port: number;
  /** Stops reading from clients; the broker→client direction keeps flowing. */
  pause(): void;
  resume(): void;
  /** Resets every proxied connection on both sides, like a network failure. */
  cutAll(): void;
  /** Stops listening and cuts what is left. */
  close(): Promise<void>;
}

export async function startProxy(target: Upstream = { host: "127.0.0.1", port: 5672 }): Promise<Proxy> {
  const proxy = await startFaultProxy(target);
  return {
    port: proxy.port,
    pause: () => proxy.pause(),
    resume: () => proxy.resume(),
    cutAll: () => proxy.reset(),
    close: () => proxy.close(),
  };
}
