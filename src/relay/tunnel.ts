/**
 * One tunnel: a client's upgraded WebSocket socket `ws` and the TCP socket `upstream` to its broker.
 *
 * Theory of operation:
 * - Frames from the client must be masked (1002 otherwise), binary (1003 for text), at most `maxMessage`
 *   bytes per frame and per message (1009). Data payloads go upstream as a plain byte stream; each chunk
 *   the broker sends comes back as one binary frame.
 * - Backpressure both ways, with Node's own signals: `upstream.write()` returning false pauses `ws` until
 *   the upstream's 'drain', and `ws.write()` returning false pauses `upstream` until the ws socket's 'drain'.
 * - Control frames obey the same bound. A ping is answered with a pong at once while the ws socket is under
 *   its high-water mark; while it is over it (the client is not reading), only the most recent ping is
 *   remembered and answered on 'drain' — RFC 6455 5.5.3 allows answering just the latest ping. A client
 *   that sends more than {@link PING_FLOOD_LIMIT} pings while its socket stays full is failed with 1008
 *   (policy violation): it is flooding, not checking liveness. Close frames are sent once per tunnel.
 *   So a tunnel holds at most about one socket high-water mark plus one read chunk per direction, one
 *   pong of at most 125 bytes, plus one partial frame in the decoder (bounded by `maxMessage`).
 * - Idle timeout: with `idleTimeout` > 0, a tunnel whose ws socket neither read nor wrote a byte for that
 *   long (every byte of the tunnel passes through it, whichever way it goes) is closed with 1001 and its
 *   upstream ended. AMQP heartbeats keep a live tunnel busy, so only a dead or stuck one is closed.
 * - Closing: a client close frame is echoed, then the relay ends the TCP connection (the server closes
 *   first, 7.1.1) and ends the upstream. When the upstream ends, the relay sends close 1000 (1014 if it
 *   failed) after the last bytes and waits up to `closeTimeout` for the echo. A protocol violation sends its
 *   close code and ends the connection at once ("fail the WebSocket connection", 7.1.7).
 */
import type * as net from "node:net";
import { Writer } from "../codec/writer.ts";
import {
  decodeClosePayload,
  encodeClosePayload,
  encodeWsFrame,
  encodeWsFrameHeader,
  type WsFrame,
  WsCloseCode,
  WsFrameDecoder,
  WsMessageState,
  WsOpcode,
  WsProtocolError,
} from "./ws-frame.ts";

/** Payloads up to this size are copied behind their header (one write); larger ones are written apart. */
const SMALL_FRAME = 4096;

/**
 * Pings a client may send while its socket stays over the high-water mark (between two 'drain's) before the
 * tunnel is failed with 1008. A client checking liveness sends one every few seconds; a thousand pings
 * without reading a byte is a flood.
 */
export const PING_FLOOD_LIMIT = 1000;

/** What a tunnel is holding, for monitoring and tests. */
export interface TunnelStats {
  readonly id: number;
  readonly upstream: string;
  /** Bytes queued on the WebSocket side (frames to the client not yet taken by the kernel). */
  readonly wsBuffered: number;
  /** Bytes queued on the upstream side. */
  readonly upstreamBuffered: number;
  /** Bytes of an incomplete client frame held by the decoder. */
  readonly decoderBuffered: number;
  /** True while reading from the client is paused (the upstream is full). */
  readonly wsPaused: boolean;
  /** True while reading from the upstream is paused (the client is slow). */
  readonly upstreamPaused: boolean;
  /** Pings received since the client's socket last drained, answered only by one pong sent on 'drain'. */
  readonly pingsWhileFull: number;
}

export interface TunnelOptions {
  maxMessage: number;
  closeTimeout: number;
  /** Milliseconds without a byte either way before the tunnel is closed; 0 for never. */
  idleTimeout: number;
  log(line: string): void;
  onClosed(): void;
}

/** One client WebSocket and its upstream TCP connection. */
export class Tunnel {
  readonly #id: number;
  readonly #ws: net.Socket;
  readonly #upstream: net.Socket;
  readonly #target: string;
  readonly #o: TunnelOptions;
  readonly #decoder: WsFrameDecoder;
  readonly #messages: WsMessageState;
  readonly #writer = new Writer(16 * 1024);
  /** We sent a close frame: no more data frames go out, incoming data is dropped. */
  #closeSent = false;
  /** The client sent a close frame: nothing it sends afterwards counts. */
  #closeReceived = false;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #upstreamError: Error | undefined;
  #wsPaused = false;
  #upstreamPaused = false;
  /** The payload of the latest ping not yet answered because the client's socket is full. */
  #pendingPong: Uint8Array | undefined;
  #pingsWhileFull = 0;
  /** The client broke the protocol (or a policy): its further bytes are ignored. */
  #failed = false;
  #closed: Promise<void>;

