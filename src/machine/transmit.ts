/**
 * The machine's outbound bytes: one long-lived Writer for everything, and a side path for frames that carry
 * a secret (the SASL response in connection.start-ok / secure-ok).
 *
 * Why the side path: `Writer.finish()` hands out subarrays of its slab and the slab lives as long as the
 * connection, so a password encoded there would stay in memory after it was sent. Bytes handed out are the
 * caller's and must not be overwritten either. So a secret frame is encoded into a one-off buffer sized so it
 * never grows; `take()` then copies everything pending into one fresh buffer for the caller and zeroes the
 * one-off one. After that the machine holds no copy. This happens only during the handshake; otherwise
 * `take()` is `Writer.finish()`.
 */
import { encodeMethodFrame } from "../codec/amqp/frames.ts";
import type { Method } from "../codec/amqp/methods.generated.ts";
import { Writer } from "../codec/writer.ts";

export class Transmit {
  readonly out = new Writer();
  /** Pending pieces ahead of what is in `out`, in order; `secret` marks the ones to zero after copying. */
  private pieces: { bytes: Uint8Array; secret: boolean }[] = [];
  private piecesLength = 0;

  /** Bytes not yet taken. */
  get length(): number {
    return this.out.length + this.piecesLength;
  }

  /** Writes a method frame whose arguments include a secret. */
  writeSecret(channel: number, m: Method): void {
    // Size it with the secret blanked (a long string's length does not depend on its bytes), then leave room
    // for any string argument's worst case (3 bytes per UTF-16 unit), so the one-off writer never grows and
    // leaves no copy in an abandoned slab.
    const sizing = new Writer(4096);
    encodeMethodFrame(sizing, channel, blankSecrets(m));
    const w = new Writer(sizing.length * 3 + 256);
    encodeMethodFrame(w, channel, m);
    this.push(this.out.finish(), false);
    this.push(w.finish(), true);
  }

  /** Everything pending, now the caller's; undefined when nothing is. */
  take(): Uint8Array | undefined {
    if (this.piecesLength === 0) return this.out.length === 0 ? undefined : this.out.finish();
    this.push(this.out.finish(), false);
    const all = new Uint8Array(this.piecesLength);
    let at = 0;
    for (const p of this.pieces) {
      all.set(p.bytes, at);
      at += p.bytes.length;
      if (p.secret) new Uint8Array(p.bytes.buffer).fill(0);
    }
    this.pieces = [];
    this.piecesLength = 0;
    return all;
  }

  private push(bytes: Uint8Array, secret: boolean): void {
    if (bytes.length === 0) return;
    this.pieces.push({ bytes, secret });
    this.piecesLength += bytes.length;
  }
}

function blankSecrets(m: Method): Method {
  if (m.name === "connection.start-ok" || m.name === "connection.secure-ok") return { ...m, response: new Uint8Array(m.response.length) };
  return m;
}
