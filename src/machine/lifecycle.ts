/**
 * The connection's lifecycle — handshake → open → closing → closed — and the three ways it ends:
 *
 * - `startClosing(why)`: connection.close is written; the wait for close-ok starts when it is handed out
 *   (timers.ts). A client close, and every protocol error the broker commits (`protocolError`), go this way.
 * - `abort(code, why)`: ends at once, after telling the broker why when the connection got far enough to say
 *   anything (a framing error, a tune we cannot accept, dead peer with code 0: nothing said).
 * - `finish(why)`: the end itself — every channel and request is settled with scope "connection", then
 *   `connectionClosed`, the last event. Idempotent.
 */
import { encodeMethodFrame } from "../codec/amqp/frames.ts";
import type { Method } from "../codec/amqp/methods.generated.ts";
import type { Writer } from "../codec/writer.ts";
import { reason, truncateUtf8 } from "./core.ts";
import type { CloseReason, MachineEvent } from "./events.ts";
import type { Timers } from "./timers.ts";

export type ConnectionState = "handshake" | "open" | "closing" | "closed";

export interface LifecycleHost {
  readonly out: Writer;
  readonly timers: Timers;
  /** False while only the protocol header was sent: the broker cannot be told anything yet. */
  saidHello(): boolean;
  /** Drops the password and anything else secret. */
  forgetSecrets(): void;
  /** Settles every channel and pending request with `why`, scope "connection". */
  settleAll(why: CloseReason): void;
  emit(e: MachineEvent): void;
}

export class Lifecycle {
  state: ConnectionState = "handshake";
  /** Why we are closing, once `startClosing` ran. */
  closeReason: CloseReason | undefined;
  private readonly host: LifecycleHost;

  constructor(host: LifecycleHost) {
    this.host = host;
  }

  startClosing(why: CloseReason): void {
    this.writeClose(why.replyCode, why);
    this.state = "closing";
    this.closeReason = why;
    this.host.forgetSecrets();
    this.host.timers.closing(); // the wait for close-ok starts when the close is handed out by pollTransmit(now)
  }

  /** The broker broke the protocol: connection.close with the matching code, then the close handshake. */
  protocolError(replyCode: number, text: string, m?: Method): void {
    if (this.state === "closing" || this.state === "closed") return;
    this.startClosing(reason("protocol", replyCode, text, m?.classId ?? 0, m?.methodId ?? 0));
  }

  /** Ends at once, telling the broker why (connection.close `closeCode`) when the connection got far enough. */
  abort(closeCode: number, why: CloseReason): void {
    if (this.state === "closed") return;
    if (this.host.saidHello() && this.state !== "closing" && closeCode > 0) this.writeClose(closeCode, why);
    this.finish(why);
  }

  /** The connection is over: settle everything pending, then report the connection closed (last event). */
  finish(why: CloseReason): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.host.timers.closed();
    this.host.forgetSecrets();
    this.host.settleAll(why);
    this.host.emit({ type: "connectionClosed", reason: why });
  }

  /** connection.close with `replyCode` and the reason's text (cut to a short string) and failing method. */
  private writeClose(replyCode: number, why: CloseReason): void {
    const replyText = truncateUtf8(why.replyText, 255);
    encodeMethodFrame(this.host.out, 0, { name: "connection.close", classId: 10, methodId: 50, replyCode, replyText, failingClassId: why.classId, failingMethodId: why.methodId });
  }
}
