/**
 * A consumer: deliveries for one consumer tag, as an async iterator or through a callback.
 *
 * Memory is bounded by the channel's prefetch (basic.qos): the broker sends no more unacked messages than
 * that, and this buffer holds only what the loop has not taken yet. Without a prefetch (or with noAck) the
 * broker sends as fast as it can, so past PAUSE_AT buffered messages the consumer asks the connection to
 * stop reading from the socket until the loop has caught up (TCP then pushes back on the broker; the
 * connection emits `readPaused`, and reading stops for every channel on it — a prefetch is the cure). On a
 * transport that cannot stop reading (WebSocket) the buffer is capped instead: past OVERFLOW_AT the consumer
 * is cancelled and its loop throws a ConsumerOverflowError once it has taken what was buffered.
 *
 * Leaving a `for await` loop early (break, return, throw) cancels the consumer. The iterator ends normally
 * after `cancel()`. It throws when the consumer ends any other way: a ConsumerCancelledError when the
 * broker cancelled it (its queue was deleted), or the channel's close error. A consumer has one iterator: a
 * second `for await` over it throws a UsageError, since each message can go to only one loop.
 */
import { asyncDispose } from "./dispose.ts";
import { Emitter } from "./emitter.ts";
import { UsageError, WarrenError } from "./errors.ts";
import type { Message } from "./message.ts";
import type { Int64 } from "../codec/parsers.ts";

/** The broker cancelled the consumer (consumer_cancel_notify), e.g. because its queue was deleted. */
export class ConsumerCancelledError extends WarrenError {
  constructor(consumerTag: string) {
    super("CONSUMER_CANCELLED", `Consumer ${consumerTag} was cancelled by the broker (was its queue deleted?)`);
    this.name = "ConsumerCancelledError";
  }
}

/** The consumer's buffer passed its cap on a transport that cannot stop reading; it was cancelled. */
export class ConsumerOverflowError extends WarrenError {
  constructor(consumerTag: string, buffered: number) {
    super(
      "CONSUMER_OVERFLOW",
      `Consumer ${consumerTag} was cancelled: ${buffered} messages were waiting for the loop and this transport cannot stop reading (set a prefetch with basicQos)`,
    );
    this.name = "ConsumerOverflowError";
  }
}

export type ConsumerEvents = {
  /** The consumer ended; `error` is set unless the application cancelled it. */
  close: (error?: Error) => void;
  /** A message callback threw or rejected; the message was rejected (see basicConsume). */
  error: (error: unknown, message: Message) => void;
};

export interface ConsumerHost {
  /** basic.cancel for this consumer. */
  cancelConsumer(consumerTag: string): Promise<void>;
  /** Stop (true) or resume (false) reading from the socket on this consumer's behalf. */
  pauseReading(consumer: Consumer, paused: boolean): void;
  /** basic.reject for a message the callback failed on; never throws. */
  rejectUnhandled(deliveryTag: Int64, requeue: boolean): void;
  /** Forget the consumer and send basic.cancel (no-wait); never throws. */
  abandonConsumer(consumerTag: string, noAck: boolean): void;
  warnUnobserved(source: object, message: string, error?: unknown): void;
}

/** How a consumer was started (basicConsume's options). */
export interface ConsumerSettings {
  readonly noAck: boolean;
  readonly requeueOnError: boolean | undefined;
  readonly onMessage: ((m: Message) => unknown) | undefined;
  readonly canPauseReading: boolean;
}

/** Buffered messages at which reading pauses, and at which it resumes. */
const PAUSE_AT = 4096;
const RESUME_AT = 1024;
/** Where reading cannot pause, the most messages a consumer buffers before it gives up. */
const OVERFLOW_AT = 4 * PAUSE_AT;


export class Consumer extends Emitter<ConsumerEvents> implements AsyncIterable<Message> {
  readonly consumerTag: string;
  #queue: string;
  readonly #host: ConsumerHost;
  readonly #settings: ConsumerSettings;
  #buffer: Message[] = [];
  #head = 0;
  #wake: (() => void) | undefined;
  #iterating = false;
  #ended = false;
  #error: Error | undefined;
  #paused = false;

  constructor(host: ConsumerHost, queue: string, consumerTag: string, settings: ConsumerSettings) {
    super();
    this.#host = host;
    this.#queue = queue;
    this.consumerTag = consumerTag;
    this.#settings = settings;
  }

  /** The queue it consumes from (a server-named queue gets a new name when a recovered connection redeclares it). */
  get queue(): string {
    return this.#queue;
  }

  /** @internal The consumer was re-registered after a recovery, on `queue`. */
  resubscribed(queue: string): void {
    this.#queue = queue;
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

  /** @internal A delivery arrived for this consumer. Never throws. */
  deliver(message: Message): void {
    const onMessage = this.#settings.onMessage;
    if (onMessage) {
      try {
        const r = onMessage(message);
        if (r instanceof Promise) r.catch((e: unknown) => this.#handlerFailed(e, message));
      } catch (e) {
        this.#handlerFailed(e, message);
      }
      return;
    }
    if (this.#ended) return; // after an overflow: the channel rejects what still arrives for this tag
    this.#buffer.push(message);
    const buffered = this.buffered;
    if (buffered >= PAUSE_AT) {
      if (this.#settings.canPauseReading) {
        if (!this.#paused) this.#setPaused(true);
      } else if (buffered >= OVERFLOW_AT) {
        this.#host.abandonConsumer(this.consumerTag, this.#settings.noAck);
        this.end(new ConsumerOverflowError(this.consumerTag, buffered));
      }
    }
    this.#wakeUp();
  }

  /** A callback failed on `message`: settle it (unless it did) so it neither blocks the prefetch nor is lost. */
  #handlerFailed(error: unknown, message: Message): void {
    if (!this.#settings.noAck && !message.settled) {
      const requeue = this.#settings.requeueOnError ?? !message.redelivered;
      message.markSettled();
      this.#host.rejectUnhandled(message.deliveryTag, requeue);
    }
    if (this.listenerCount("error") > 0) this.emit("error", error, message);
    else {
      this.#host.warnUnobserved(
        this,
        `the message callback of consumer ${this.consumerTag} failed and the message was rejected; add an "error" listener or onError to see every failure (this is logged once per consumer)`,
        error,
      );
    }
  }

  #setPaused(paused: boolean): void {
    this.#paused = paused;
    this.#host.pauseReading(this, paused);
  }

  /**
   * @internal The consumer is over: cancelled (no error), by the broker, or with its channel. Returns whether
   * someone will see `error` (a loop iterating, a "close" listener).
   */
  end(error: Error | undefined): boolean {
    if (this.#ended) return true;
    this.#ended = true;
    this.#error = error;
    if (this.#paused) this.#setPaused(false);
    const observed = this.#iterating || this.listenerCount("close") > 0;
    this.#wakeUp();
    this.emit("close", error);
    return observed;
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    if (this.#settings.onMessage) throw new UsageError(`Consumer ${this.consumerTag} has a message callback; it cannot be iterated too`);
    if (this.#iterating) throw new UsageError(`Consumer ${this.consumerTag} is already being iterated; each message goes to one loop, so a consumer has one iterator`);
    this.#iterating = true;
    return this.#messages();
  }

  async *#messages(): AsyncGenerator<Message> {
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
