/**
 * A confirm-mode channel's publishes that wait for the broker's ack, by confirm sequence number.
 *
 * When the connection is lost, what happens to them is the recovery's `unconfirmed` policy:
 * - "reject" (the default): each rejects at once with OutcomeUnknownError — the broker may or may not have it.
 * - "resend": each entry keeps a copy of its message (taken when it was published), is held instead, and is
 *   published again, in its original order, on the recovered channel; its promise settles with the new
 *   publish's confirm. The broker may then have it twice (with the same properties, message-id included).
 *   If the connection ends for good before the resend is confirmed, the entry rejects with the
 *   OutcomeUnknownError it was lost with.
 *
 * What is held is bounded by what the application had in flight when the connection went (it holds those
 * promises, or chose tryPublish's fire-and-forget).
 */
import type { PublishProperties } from "../codec/amqp/properties.ts";

/** What is needed to publish a message again. Its bytes belong to warren (see ownedCopy). */
export interface Resend {
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: Uint8Array;
  readonly properties: PublishProperties;
  readonly mandatory: boolean;
  readonly immediate: boolean;
}

/** One publish waiting for its confirm (a single object per publish: this is the hot path of confirms). */
export interface PendingConfirm {
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
  /** Set under the "resend" policy. */
  readonly resend: Resend | undefined;
  /** Whether an application promise waits on it (false for tryPublish). */
  readonly observed: boolean;
  /** The current confirm sequence number (a resend gets a new one). */
  seq: number;
  /** Publish order across recoveries, so that a resend keeps it. */
  order: number;
  /** The error it was lost with, while held for a resend. */
  lostWith: Error | undefined;
}

export class Confirms {
  readonly #bySeq = new Map<number, PendingConfirm>();
  /** Lost with a connection, waiting to be published again. */
  #held: PendingConfirm[] = [];
  #order = 0;

  /** Registers a publish sent with confirm sequence number `seq`; the returned entry is the handle for `remove`. */
  add(seq: number, resolve: () => void, reject: (e: Error) => void, resend: Resend | undefined, observed: boolean): PendingConfirm {
    const entry: PendingConfirm = { resolve, reject, resend, observed, seq, order: this.#order++, lostWith: undefined };
    this.#bySeq.set(seq, entry);
    return entry;
  }

  /** The broker answered publish `seq`: returns its entry, now forgotten. */
  take(seq: number): PendingConfirm | undefined {
    const entry = this.#bySeq.get(seq);
    if (!entry) return undefined;
    this.#bySeq.delete(seq);
    return entry;
  }

  /**
   * Publish `seq`'s outcome is lost (`error`). With a copy and a connection that `recoverable`, the entry is
   * held for a resend; otherwise it rejects. Returns whether an application promise saw the error (false
   * while held).
   */
  lost(seq: number, error: Error, recoverable: boolean): boolean {
    const entry = this.#bySeq.get(seq);
    if (!entry) return false;
    this.#bySeq.delete(seq);
    if (recoverable && entry.resend) {
      entry.lostWith = error;
      this.#held.push(entry);
      return false; // nobody saw an error: it settles later, one way or the other
    }
    entry.reject(error);
    return entry.observed;
  }

  /** Forgets an entry (its publish was aborted); returns whether it was still waiting. */
  remove(entry: PendingConfirm): boolean {
    const i = this.#held.indexOf(entry);
    if (i >= 0) {
      this.#held.splice(i, 1);
      return true;
    }
    if (this.#bySeq.get(entry.seq) !== entry) return false;
    this.#bySeq.delete(entry.seq);
    return true;
  }

  /**
   * Publishes every held entry again through `publish` (which returns the new confirm sequence number and
   * throws when the connection is gone again), oldest first. Stops at the first failure: the rest stay held
   * for the next recovery. Returns how many were sent.
   */
  resend(publish: (r: Resend) => number): number {
    this.#held.sort((a, b) => a.order - b.order);
    let sent = 0;
    while (this.#held.length > 0) {
      const entry = this.#held[0]!;
      let seq: number;
      try {
        seq = publish(entry.resend!);
      } catch {
        break;
      }
      this.#held.shift();
      sent++;
      entry.lostWith = undefined;
      if (seq === 0) {
        entry.resolve(); // the recovered channel is not in confirm mode (cannot happen: its settings are replayed)
        continue;
      }
      entry.seq = seq;
      this.#bySeq.set(seq, entry);
    }
    return sent;
  }

  /**
   * The channel ended: every entry rejects — held ones with the error they were lost with (their outcome is
   * still unknown), the others with `error`. Returns whether an application promise saw it.
   */
  rejectAll(error: Error): boolean {
    let seen = false;
    const entries = [...this.#held, ...this.#bySeq.values()];
    this.#held = [];
    this.#bySeq.clear();
    for (const entry of entries) {
      if (entry.observed) seen = true;
      entry.reject(entry.lostWith ?? error);
    }
    return seen;
  }
}
