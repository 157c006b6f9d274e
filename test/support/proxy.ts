/**
 * A TCP proxy in front of the broker that a test can stall or cut: `pause()` stops reading what clients send
 * (so their sockets back up, as with a slow network or a broker that stopped reading), `resume()` carries
 * on, `cutAll()` destroys every connection abruptly (a network failure, no AMQP close).
 */
import * as net from "node:net";

export interface Proxy {
  readonly port: number;
  /** Stops reading from clients; the broker→client direction keeps flowing. */
  pause(): void;
  resume(): void;
  /** Destroys every proxied connection on both sides, like a network failure. */
  cutAll(): void;
  /** Stops listening and cuts what is left. */
  close(): Promise<void>;
}

export async function startProxy(target: { host: string; port: number } = { host: "127.0.0.1", port: 5672 }): Promise<Proxy> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  let paused = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const cut = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on("error", cut);
    upstream.on("error", cut);
    client.on("close", cut);
    upstream.on("close", cut);
    client.on("data", (d) => upstream.write(d));
    upstream.on("data", (d) => client.write(d));
    if (paused) client.pause();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const cutAll = () => {
    for (const [client, upstream] of [...pairs]) {
      client.destroy();
      upstream.destroy();
    }
    pairs.clear();
  };
  return {
    port,
    pause() {
      paused = true;
      for (const [client] of pairs) client.pause();
    },
    resume() {
      paused = false;
      for (const [client] of pairs) client.resume();
    },
    cutAll,
    async close() {
      cutAll();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