  constructor(id: number, ws: net.Socket, upstream: net.Socket, target: string, o: TunnelOptions) {
    this.#id = id;
    this.#ws = ws;
    this.#upstream = upstream;
    this.#target = target;
    this.#o = o;
    this.#decoder = new WsFrameDecoder({ mask: "required", maxPayload: o.maxMessage });
    this.#messages = new WsMessageState({ maxMessage: o.maxMessage });
    let wsGone!: () => void;
    let upstreamGone!: () => void;
    const a = new Promise<void>((r) => (wsGone = r));
    const b = new Promise<void>((r) => (upstreamGone = r));
    this.#closed = Promise.all([a, b]).then(() => {
      if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
      o.onClosed();
    });
    ws.once("close", () => {
      wsGone();
      this.#onWsClose();
    });
    upstream.once("close", () => upstreamGone());
  }

  start(head: Buffer): void {
    const ws = this.#ws;
    const up = this.#upstream;
    ws.setNoDelay(true);
    up.setNoDelay(true);
    ws.on("data", (chunk: Buffer) => this.#onWsData(chunk));
    ws.on("end", () => this.#onWsEnd());
    ws.on("drain", () => this.#onWsDrain());
    up.on("data", (chunk: Buffer) => this.#onUpstreamData(chunk));
    up.on("drain", () => this.#setWsPaused(false));
    up.on("error", (e) => (this.#upstreamError = e));
    up.on("close", () => this.#onUpstreamClose());
    if (this.#o.idleTimeout > 0) {
      // Node's socket timeout is reset by every read and write on the socket, i.e. by traffic either way.
      ws.setTimeout(this.#o.idleTimeout);
      ws.on("timeout", () => this.#onIdle());
    }
    if (head.length > 0) this.#onWsData(head);
    if (!this.#wsPaused) ws.resume();
  }

  stats(): TunnelStats {
    return {
      id: this.#id,
      upstream: this.#target,
      wsBuffered: this.#ws.writableLength,
      upstreamBuffered: this.#upstream.writableLength,
      decoderBuffered: this.#decoder.buffered,
      wsPaused: this.#wsPaused,
      upstreamPaused: this.#upstreamPaused,
      pingsWhileFull: this.#pingsWhileFull,
    };
  }

  /** Starts the closing handshake from our side and resolves once both sockets are closed. */
  shutdown(code: number, reason: string): Promise<void> {
    this.#initiateClose(code, reason);
    this.#upstream.destroy();
    return this.#closed;
  }

  #setWsPaused(paused: boolean): void {
    if (paused === this.#wsPaused) return;
    this.#wsPaused = paused;
    if (paused) this.#ws.pause();
    else this.#ws.resume();
  }

  #setUpstreamPaused(paused: boolean): void {
    if (paused === this.#upstreamPaused) return;
    this.#upstreamPaused = paused;
    if (paused) this.#upstream.pause();
    else this.#upstream.resume();
  }

  #onWsData(chunk: Buffer): void {
    if (this.#failed) return;
    this.#decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    try {
      for (let f = this.#decoder.next(); f !== undefined; f = this.#decoder.next()) {
        this.#onFrame(f);
        if (this.#failed || this.#ws.destroyed) return;
      }
    } catch (e) {
      if (!(e instanceof WsProtocolError)) throw e;
      this.#fail(e.closeCode, e.message);
    }
  }

  #onFrame(f: WsFrame): void {
    switch (f.opcode) {
      case WsOpcode.CONTINUATION:
      case WsOpcode.TEXT:
      case WsOpcode.BINARY: {
        if (this.#closeReceived || this.#closeSent) return; // after a close frame, data is discarded (5.5.1)
        const kind = this.#messages.accept(f);
        if (kind === WsOpcode.TEXT) throw new WsProtocolError("UNSUPPORTED_DATA", "text frames are not accepted: send AMQP as binary frames");
        if (f.payload.length > 0 && !this.#upstream.write(f.payload)) this.#setWsPaused(true);
        return;
      }
      case WsOpcode.PING:
        if (!this.#closeSent) this.#onPing(f.payload);
        return;
      case WsOpcode.PONG:
        return; // unsolicited pongs are allowed and mean nothing (5.5.3)
      case WsOpcode.CLOSE: {
        if (this.#closeReceived) return;
        const { code } = decodeClosePayload(f.payload);
        this.#closeReceived = true;
        this.#o.log(`client closed (${code})`);
        if (!this.#closeSent) {
          // Echo the status (5.5.1), after any data already queued.
          this.#closeSent = true;
          this.#send(WsOpcode.CLOSE, code === WsCloseCode.NO_STATUS ? new Uint8Array(0) : encodeClosePayload(code));
        }
        // The server closes the TCP connection first (7.1.1); the broker sees the end of the stream.
        this.#endWs();
        this.#upstream.end();
        return;
      }
    }
  }

  /**
   * Answers a ping without letting a client that never reads grow the ws socket's buffer: before this, each
   * ping of a flood queued its pong behind the last (46 → 770 MiB in 10 s, never released).
   */
  #onPing(payload: Uint8Array): void {
    if (!this.#ws.writableNeedDrain) {
      this.#send(WsOpcode.PONG, payload);
      return;
    }
    this.#pendingPong = payload; // only the most recent ping is answered (5.5.3)
    if (++this.#pingsWhileFull > PING_FLOOD_LIMIT) {
      this.#fail(WsCloseCode.POLICY_VIOLATION, `ping flood: over ${PING_FLOOD_LIMIT} pings while not reading`);
    }
  }

  #onWsDrain(): void {
    this.#pingsWhileFull = 0;
    const pong = this.#pendingPong;
    this.#pendingPong = undefined;
    if (pong !== undefined && !this.#closeSent) this.#send(WsOpcode.PONG, pong);
    this.#setUpstreamPaused(false);
  }

  #onWsEnd(): void {
    // The client half-closed its TCP connection: without a close frame first, that is an abnormal closure.
    if (!this.#closeReceived) this.#o.log("client ended the connection without a close frame");
    this.#upstream.end();
    this.#endWs();
  }

  #onWsClose(): void {
    // Whatever remains for the broker is sent; a client that vanished without a close frame is a client gone.
    if (!this.#upstream.destroyed) this.#upstream.end();
    setTimeout(() => this.#upstream.destroy(), this.#o.closeTimeout).unref();
  }

  #onIdle(): void {
    if (this.#closeSent || this.#closeReceived) return; // already closing: the close timer has it
    this.#initiateClose(WsCloseCode.GOING_AWAY, `idle for ${this.#o.idleTimeout} ms`);
    this.#upstream.end();
  }

  #onUpstreamData(chunk: Buffer): void {
    if (this.#closeSent) return;
    if (!this.#send(WsOpcode.BINARY, new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))) this.#setUpstreamPaused(true);
  }

  #onUpstreamClose(): void {
    if (this.#closeSent) return;
    const e = this.#upstreamError as NodeJS.ErrnoException | undefined;
    if (e) this.#initiateClose(WsCloseCode.BAD_GATEWAY, `upstream failed: ${e.code ?? e.message}`);
    else this.#initiateClose(WsCloseCode.NORMAL, "upstream closed the connection");
  }

  /** Sends a close frame and waits for the client's echo (7.1.2), then ends the connection. */
  #initiateClose(code: number, reason: string): void {
    if (this.#closeSent) return;
    this.#closeSent = true;
    this.#o.log(`closing (${code} ${reason})`);
    this.#send(WsOpcode.CLOSE, encodeClosePayload(code, reason));
    // Read on, even if the upstream was full: the echo has to get through.
    this.#setWsPaused(false);
    this.#armCloseTimer();
  }

  /** Fails the WebSocket connection (7.1.7): a close frame with the reason, then the end of TCP. */
  #fail(code: number, reason: string): void {
    this.#failed = true;
    this.#o.log(`failing (${code} ${reason})`);
    if (!this.#closeSent) {
      this.#closeSent = true;
      this.#send(WsOpcode.CLOSE, encodeClosePayload(code, reason));
    }
    this.#upstream.destroy();
    this.#endWs();
  }

  #endWs(): void {
    this.#ws.end();
    this.#armCloseTimer();
  }

  #armCloseTimer(): void {
    if (this.#closeTimer !== undefined) return;
    this.#closeTimer = setTimeout(() => {
      this.#ws.destroy();
      this.#upstream.destroy();
    }, this.#o.closeTimeout);
    this.#closeTimer.unref();
  }

  /** Writes one unmasked frame to the client; returns what `write` returned. */
  #send(opcode: WsOpcode, payload: Uint8Array): boolean {
    const ws = this.#ws;
    if (!ws.writable) return true;
    // `finish` hands out bytes the writer never touches again, so the socket may keep them until flushed.
    if (payload.length <= SMALL_FRAME) {
      encodeWsFrame(this.#writer, { opcode, payload });
      return ws.write(this.#writer.finish());
    }
    // A large chunk from the broker goes out as it is, behind its header: no copy of up to 64 KiB per read.
    encodeWsFrameHeader(this.#writer, true, opcode, payload.length);
    ws.cork();
    ws.write(this.#writer.finish());
    const ok = ws.write(payload);
    ws.uncork();
    return ok;
  }
}
