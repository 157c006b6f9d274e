/**
 * The small interface the machine's pieces (handshake, channel pipeline, inbound dispatch, content
 * reassembly) call to act on the connection, so that none of them imports the facade (connection.ts) and no
 * import cycle appears. The facade implements it; each piece gets it as a constructor or function argument.
 *
 * Also the few helpers every piece shares: reply codes, building a close reason, cutting a reply text, the
 * event queue.
 */
import type { Method } from "../codec/amqp/methods.generated.ts";
import type { Writer } from "../codec/writer.ts";
import { utf8Length } from "../codec/utf8.ts";
import type { CloseInitiator, CloseReason, MachineEvent } from "./events.ts";
import type { ResolvedOptions } from "./options.ts";

/** The AMQP reply codes the machine itself sends (spec section 1.5 "constants"). */
export const REPLY = {
  CONTENT_TOO_LARGE: 311,
  FRAME_ERROR: 501,
  COMMAND_INVALID: 503,
  CHANNEL_ERROR: 504,
  UNEXPECTED_FRAME: 505,
  RESOURCE_ERROR: 506,
  NOT_ALLOWED: 530,
} as const;

export interface MachineCore {
  readonly options: ResolvedOptions;
  /** The outbound writer: frames written here go out with the next `pollTransmit`. */
  readonly out: Writer;
  /** The negotiated frame_max (the requested one until tuning). */
  readonly frameMax: number;
  /** Queues an event for `pollEvent`. Never throws. */
  emit(e: MachineEvent): void;
  /** Writes one method frame to the output. For methods the machine builds itself: never throws. */
  writeMethod(channel: number, m: Method): void;
  /**
   * The broker broke the protocol: connection.close with `replyCode`, then the close handshake. A no-op once
   * the connection is closing.
   */
  protocolError(replyCode: number, text: string, m?: Method): void;
  /** Ends the connection at once (after writing connection.close when `closeCode` > 0). */
  abort(closeCode: number, why: CloseReason): void;
}

export function reason(initiator: CloseInitiator, replyCode: number, replyText: string, classId = 0, methodId = 0): CloseReason {
  return { initiator, replyCode, replyText, classId, methodId };
}

/** `s` cut to at most `max` bytes of UTF-8, never inside a character. */
export function truncateUtf8(s: string, max: number): string {
  if (s.length * 3 <= max || utf8Length(s) <= max) return s;
  let n = 0;
  let i = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < s.length;
    const size = c < 0x80 ? 1 : c < 0x800 ? 2 : pair ? 4 : 3;
    if (n + size > max) break;
    n += size;
    if (pair) i++;
  }
  return s.slice(0, i);
}

/** The events waiting for `pollEvent`, in order; the array is reset whenever it drains. */
export class EventQueue {
  private readonly items: MachineEvent[] = [];
  private head = 0;

  push(e: MachineEvent): void {
    this.items.push(e);
  }

  shift(): MachineEvent | undefined {
    if (this.head >= this.items.length) return undefined;
    const e = this.items[this.head++]!;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    }
    return e;
  }
}
