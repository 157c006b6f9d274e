/**
 * A channel: the AMQP methods as promises, named as in the spec (queueDeclare, basicPublish, …).
 *
 * Every method sends through the connection's machine and settles when the machine reports the reply — or
 * rejects with a typed error when the channel or connection closes first. Nothing here parses or builds
 * frames.
 */
import type { FieldTable } from "../codec/amqp/field-table.ts";
import type { Method, RequestName } from "../codec/amqp/methods.generated.ts";
import type { PublishProperties } from "../codec/amqp/properties.ts";
import type { Int64 } from "../codec/parsers.ts";
import type { DeliveryEvent, PublishConfirmedEvent, ReturnEvent } from "../machine/events.ts";
import { Consumer, ConsumerCancelledError } from "./consumer.ts";
import { Emitter } from "./emitter.ts";
import { AbortError, MessageReturnedError, NotConnectedError, PublishNackedError, type WarrenError } from "./errors.ts";
import { Message, type MessageSettler } from "./message.ts";

import type { ChannelEvents, ConsumeOptions, PublishOptions, QueueDeclareOptions, QueueDeclareResult, ExchangeDeclareOptions, Signal } from "./channel-options.ts";
import type { ChannelHost, Reply, Request } from "./host.ts";
import type { ConsumeStep } from "./recovery/replay.ts";
import { DeliveryTags } from "./delivery-tags.ts";
import { ownedCopy, publishBody, resendCopy } from "./publish-args.ts";
import { Confirms, type Resend } from "./confirms.ts";
import { asyncDispose } from "./dispose.ts";

export type * from "./channel-options.ts";
export type { ChannelHost, Reply, Request } from "./host.ts";

const RESOLVED = Promise.resolve();

/** How the channel ended, as its `channelClosed` event said. */
interface Ended {
  /** Undefined for a clean close by the application. */
  readonly error: WarrenError | undefined;
  /** What operations on the closed channel reject with. */
  readonly rejection: WarrenError;
}

export class Channel extends Emitter<ChannelEvents> implements MessageSettler {
  /** The channel number. */
  readonly id: number;
  readonly #host: ChannelHost;
  /** Set from the machine's channelClosed event — the only place the channel learns it is gone. */
  #ended: Ended | undefined;
  #whenEnded: Promise<void>;
  #markEnded!: () => void;
  #closing: Promise<void> | undefined;
  #consumers = new Map<string, Consumer>();
  /**
   * Consumers warren gave up on (an aborted basicConsume, an overflow) → whether they were noAck. Their
   * deliveries still in flight are rejected (requeued) — or, for noAck ones, which the broker already
   * forgot, dropped: rejecting those would close the channel with 406.
   */
  #orphans = new Map<string, boolean>();
  /** Delivery tags as the application sees them, across recoveries. */
  readonly #tags = new DeliveryTags();
  /** The channel's settings to restore on a recovered connection, in the order they were made (qos, confirm, tx). */
  #settings: Method[] = [];
  readonly #confirms = new Confirms();
  #flowActive = true;

  constructor(host: ChannelHost, id: number) {
    super();
    this.#host = host;
    this.id = id;
    this.#whenEnded = new Promise((resolve) => (this.#markEnded = resolve));
  }

  /** True once the channel closed. */
  get closed(): boolean {
    return this.#ended !== undefined;
  }
  /** Whether the broker allows publishing (channel.flow); RabbitMQ uses connection.blocked instead. */
  get flowActive(): boolean {
    return this.#flowActive;
  }

  async [asyncDispose](): Promise<void> {
    await this.close().catch(() => undefined);
  }

  // ---------------------------------------------------------------------------------------------------
  // Exchanges

