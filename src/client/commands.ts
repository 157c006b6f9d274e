/**
 * The machine commands a connection's channels use, with the one flush policy (requests at the end of the
 * current synchronous code, publishes and acks at the end of the turn — see driver.ts) and the one mapping of
 * the machine's CommandErrors to the client's typed errors.
 *
 * Replies are narrowed here once: the machine accepts as a reply only a method the spec lists among the
 * request's responses, so a request's reply is its ResponseOf<N>.
 */
import type { Method, RequestName } from "../codec/amqp/methods.generated.ts";
import type { PublishProperties } from "../codec/amqp/properties.ts";
import { CommandError } from "../machine/errors.ts";
import type { ReplyEvent } from "../machine/events.ts";
import type { Driver } from "./driver.ts";
import { ChannelClosedError, UsageError } from "./errors.ts";
import type { Reply, Request } from "./host.ts";
import type { PendingRequests } from "./requests.ts";

export class Commands {
  readonly #driver: Driver;
  readonly #pending: PendingRequests;
  readonly #closedError: () => Error;

  /** `closedError` is what a command on a closed connection throws. */
  constructor(driver: Driver, pending: PendingRequests, closedError: () => Error) {
    this.#driver = driver;
    this.#pending = pending;
    this.#closedError = closedError;
  }

  /** Sends a synchronous method and resolves with its reply (rejects with the typed error of what closed first). */
  request<N extends RequestName>(channel: number, method: Request<N>, signal: AbortSignal | undefined, onReply?: (e: Reply<N>) => void): Promise<Reply<N>> {
    let requestId: number;
    try {
      requestId = this.#driver.machine.call(channel, method as Method);
    } catch (e) {
      return Promise.reject(this.error(e));
    }
    this.#driver.flushForRequest();
    return this.#pending.wait(requestId, signal, onReply as ((e: ReplyEvent) => void) | undefined) as Promise<Reply<N>>;
  }

  /** A request of warren's own (a replay step): any method `call` accepts. */
  rawRequest(channel: number, method: Method): Promise<ReplyEvent> {
    return this.request(channel, method as Request<RequestName>, undefined) as Promise<ReplyEvent>;
  }

  /** Sends an asynchronous method (acks: a hot path, so no closure here). Throws a typed error for misuse. */
  send(channel: number, method: Method): void {
    try {
      this.#driver.machine.send(channel, method);
    } catch (e) {
      throw this.error(e);
    }
    this.#driver.scheduleFlush();
  }

  /** For clean-up during dispatch: never throws; false when the channel or connection cannot send. */
  trySend(channel: number, method: Method): boolean {
    const machine = this.#driver.machine;
    if (!machine.isChannelOpen(channel)) return false;
    try {
      machine.send(channel, method);
    } catch {
      return false;
    }
    this.#driver.scheduleFlush();
    return true;
  }

  publish(channel: number, exchange: string, routingKey: string, body: Uint8Array, properties: PublishProperties, mandatory: boolean, immediate: boolean): number {
    let seq: number;
    try {
      seq = this.#driver.machine.publish(channel, exchange, routingKey, body, properties, mandatory, immediate);
    } catch (e) {
      throw this.error(e);
    }
    this.#driver.scheduleFlush();
    return seq;
  }

  /** Opens a channel (`preferred`: with that number) and resolves with its number once it is open. */
  async openChannel(preferred: number | undefined, signal: AbortSignal | undefined, onReply?: () => void): Promise<number> {
    let opened: { channel: number; requestId: number };
    try {
      opened = this.#driver.machine.openChannel(preferred);
    } catch (e) {
      throw this.error(e);
    }
    this.#driver.flushForRequest();
    await this.#pending.wait(opened.requestId, signal, onReply);
    return opened.channel;
  }

  /** channel.close; resolves with close-ok. */
  closeChannel(channel: number, signal: AbortSignal | undefined): Promise<void> {
    let requestId: number;
    try {
      requestId = this.#driver.machine.closeChannel(channel);
    } catch (e) {
      return Promise.reject(this.error(e));
    }
    this.#driver.flushForRequest();
    return this.#pending.wait(requestId, signal).then(() => undefined);
  }

  /** Closes a channel of warren's own without waiting, if it is still open. */
  dropChannel(channel: number): void {
    if (!this.#driver.machine.isChannelOpen(channel)) return;
    this.#driver.machine.closeChannel(channel);
    this.#driver.flushForRequest();
  }

  /** connection.update-secret; resolves with update-secret-ok. */
  async updateSecret(secret: Uint8Array, reason: string, signal: AbortSignal | undefined): Promise<void> {
    let requestId: number;
    try {
      requestId = this.#driver.machine.updateSecret(secret, reason);
    } catch (e) {
      throw this.error(e);
    }
    this.#driver.flushForRequest();
    await this.#pending.wait(requestId, signal);
  }

  /** A machine's CommandError as the client's typed error; anything else as it is. */
  error(e: unknown): unknown {
    if (!(e instanceof CommandError)) return e;
    if (e.code === "CONNECTION_CLOSED" || e.code === "NOT_OPEN") return this.#closedError();
    if (e.code === "CHANNEL_CLOSED") return new ChannelClosedError(e.message);
    return new UsageError(e.message);
  }
}
