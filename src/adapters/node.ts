/**
 * The Node.js transport: TCP (node:net), TLS (node:tls) and unix sockets, and `connect` bound to it.
 *
 * Thin by design: socket bytes go to the client untouched, writes go to the socket with Node's own
 * backpressure (`write()` returning false, then 'drain'), Nagle is off (TCP_NODELAY) because the client
 * already coalesces a turn's frames into one write. No frame parsing here, and no timer: the client's
 * signal gives a connect attempt up.
 */
import * as net from "node:net";
import * as tls from "node:tls";
import { performance } from "node:perf_hooks";
import { connectWith } from "../client/connect.ts";
import type { Connection } from "../client/connection.ts";
import { type ConnectOptions, isIpAddress, type KeptOptions } from "../client/options.ts";
import type { Runtime, Transport, TransportHandlers } from "../client/transport.ts";
import { connectAttempt } from "./attempt.ts";
import { connectFailure, defer } from "./common.ts";

function toNode(v: string | Uint8Array): string | Buffer {
  return typeof v === "string" ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function openSocket(o: KeptOptions): net.Socket {
  if (!o.tls) return o.socketPath !== undefined ? net.connect({ path: o.socketPath }) : net.connect({ host: o.hostname, port: o.port });
  const t = o.tlsOptions;
  const servername = t.servername ?? (isIpAddress(o.hostname) ? undefined : o.hostname);
  return tls.connect({
    // amqps over a unix socket is TLS over that socket (a plain socket here would wait forever for
    // 'secureConnect'); the host is then only the name the certificate is checked against.
    ...(o.socketPath !== undefined ? { path: o.socketPath } : { port: o.port }),
    host: o.hostname,
    ...(servername !== undefined && { servername }),
    ...(t.ca !== undefined && { ca: Array.isArray(t.ca) ? t.ca.map(toNode) : toNode(t.ca) }),
    ...(t.cert !== undefined && { cert: toNode(t.cert) }),
    ...(t.key !== undefined && { key: toNode(t.key) }),
    ...(t.passphrase !== undefined && { passphrase: t.passphrase }),
    // Verification is on unless explicitly turned off; Node then also checks the host name.
    rejectUnauthorized: t.verify !== false,
  });
}

/**
 * Opens a socket and wraps it as a Transport. `signal` (the client's connect deadline and the caller's
 * signal) gives the attempt up: see src/adapters/attempt.ts.
 */
export function nodeTransport(o: KeptOptions, h: TransportHandlers, signal?: AbortSignal): Promise<Transport> {
  return connectAttempt<Transport, net.Socket>(signal, (s) => s.destroy(), (a) => {
    const socket = a.track(openSocket(o));
    let connected = false;
    let failure: unknown;
    socket.setNoDelay(true);
    socket.once(o.tls ? "secureConnect" : "connect", () => {
      connected = true;
      a.resolve(transport);
    });
    socket.on("data", (chunk: Buffer) => h.onData(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
    socket.on("drain", () => h.onDrain());
    socket.on("error", (e) => {
      failure = e;
      if (!connected) a.reject(connectFailure(o, e));
    });
    socket.on("close", () => {
      // 'close' is the socket's last event: onClose is the last handler call.
      if (connected) h.onClose(failure);
      else a.reject(connectFailure(o, failure ?? new Error("the socket closed before the connection was established")));
    });
    // The client waits while more than writeHighWaterMark bytes are buffered, which may be less than the
    // socket's own mark: write() then returned true and no 'drain' will come. Report every completed write
    // that brings the buffer down to the client's mark, or a publisher awaiting writable() hangs for good.
    const onWritten = (err?: Error | null) => {
      if (!err && !socket.destroyed && socket.writableLength <= o.writeHighWaterMark) h.onDrain();
    };
    const transport: Transport = {
      write: (bytes) => socket.write(bytes, onWritten),
      get bufferedAmount() {
        return socket.writableLength;
      },
      end: () => socket.end(),
      destroy: () => socket.destroy(),
      pauseReading: (paused) => (paused ? socket.pause() : socket.resume()),
    };
  });
}

export const nodeRuntime: Runtime = {
  connect: nodeTransport,
  now: () => performance.now(),
  defer,
  platform: `Node.js ${process.version}`,
};

/**
 * Connects to RabbitMQ.
 * @example
 * const conn = await connect("amqp://guest:guest@127.0.0.1:5672/%2f?heartbeat=30");
 */
export function connect(url?: string | readonly string[] | ConnectOptions, options?: ConnectOptions): Promise<Connection> {
  return connectWith(nodeRuntime, url, options);
}

export * from "../client/index.ts";