  async exchangeDeclare(exchange: string, type: string, o: ExchangeDeclareOptions = {}): Promise<void> {
    await this.#call(
      {
        name: "exchange.declare",
        classId: 40,
        methodId: 10,
        exchange,
        type,
        passive: o.passive ?? false,
        durable: o.durable ?? false,
        autoDelete: o.autoDelete ?? false,
        internal: o.internal ?? false,
        noWait: o.noWait ?? false,
        arguments: o.arguments ?? {},
      },
      o,
    );
    if (!o.passive) {
      this.#host.topology?.exchangeDeclared({ exchange, type, durable: o.durable ?? false, autoDelete: o.autoDelete ?? false, internal: o.internal ?? false, arguments: o.arguments ?? {} });
    }
  }

  async exchangeDelete(exchange: string, o: { ifUnused?: boolean; noWait?: boolean } & Signal = {}): Promise<void> {
    await this.#call({ name: "exchange.delete", classId: 40, methodId: 20, exchange, ifUnused: o.ifUnused ?? false, noWait: o.noWait ?? false }, o);
    this.#host.topology?.exchangeDeleted(exchange);
  }

  /** Binds exchange `destination` to `source` (a RabbitMQ extension). */
  async exchangeBind(destination: string, source: string, routingKey = "", args: FieldTable = {}, o: { noWait?: boolean } & Signal = {}): Promise<void> {
    await this.#call({ name: "exchange.bind", classId: 40, methodId: 30, destination, source, routingKey, noWait: o.noWait ?? false, arguments: args }, o);
    this.#host.topology?.exchangeBound({ destination, source, routingKey, arguments: args });
  }

  async exchangeUnbind(destination: string, source: string, routingKey = "", args: FieldTable = {}, o: { noWait?: boolean } & Signal = {}): Promise<void> {
    await this.#call({ name: "exchange.unbind", classId: 40, methodId: 40, destination, source, routingKey, noWait: o.noWait ?? false, arguments: args }, o);
    this.#host.topology?.exchangeUnbound({ destination, source, routingKey, arguments: args });
  }

  // ---------------------------------------------------------------------------------------------------
  // Queues

  /** Declares a queue; "" lets the broker name it. With noWait the result's counts are 0. */
  async queueDeclare(queue = "", o: QueueDeclareOptions = {}): Promise<QueueDeclareResult> {
    const reply = await this.#call(
      {
        name: "queue.declare",
        classId: 50,
        methodId: 10,
        queue,
        passive: o.passive ?? false,
        durable: o.durable ?? false,
        exclusive: o.exclusive ?? false,
        autoDelete: o.autoDelete ?? false,
        noWait: o.noWait ?? false,
        arguments: o.arguments ?? {},
      },
      o,
    );
    const result = reply ? { queue: reply.method.queue, messageCount: reply.method.messageCount, consumerCount: reply.method.consumerCount } : { queue, messageCount: 0, consumerCount: 0 };
    if (!o.passive) {
      const requested = { queue, durable: o.durable ?? false, exclusive: o.exclusive ?? false, autoDelete: o.autoDelete ?? false, arguments: o.arguments ?? {} };
      this.#host.topology?.queueDeclared(requested, result.queue);
    }
    return result;
  }

  async queueBind(queue: string, exchange: string, routingKey = "", args: FieldTable = {}, o: { noWait?: boolean } & Signal = {}): Promise<void> {
    await this.#call({ name: "queue.bind", classId: 50, methodId: 20, queue, exchange, routingKey, noWait: o.noWait ?? false, arguments: args }, o);
    this.#host.topology?.queueBound({ queue, exchange, routingKey, arguments: args });
  }

  async queueUnbind(queue: string, exchange: string, routingKey = "", args: FieldTable = {}, o: Signal = {}): Promise<void> {
    await this.#call({ name: "queue.unbind", classId: 50, methodId: 50, queue, exchange, routingKey, arguments: args }, o);
    this.#host.topology?.queueUnbound({ queue, exchange, routingKey, arguments: args });
  }

  /** Removes all ready messages; resolves with how many. */
  async queuePurge(queue: string, o: { noWait?: boolean } & Signal = {}): Promise<{ messageCount: number }> {
    const reply = await this.#call({ name: "queue.purge", classId: 50, methodId: 30, queue, noWait: o.noWait ?? false }, o);
    return { messageCount: reply?.method.messageCount ?? 0 };
  }

  async queueDelete(queue: string, o: { ifUnused?: boolean; ifEmpty?: boolean; noWait?: boolean } & Signal = {}): Promise<{ messageCount: number }> {
    const reply = await this.#call(
      { name: "queue.delete", classId: 50, methodId: 40, queue, ifUnused: o.ifUnused ?? false, ifEmpty: o.ifEmpty ?? false, noWait: o.noWait ?? false },
      o,
    );
    this.#host.topology?.queueDeleted(queue);
    return { messageCount: reply?.method.messageCount ?? 0 };
  }

  // ---------------------------------------------------------------------------------------------------
  // Basic

  /** basic.qos: at most `prefetchCount` unacked messages per consumer (or per channel with `global`). */
  async basicQos(prefetchCount: number, o: { prefetchSize?: number; global?: boolean } & Signal = {}): Promise<void> {
    const method: Request<"basic.qos"> = { name: "basic.qos", classId: 60, methodId: 10, prefetchSize: o.prefetchSize ?? 0, prefetchCount, global: o.global ?? false };
    await this.#request(method, o);
    this.#remember(method, (m) => m.name === "basic.qos" && m.global === method.global);
  }

  /**
   * Starts a consumer. Iterate it with `for await`, or pass `onMessage` to be called for each message.
   *
   * A callback that throws (or returns a rejected promise) before settling its message gets the message
   * rejected: requeued the first time, dead-lettered (or dropped) when it was already redelivered, so one
   * poison message cannot spin forever — `requeueOnError` forces either way. The error goes to the
   * consumer's "error" listeners and `onError`, or to the connection's logger when there are none.
   * @example
   * const consumer = await ch.basicConsume(queue);
   * for await (const msg of consumer) { handle(msg.body); msg.ack(); }
   */
  async basicConsume(queue: string, o: ConsumeOptions = {}, onMessage?: (message: Message) => unknown): Promise<Consumer> {
    const noAck = o.noAck ?? false;
    const method: Request<"basic.consume"> = {
      name: "basic.consume",
      classId: 60,
      methodId: 20,
      queue,
      consumerTag: o.consumerTag ?? "",
      noLocal: o.noLocal ?? false,
      noAck,
      exclusive: o.exclusive ?? false,
      noWait: false,
      arguments: o.arguments ?? {},
    };
    let consumer: Consumer | undefined;
    // Register the consumer when consume-ok is dispatched, not when this function resumes: its first
    // deliveries may arrive in the same read and would otherwise find no consumer (and be rejected, or lost
    // with noAck).
    await this.#request(method, o, (e) => {
      const consumerTag = e.method.consumerTag;
      if (o.signal?.aborted) {
        // The application gave up waiting: do not leave a consumer running that nobody can see or cancel.
        // This runs inside dispatch, so it must not throw (the connection may be closing in the same read).
        this.#orphans.set(consumerTag, noAck);
        this.#host.trySend(this.id, { name: "basic.cancel", classId: 60, methodId: 30, consumerTag, noWait: true });
        return;
      }
      const settings = { noAck, requeueOnError: o.requeueOnError, onMessage, canPauseReading: this.#host.canPauseReading };
      consumer = new Consumer(this, queue, consumerTag, settings);
      if (o.onError) consumer.on("error", o.onError);
      this.#consumers.set(consumerTag, consumer);
      this.#host.topology?.consumerStarted({ key: consumer, queue, consumerTag, noLocal: method.noLocal, noAck, exclusive: method.exclusive, arguments: method.arguments });
    });
    if (!consumer) throw new Error("unreachable: basic.consume-ok dispatched without registering its consumer");
    return consumer;
  }

  /** Cancels a consumer by tag. Prefer `consumer.cancel()`. */
  async basicCancel(consumerTag: string, o: Signal = {}): Promise<void> {
    await this.cancelConsumer(consumerTag, o.signal);
  }

  /** @internal */
  pauseReading(consumer: Consumer, paused: boolean): void {
    this.#host.pauseReading(consumer, paused);
  }

  /** @internal */
  warnUnobserved(source: object, message: string, error?: unknown): void {
    this.#host.warnUnobserved(source, message, error);
  }

  /** @internal A consumer gives up on a message it could not handle (see basicConsume); never throws. */
  rejectUnhandled(deliveryTag: Int64, requeue: boolean): void {
    if (this.#tags.coveredByMultiple(deliveryTag)) return; // the application acked it already, with multiple
    const tag = this.#tags.toBroker(deliveryTag, false);
    if (tag === undefined) return; // from before a recovery: the broker redelivers it anyway
    this.#host.trySend(this.id, { name: "basic.reject", classId: 60, methodId: 90, deliveryTag: tag, requeue });
  }

  /** @internal A consumer that cannot bound its buffer stops the broker sending (see Consumer); never throws. */
  abandonConsumer(consumerTag: string, noAck: boolean): void {
    const consumer = this.#consumers.get(consumerTag);
    if (consumer) this.#host.topology?.consumerCancelled(consumer);
    this.#consumers.delete(consumerTag);
    this.#orphans.set(consumerTag, noAck);
    this.#host.trySend(this.id, { name: "basic.cancel", classId: 60, methodId: 30, consumerTag, noWait: true });
  }

  /** @internal */
  async cancelConsumer(consumerTag: string, signal?: AbortSignal): Promise<void> {
    if (this.#ended) {
      this.#consumers.get(consumerTag)?.end(undefined);
      return;
    }
    await this.#request({ name: "basic.cancel", classId: 60, methodId: 30, consumerTag, noWait: false }, { signal });
    const consumer = this.#consumers.get(consumerTag);
    this.#consumers.delete(consumerTag);
    if (consumer) this.#host.topology?.consumerCancelled(consumer);
    consumer?.end(undefined);
  }

  /**
   * Publishes a message. Outside confirm mode it resolves at once — or, when the socket's buffer is over the
   * high-water mark, once it drains. In confirm mode it resolves when the broker acks, and rejects with
   * PublishNackedError on a nack or MessageReturnedError when a mandatory message comes back unroutable.
   *
   * The message is encoded before this returns: changing `body` or `properties` afterwards changes nothing
   * that is sent. Bad input (a body that is not bytes or a string, a header RabbitMQ cannot parse) rejects
   * with a UsageError before anything is sent.
   */
  basicPublish(exchange: string, routingKey: string, body: Uint8Array | string, properties: PublishProperties = {}, o: PublishOptions = {}): Promise<void> {
    let seq: number;
    let resend: Resend | undefined;
    try {
      if (o.signal?.aborted) throw new AbortError("basicPublish aborted before it was sent", { cause: o.signal.reason });
      if (this.#host.recovering) {
        // Disconnected: wait for the next connection (bounded), with a copy that owns its bytes.
        const copy = ownedCopy(this.#checkPublish("basicPublish", body, properties), properties);
        return this.#host.whenRecovered(o.signal, "basicPublish").then(() => this.basicPublish(exchange, routingKey, copy.body, copy.properties, o));
      }
      const bytes = this.#checkPublish("basicPublish", body, properties);
      seq = this.#host.publish(this.id, exchange, routingKey, bytes, properties, o.mandatory ?? false, o.immediate ?? false);
      if (seq !== 0 && this.#host.resendUnconfirmed) resend = resendCopy(exchange, routingKey, bytes, properties, o);
    } catch (e) {
      return Promise.reject(e);
    }
    if (seq === 0) return this.#host.writable() ?? RESOLVED;
    const signal = o.signal;
    return new Promise<void>((resolve, reject) => {
      if (!signal) {
        this.#confirms.add(seq, resolve, reject, resend, true);
        return;
      }
      const onAbort = () => {
        if (this.#confirms.remove(entry)) reject(new AbortError("basicPublish aborted before the broker confirmed it (the message may still arrive)"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      const done = () => signal.removeEventListener("abort", onAbort);
      const entry = this.#confirms.add(seq, () => (done(), resolve()), (e) => (done(), reject(e)), resend, true);
    });
  }

  /**
   * Publishes without waiting, for tight loops: returns false when the socket's buffer is over the
   * high-water mark — the message is still sent; wait for `connection.writable()` before publishing more.
   * In confirm mode the outcome is not reported here; use basicPublish for that.
   */
  tryPublish(exchange: string, routingKey: string, body: Uint8Array | string, properties: PublishProperties = {}, o: PublishOptions = {}): boolean {
    if (this.#host.recovering) throw new NotConnectedError("tryPublish: not sent, the connection is recovering (basicPublish waits for it)");
    const bytes = this.#checkPublish("tryPublish", body, properties);
    const seq = this.#host.publish(this.id, exchange, routingKey, bytes, properties, o.mandatory ?? false, o.immediate ?? false);
    if (seq !== 0) {
      // Nobody waits for its confirm, but under the resend policy a lost one is still published again.
      const resend = this.#host.resendUnconfirmed ? resendCopy(exchange, routingKey, bytes, properties, o) : undefined;
      this.#confirms.add(seq, ignore, ignore, resend, false);
    }
    return !this.#host.backpressured;
  }

  /** The body as bytes, after the checks every publish gets before anything is sent. */
  #checkPublish(what: string, body: Uint8Array | string, properties: PublishProperties): Uint8Array {
    if (this.#ended) throw this.#ended.rejection;
    return publishBody(what, body, properties);
  }

  /** basic.get: one message, or null when the queue is empty. */
  async basicGet(queue: string, o: { noAck?: boolean } & Signal = {}): Promise<Message | null> {
    const reply = await this.#request({ name: "basic.get", classId: 60, methodId: 70, queue, noAck: o.noAck ?? false }, o, (e) => {
      // Aborted while the broker was answering: give the message back rather than leave it unacked. This runs
      // inside dispatch, so it must not throw.
      if (o.signal?.aborted && !o.noAck && e.method.name === "basic.get-ok") {
        this.#host.trySend(this.id, { name: "basic.reject", classId: 60, methodId: 90, deliveryTag: e.method.deliveryTag, requeue: true });
      }
    });
    const m = reply.method;
    if (m.name !== "basic.get-ok" || !reply.message) return null;
    return new Message(this, reply.message.body, reply.message.properties, this.#tags.fromBroker(m.deliveryTag), m.redelivered, m.exchange, m.routingKey, "", m.messageCount);
  }

  /**
   * basic.ack. Returns false, sending nothing, for a delivery tag from before a connection recovery: the
   * broker has forgotten it (it redelivers the message), and acking it would close the channel (406).
   */
  basicAck(deliveryTag: Int64, multiple = false): boolean {
    const tag = this.#tags.toBroker(deliveryTag, multiple);
    if (tag === undefined) return false;
    this.#send({ name: "basic.ack", classId: 60, methodId: 80, deliveryTag: tag, multiple });
    if (multiple) this.#tags.settledMultiple(deliveryTag);
    return true;
  }

  /** basic.nack; returns false, as basicAck does, for a tag from before a recovery. */
  basicNack(deliveryTag: Int64, o: { multiple?: boolean; requeue?: boolean } = {}): boolean {
    const multiple = o.multiple ?? false;
    const tag = this.#tags.toBroker(deliveryTag, multiple);
    if (tag === undefined) return false;
    this.#send({ name: "basic.nack", classId: 60, methodId: 120, deliveryTag: tag, multiple, requeue: o.requeue ?? true });
    if (multiple) this.#tags.settledMultiple(deliveryTag);
    return true;
  }

  /** basic.reject; returns false, as basicAck does, for a tag from before a recovery. */
  basicReject(deliveryTag: Int64, requeue = true): boolean {
    const tag = this.#tags.toBroker(deliveryTag, false);
    if (tag === undefined) return false;
    this.#send({ name: "basic.reject", classId: 60, methodId: 90, deliveryTag: tag, requeue });
    return true;
  }

  /** basic.recover: redeliver unacked messages (requeued unless `requeue` is false). */
  async basicRecover(requeue = true, o: Signal = {}): Promise<void> {
    await this.#request({ name: "basic.recover", classId: 60, methodId: 110, requeue }, o);
  }

  // ---------------------------------------------------------------------------------------------------
  // Confirms, transactions, flow

  /** Puts the channel in confirm mode: from now on basicPublish resolves on the broker's ack. */
  async confirmSelect(o: Signal = {}): Promise<void> {
    await this.#request({ name: "confirm.select", classId: 85, methodId: 10, noWait: false }, o);
    this.#remember({ name: "confirm.select", classId: 85, methodId: 10, noWait: false }, (m) => m.name === "confirm.select");
  }

  async txSelect(o: Signal = {}): Promise<void> {
    await this.#request({ name: "tx.select", classId: 90, methodId: 10 }, o);
    this.#remember({ name: "tx.select", classId: 90, methodId: 10 }, (m) => m.name === "tx.select");
  }
  async txCommit(o: Signal = {}): Promise<void> {
    await this.#request({ name: "tx.commit", classId: 90, methodId: 20 }, o);
  }
  async txRollback(o: Signal = {}): Promise<void> {
    await this.#request({ name: "tx.rollback", classId: 90, methodId: 30 }, o);
  }

  /** channel.flow: ask the broker to stop (false) or restart (true) deliveries on this channel. */
  async channelFlow(active: boolean, o: Signal = {}): Promise<boolean> {
    const reply = await this.#request({ name: "channel.flow", classId: 20, methodId: 20, active }, o);
    return reply.method.active;
  }

  /**
   * Closes the channel; pending operations on it reject with ChannelClosedError. Idempotent: every call
   * returns the same promise, and on a channel that is already closed (or that the broker or warren is
   * closing) it resolves once the channel is gone. `signal` only stops the wait, not the close.
   */
  close(o: Signal = {}): Promise<void> {
    if (this.#ended) return RESOLVED;
    this.#closing ??= this.#close();
    if (!o.signal) return this.#closing;
    const signal = o.signal;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(new AbortError("channel close aborted (the channel still closes)", { cause: signal.reason }));
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      this.#closing!.then(() => (signal.removeEventListener("abort", onAbort), resolve()));
    });
  }

  async #close(): Promise<void> {
    try {
      await this.#host.closeChannel(this.id, undefined);
    } catch {
      // Already closing on the machine's side (the broker's close, or warren's own 311), or the connection is
      // gone: either way the channel ends with its channelClosed event.
    }
    await this.#whenEnded;
  }

  // ---------------------------------------------------------------------------------------------------
  // Recovery

  /** Keeps a setting to restore after a recovery; `same` finds the one it replaces. */
  #remember(method: Method, same: (m: Method) => boolean): void {
    if (!this.#host.topology) return;
    this.#settings = this.#settings.filter((m) => !same(m));
    this.#settings.push(method);
  }

  /**
   * @internal The connection was lost and will be recovered: the channel lives on. Unconfirmed publishes were
   * failed already (OutcomeUnknownError); tags delivered so far become stale.
   */
  onConnectionLost(): void {
    this.#tags.connectionLost();
  }

  /** @internal On the recovered connection: reopen with the same number and restore qos, confirm and tx mode. */
  async reopen(): Promise<void> {
    await this.#host.reopenChannel(this.id);
    for (const m of this.#settings) await this.#host.request(this.id, m as Request<RequestName>, undefined);
  }

  /** @internal */
  hasConsumer(consumer: Consumer): boolean {
    return this.#consumers.get(consumer.consumerTag) === consumer;
  }

  /** @internal Re-registers a consumer (same tag, same options) on the recovered connection. */
  async resubscribe(step: ConsumeStep<Consumer>): Promise<void> {
    const consumer = this.#consumers.get(step.consumerTag);
    if (consumer !== step.key) return; // cancelled meanwhile
    const { queue, consumerTag, noLocal, noAck, exclusive } = step;
    await this.#host.request(this.id, { name: "basic.consume", classId: 60, methodId: 20, queue, consumerTag, noLocal, noAck, exclusive, noWait: false, arguments: step.arguments }, undefined);
    consumer.resubscribed(queue);
  }

  // ---------------------------------------------------------------------------------------------------
  // Internals called by the connection while dispatching machine events; none of them throws.

  /** @internal */
  onDelivery(e: DeliveryEvent): void {
    const message = new Message(this, e.message.body, e.message.properties, this.#tags.fromBroker(e.deliveryTag), e.redelivered, e.exchange, e.routingKey, e.consumerTag, undefined);
    const consumer = this.#consumers.get(e.consumerTag);
    if (consumer) consumer.deliver(message);
    // A delivery for a consumer we gave up on (it raced the cancel): give it back rather than lose it — unless
    // it was noAck, when the broker has forgotten it and a reject would close the channel (406).
    else if (this.#orphans.get(e.consumerTag) !== true) this.#host.trySend(this.id, { name: "basic.reject", classId: 60, methodId: 90, deliveryTag: e.deliveryTag, requeue: true });
  }

  /** @internal */
  onReturn(e: ReturnEvent): void {
    this.emit("return", { replyCode: e.replyCode, replyText: e.replyText, exchange: e.exchange, routingKey: e.routingKey, properties: e.message.properties, body: e.message.body });
  }

  /** @internal */
  onConfirm(e: PublishConfirmedEvent): void {
    const pending = this.#confirms.take(e.seq);
    if (!pending) return;
    if (e.returned) {
      const r = e.returned;
      pending.reject(
        new MessageReturnedError(`Message returned by the broker: ${r.replyCode} ${r.replyText} (exchange "${r.exchange}", routing key "${r.routingKey}")`, {
          replyCode: r.replyCode,
          replyText: r.replyText,
          classId: 60,
          methodId: 50,
        }),
      );
    } else if (e.ack) pending.resolve();
    else pending.reject(new PublishNackedError(`The broker nacked publish #${e.seq} on channel ${this.id}`, { classId: 60, methodId: 120 }));
  }

  /**
   * @internal Publish `seq`'s outcome is lost; `recoverable` when the connection will be recovered (then,
   * under the resend policy, it is held for a resend). Returns whether an application promise saw `error`.
   */
  onPublishFailed(seq: number, error: WarrenError, recoverable: boolean): boolean {
    return this.#confirms.lost(seq, error, recoverable);
  }

  /** @internal On a recovered connection, after the topology: publishes again what the resend policy held; returns how many. */
  resendUnconfirmed(): number {
    if (this.#ended) return 0;
    return this.#confirms.resend((r) => this.#host.publish(this.id, r.exchange, r.routingKey, r.body, r.properties, r.mandatory, r.immediate));
  }

  /** @internal */
  onConsumerCancelled(consumerTag: string): void {
    const consumer = this.#consumers.get(consumerTag);
    this.#consumers.delete(consumerTag);
    if (consumer) this.#host.topology?.consumerCancelled(consumer);
    consumer?.end(new ConsumerCancelledError(consumerTag));
    this.emit("cancel", consumerTag);
  }

  /** @internal */
  onFlow(active: boolean): void {
    this.#flowActive = active;
    this.emit("flow", active);
  }

  /**
   * @internal The channel is gone. `error` is undefined for a clean close by the application; `observed` says
   * whether an awaiting promise already carried the failure to the application.
   */
  onClosed(error: WarrenError | undefined, rejection: WarrenError, observed: boolean): void {
    if (this.#ended) return;
    this.#ended = { error, rejection };
    let seen = observed || this.listenerCount("close") > 0;
    for (const consumer of this.#consumers.values()) {
      this.#host.topology?.consumerCancelled(consumer); // gone with the channel: nothing to replay
      seen = consumer.end(error) || seen;
    }
    this.#consumers.clear();
    if (this.#confirms.rejectAll(rejection)) seen = true;
    this.#markEnded();
    this.emit("close", error);
    if (error && !seen) this.#host.warnUnobserved(this, `channel ${this.id} closed: ${error.message}`, error);
  }

  /** Sends a synchronous method and waits for its reply. */
  #request<N extends RequestName>(method: Request<N>, o: Signal, onReply?: (e: Reply<N>) => void): Promise<Reply<N>> {
    if (this.#ended) return Promise.reject(this.#ended.rejection);
    if (o.signal?.aborted) return Promise.reject(new AbortError("operation aborted before it was sent", { cause: o.signal.reason }));
    if (this.#host.recovering) return this.#host.whenRecovered(o.signal, method.name).then(() => this.#request(method, o, onReply));
    return this.#host.request(this.id, method, o.signal, onReply);
  }

  /** A request that may have no-wait set: then it is only sent, and resolves undefined. */
  #call<N extends RequestName>(method: Request<N>, o: Signal): Promise<Reply<N> | undefined> {
    return (method as { noWait?: boolean }).noWait === true ? this.#sendNoWait(method, o).then(() => undefined) : this.#request(method, o);
  }

  /** Sends a method with no-wait set; nothing answers it. */
  #sendNoWait(method: Method, o: Signal): Promise<void> {
    if (this.#ended) return Promise.reject(this.#ended.rejection);
    if (o.signal?.aborted) return Promise.reject(new AbortError("operation aborted before it was sent", { cause: o.signal.reason }));
    if (this.#host.recovering) return this.#host.whenRecovered(o.signal, method.name).then(() => this.#sendNoWait(method, o));
    try {
      this.#host.send(this.id, method);
    } catch (e) {
      return Promise.reject(e);
    }
    return RESOLVED;
  }

  #send(method: Method): void {
    if (this.#ended) throw this.#ended.rejection;
    this.#host.send(this.id, method);
  }
}

const ignore = (): void => undefined;
