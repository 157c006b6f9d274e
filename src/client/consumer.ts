/**
 * A consumer: deliveries for one consumer tag, as an async iterator or through a callback.
 *
 * Memory is bounded by the channel's prefetch (basic.qos): the broker sends no more unacked messages than
 * that, and this buffer holds only what the loop has not taken yet. Without a prefetch (or with noAck) the
 * broker sends as fast as it can, so past PAUSE_AT buffered messages the consumer asks the connection to
 * stop reading from the socket until the loop has caught up (TCP then pushes back on the broker). Leaving a `for await` loop early (break,
 * return, throw) cancels the consumer.
 *
 * The iterator ends normally after `cancel()`. It throws when the consumer ends any other way: a
 * ConsumerCancelledError when the broker cancelled it (its queue was deleted), or the channel's close error.
 */
import { Emitter } from "./emitter.ts";
import { WarrenError } from "./errors.ts";
import type { Message } from "./message.ts";

/** The broker cancelled the consumer (consumer_cancel_notify), e.g. because its queue was deleted. */
export class ConsumerCancelledError extends WarrenError {
  constructor(consumerTag: string) {
    super("CONSUMER_CANCELLED", `Consumer ${consumerTag} was cancelled by the broker (was its queue deleted?)`);
    this.name = "ConsumerCancelledError";
  }
}

export type ConsumerEvents = {
  /** The consumer ended; `error` is set unless the application cancelled it. */
  close: (error?: Error) => void;
  /** A message callback threw or rejected. The message stays unacked. */
  error: (error: unknown, message: Message) => void;
};

export interface ConsumerHost {
  /** basic.cancel for this consumer. */
  cancelConsumer(consumerTag: string): Promise<void>;
  /** Stop (true) or resume (false) reading from the socket on this consumer's behalf. */
  pauseReading(consumer: Consumer, paused: boolean): void;
}

/** Buffered messages at which reading pauses, and at which it resumes. */
const PAUSE_AT = 4096;
const RESUME_AT = 1024;

const asyncDispose: typeof Symbol.asyncDispose = (Symbol as { asyncDispose?: symbol }).asyncDispose as typeof Symbol.asyncDispose ?? (Symbol.for("Symbol.asyncDispose") as typeof Symbol.asyncDispose);

export class Consumer extends Emitter<ConsumerEvents> implements AsyncIterable<Message> {
  readonly consumerTag: string;
  readonly queue: string;
  readonly #host: ConsumerHost;
  readonly #onMessage: ((m: Message) => unknown) | undefined;
  #buffer: Message[] = [];
  #head = 0;
  #wake: (() => void) | undefined;
  #ended = false;
  #error: Error | undefined;
  #paused = false;

  constructor(host: ConsumerHost, queue: string, consumerTag: string, onMessage?: (m: Message) => unknown) {
    super();
    this.#host = host;
    this.queue = queue;
    this.consumerTag = consumerTag;
    this.#onMessage = onMessage;
  }

  /** True once the consumer was cancelled or its channel closed. */
  get closed(): boolean {
    return this.#ended;
  }

  /** Messages received and not yet taken by the iterator. */
  get buffered(): number {
    return this.#buffer.length - this.#head;
  }

  /** Cancels the consumer (basic.cancel). Messages already buffered are still yielded; then the loop ends. */
  async cancel(): Promise<void> {
    if (this.#ended) return;
    await this.#host.cancelConsumer(this.consumerTag);
    this.end(undefined);
  }

  async [asyncDispose](): Promise<void> {
    await this.cancel().catch(() => undefined);
  }

  /** @internal A delivery arrived for this consumer. */
  deliver(message: Message): void {
    if (this.#onMessage) {
      try {
        const r = this.#onMessage(message);
        if (r instanceof Promise) r.catch((e: unknown) => this.emit("error", e, message));
      } catch (e) {
        this.emit("error", e, message);
      }
      return;
    }
    this.#buffer.push(message);
    if (!this.#paused && this.buffered >= PAUSE_AT) this.#setPaused(true);
    this.#wakeUp();
  }

  #setPaused(paused: boolean): void {
    this.#paused = paused;
    this.#host.pauseReading(this, paused);
  }

  /** @internal The consumer is over: cancelled (no error), by the broker, or with its channel. */
  end(error: Error | undefined): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    if (this.#paused) this.#setPaused(false);
    this.#wakeUp();
    this.emit("close", error);
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Message> {
    let finished = false;
    try {
      for (;;) {
        if (this.#head < this.#buffer.length) {
          const m = this.#buffer[this.#head]!;
          this.#buffer[this.#head++] = undefined as unknown as Message;
          if (this.#paused && this.buffered <= RESUME_AT) this.#setPaused(false);
          if (this.#head > 1024 && this.#head * 2 > this.#buffer.length) {
            this.#buffer = this.#buffer.slice(this.#head);
            this.#head = 0;
          }
          yield m;
          continue;
        }
        if (this.#ended) {
          finished = true;
          if (this.#error) throw this.#error;
          return;
        }
        await new Promise<void>((resolve) => (this.#wake = resolve));
      }
    } finally {
      // The loop was left early: stop the broker sending more.
      if (!finished && !this.#ended) await this.cancel().catch(() => undefined);
    }
  }
}
