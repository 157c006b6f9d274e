/**
 * The connection class once the connection is open (channel 0): connection.blocked / unblocked, and
 * connection.update-secret with its replies, which settle in the order the requests were sent. The
 * handshake (handshake.ts) and connection.close / close-ok (the facade) are not here.
 */
import type { Method } from "../codec/amqp/methods.generated.ts";
import { type MachineCore, REPLY } from "./core.ts";
import type { CloseReason } from "./events.ts";

export class ChannelZero {
  private readonly core: MachineCore;
  /** connection.update-secret requests, oldest (the next to be answered) first. */
  private secretRequests: number[] = [];

  constructor(core: MachineCore) {
    this.core = core;
  }

  /** An update-secret with this request id was written. */
  secretSent(requestId: number): void {
    this.secretRequests.push(requestId);
  }

  /** A method on channel 0 while open; anything not for this connection's state is a protocol error. */
  handle(m: Method): void {
    switch (m.name) {
      case "connection.blocked":
        this.core.emit({ type: "blocked", reason: m.reason });
        return;
      case "connection.unblocked":
        this.core.emit({ type: "unblocked" });
        return;
      case "connection.update-secret-ok": {
        const requestId = this.secretRequests.shift();
        if (requestId === undefined) break;
        this.core.emit({ type: "reply", channel: 0, requestId, method: m, message: undefined });
        return;
      }
      default:
        if (m.name.startsWith("connection.")) break;
        this.core.protocolError(REPLY.COMMAND_INVALID, `${m.name} is not valid on channel 0`, m);
        return;
    }
    this.core.protocolError(REPLY.UNEXPECTED_FRAME, `unexpected ${m.name} (connection open)`, m);
  }

  /** The connection ended: every update-secret still waiting fails. */
  failAll(why: CloseReason): void {
    for (const requestId of this.secretRequests) this.core.emit({ type: "requestFailed", channel: 0, requestId, reason: why, scope: "connection" });
    this.secretRequests = [];
  }
}
