/**
 * A channel's delivery tags as the application sees them, across connection recoveries.
 *
 * The broker numbers deliveries per channel from 1, and a recovered channel starts again from 1 — so a tag from
 * before the recovery could name a different message now, and acking a tag the broker does not know closes the
 * channel with 406. The application therefore sees the broker's tag plus an offset that moves, at each loss, to
 * the highest tag handed out so far: tags keep growing, and one at or below the offset is from a connection that
 * is gone (its message is redelivered). Without a recovery the offset is 0 and tags pass through unchanged.
 *
 * It also remembers the highest tag settled with `multiple`, so that warren, settling a message on the
 * application's behalf (a failed consumer callback), never settles one a `multiple` ack already covered.
 */
import type { Int64 } from "../codec/parsers.ts";

export class DeliveryTags {
  #offset = 0;
  #highest = 0;
  #settledThrough: Int64 = 0;

  /** The application's tag for one the broker sent. */
  fromBroker(tag: Int64): Int64 {
    if (typeof tag === "bigint") return this.#offset === 0 ? tag : tag + BigInt(this.#offset);
    const t = tag + this.#offset;
    if (t > this.#highest) this.#highest = t;
    return t;
  }

  /** The broker's tag for an application's, or undefined for one from a connection that is gone. */
  toBroker(tag: Int64, multiple: boolean): Int64 | undefined {
    if (this.#offset === 0) return tag; // never recovered: the common case
    if (multiple && (tag === 0 || tag === 0n)) return tag; // "everything outstanding", on this connection
    if (tag <= this.#offset) return undefined;
    return typeof tag === "bigint" ? tag - BigInt(this.#offset) : tag - this.#offset;
  }

  /** An ack or nack with `multiple` went out for `tag`. */
  settledMultiple(tag: Int64): void {
    if (tag > this.#settledThrough) this.#settledThrough = tag;
  }

  /** Whether a `multiple` ack or nack covered `tag` already. */
  coveredByMultiple(tag: Int64): boolean {
    return tag <= this.#settledThrough;
  }

  /** The connection was lost: every tag handed out so far is stale from now on. */
  connectionLost(): void {
    this.#offset = this.#highest;
    this.#settledThrough = 0;
  }
}
