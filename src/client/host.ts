/**
 * The seam between a channel and its connection: what a channel may ask for. Requests are typed by name, so
 * a reply needs no narrowing at the call site.
 */
import type { Method, MethodByName, RequestName, ResponseOf } from "../codec/amqp/methods.generated.ts";
import type { PublishProperties } from "../codec/amqp/properties.ts";
import type { ReplyEvent } from "../machine/events.ts";
import type { Consumer } from "./consumer.ts";
import type { Topology } from "./recovery/topology.ts";

/**
 * What a channel needs from its connection: intention-level operations. The connection owns the machine and
 * decides when bytes leave (requests flush at the end of the current synchronous code, publishes and acks at
 * the end of the event-loop turn); a channel never touches the machine itself.
 */
export interface ChannelHost {
  /**
   * Sends a synchronous method and resolves with its reply, or rejects with the typed error of whatever
   * closed the channel or connection first. `onReply` sees the reply synchronously when it is dispatched —
   * before deliveries that arrived in the same read — even after `signal` aborted the wait.
   */
  request<N extends RequestName>(channel: number, method: Request<N>, signal: AbortSignal | undefined, onReply?: (e: Reply<N>) => void): Promise<Reply<N>>;
  /** Sends an asynchronous method (ack, nack, reject, a no-wait request). Throws a typed error for misuse. */
  send(channel: number, method: Method): void;
  /**
   * Sends clean-up (a reject for an unwanted delivery, a cancel for an abandoned consumer) while events are
   * being dispatched: never throws, returns false when the channel or connection can no longer send.
   */
  trySend(channel: number, method: Method): boolean;
  /** Queues a publish; returns its confirm sequence number, or 0 outside confirm mode. Throws a typed error for bad input. */
  publish(channel: number, exchange: string, routingKey: string, body: Uint8Array, properties: PublishProperties, mandatory: boolean, immediate: boolean): number;
  /**
   * Sends channel.close and resolves with close-ok; resolves too when the channel closes any other way first.
   * Throws a typed error when the channel is already closing on the machine's side (the caller then waits for
   * its `channelClosed`).
   */
  closeChannel(channel: number, signal: AbortSignal | undefined): Promise<void>;
  /** Resolves when the transport can take more bytes (undefined when it can at once). */
  writable(): Promise<void> | undefined;
  /** Whether writing is currently over the high-water mark. */
  readonly backpressured: boolean;
  /** Stops (true) or resumes (false) reading from the socket for `who` (reading resumes when nobody asks). */
  pauseReading(who: object, paused: boolean): void;
  /** False on transports that cannot stop reading (WebSocket): consumers must bound their buffers instead. */
  readonly canPauseReading: boolean;
  /** Reports an error nobody observed (no listener, no awaiting promise), once per `source`. */
  warnUnobserved(source: object, message: string, error?: unknown): void;

  // Recovery (see src/client/recovery/): all no-ops without it.

  /** Whether confirm-mode publishes keep a copy of their message, to send it again if its outcome is lost. */
  readonly resendUnconfirmed: boolean;
  /** True between a connection loss and its recovery: requests and publishes wait for `whenRecovered`. */
  readonly recovering: boolean;
  /** Resolves once the connection is open again; rejects with NotConnectedError past the wait timeout or on abort. */
  whenRecovered(signal: AbortSignal | undefined, what: string): Promise<void>;
  /** Where successful declarations are recorded for replay; undefined without recovery. */
  readonly topology: Topology<Consumer> | undefined;
  /** Reopens channel `channel` (same number) on the recovered connection. */
  reopenChannel(channel: number): Promise<void>;
}

/** A synchronous request, typed by its name. */
export type Request<N extends RequestName> = { readonly name: N } & MethodByName[N];
/** The reply to request `N`: its method is one of the responses the spec gives for `N`. */
export type Reply<N extends RequestName> = Omit<ReplyEvent, "method"> & { readonly method: ResponseOf<N> };
