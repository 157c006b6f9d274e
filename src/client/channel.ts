/**
 * A channel: the AMQP methods as promises, named as in the spec (queueDeclare, basicPublish, …).
 *
 * Every method sends through the connection's machine and settles when the machine reports the reply — or
 * rejects with a typed error when the channel or connection closes first. Nothing here parses or builds
 * frames.
 */
import type { FieldTable } from "../codec/amqp/field-table.ts";
import type { Method } from "../codec/amqp/methods.generated.ts";
import type { BasicProperties } from "../codec/amqp/properties.ts";
import type { Int64 } from "../codec/parsers.ts";
import { encodeUtf8 } from "../codec/utf8.ts";
import type { CloseReason, DeliveryEvent, PublishConfirmedEvent, ReplyEvent, ReturnEvent } from "../machine/events.ts";
import { Consumer, ConsumerCancelledError } from "./consumer.ts";
import { Emitter } from "./emitter.ts";
import { AbortError, errorFromClose, MessageReturnedError, PublishNackedError, type WarrenError } from "./errors.ts";
import { Message, type MessageSettler } from "./message.ts";

/** What a channel needs from its connection. */
export interface ChannelHost {
  /** Runs a machine command, converting machine misuse errors into client errors. */
  command<T>(f: () => T): T;
  /** The request's reply, or its failure. */
  /** The request's reply, or its failure; `onReply` sees the reply synchronously (even after an abort). */
  waitReply(requestId: number, signal: AbortSignal | undefined, onReply?: (e: ReplyEvent) => void): Promise<ReplyEvent>;
  /** Resolves when the transport can take more bytes (at once when it can). */
  writable(): Promise<void> | undefined;
  /** Whether writing is currently over the high-water mark. */
  readonly backpressured: boolean;
  scheduleFlush(): void;
  /** Writes soon, for a request awaiting its reply (see Connection.flushForRequest). */
  flushForRequest(): void;
  /** Stops (true) or resumes (false) reading from the socket for `who` (reading resumes when nobody asks). */
  pauseReading(who: object, paused: boolean): void;
  readonly machine: import("../machine/connection.ts").ConnectionMachine;
}

export interface ReturnedMessage {
  readonly replyCode: number;
  readonly replyText: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly properties: BasicProperties;
  readonly body: Uint8Array;
}

export type ChannelEvents = {
  /** The channel closed; `error` unless the application closed it. */
  close: (error?: WarrenError) => void;
  /** An unroutable mandatory message came back (basic.return). */
  return: (message: ReturnedMessage) => void;
  /** The broker paused (false) or resumed (true) this channel's publishing (channel.flow). */
  flow: (active: boolean) => void;
  /** The broker cancelled a consumer. */
  cancel: (consumerTag: string) => void;
};

export interface Signal {
  signal?: AbortSignal;
}
export interface ExchangeDeclareOptions extends Signal {
  passive?: boolean;
  durable?: boolean;
  autoDelete?: boolean;
  internal?: boolean;
  noWait?: boolean;
  arguments?: FieldTable;
}
export interface QueueDeclareOptions extends Signal {
  passive?: boolean;
  durable?: boolean;
  exclusive?: boolean;
  autoDelete?: boolean;
  noWait?: boolean;
  arguments?: FieldTable;
}
export interface QueueDeclareResult {
  queue: string;
  messageCount: number;
  consumerCount: number;
}
export interface ConsumeOptions extends Signal {
  consumerTag?: string;
  noLocal?: boolean;
  noAck?: boolean;
  exclusive?: boolean;
  arguments?: FieldTable;
  /**
   * Called when the `onMessage` callback throws or rejects (the message stays unacked). Given here rather
   * than as an "error" listener, it also sees messages that arrive before basicConsume resolves.
   */
  onError?: (error: unknown, message: Message) => void;
}
export interface PublishOptions extends Signal {
  mandatory?: boolean;
  immediate?: boolean;
}

const asyncDispose: typeof Symbol.asyncDispose = (Symbol as { asyncDispose?: symbol }).asyncDispose as typeof Symbol.asyncDispose ?? (Symbol.for("Symbol.asyncDispose") as typeof Symbol.asyncDispose);
const RESOLVED = Promise.resolve();

interface PendingConfirm {
  resolve(): void;
  reject(e: Error): void;
}

export class Channel extends Emitter<ChannelEvents> implements MessageSettler {
  /** The channel number. */
  readonly id: number;
  readonly #host: ChannelHost;
  #closeError: WarrenError | undefined;
  #closed = false;
  #consumers = new Map<string, Consumer>();
  #confirms = new Map<number, PendingConfirm>();
  #flowActive = true;

  constructor(host: ChannelHost, id: number) {
    super();
    this.#host = host;
    this.id = id;
  }

  /** True once the channel closed. */
  get closed(): boolean {
    return this.#closed;
  }
  /** Whether the broker allows publishing (channel.flow); RabbitMQ uses connection.blocked instead. */
  get flowActive(): boolean {
    return this.#flowActive;
  }

  async [asyncDispose](): Promise<void> {
    if (!this.#closed) await this.close().catch(() => undefined);
  }

  // ---------------------------------------------------------------------------------------------------
  // Exchanges

  async exchangeDeclare(exchange: string, type: string, o: ExchangeDeclareOptions = {}): Promise<void> {
    await this.#request(
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
  }

  async exchangeDelete(exchange: string, o: { ifUnused?: boolean; noWait?: boolean } & Signal = {}): Promise<void> {
    await this.#request({ name: "exchange.delete", classId: 40, methodId: 20, exchange, ifUnused: o.ifUnused ?? false, noWait: o.noWait ?? false }, o);
  }

  /** Binds exchange `destination` to `source` (a RabbitMQ extension). */
  async exchangeBind(destination: string, source: string, routingKey = "", args: FieldTable = {}, o: { noWait?: boolean } & Signal = {}): Promise<void> {
    await this.#request({ name: "exchange.bind", classId: 40, methodId: 30, destination, source, routingKey, noWait: o.noWait ?? false, arguments: args }, o);
  }

  async exchangeUnbind(destination: string, source: string, routingKey = "", args: FieldTable = {}, o: { noWait?: boolean } & Signal = {}): Promise<void> {
    await this.#request({ name: "exchange.unbind", classId: 40, methodId: 40, destination, source, routingKey, noWait: o.noWait ?? false, arguments: args }, o);
  }

  // ---------------------------------------------------------------------------------------------------
  // Queues

  /** Declares a queue; "" lets the broker name it. With noWait the result's counts are 0. */
  async queueDeclare(queue = "", o: QueueDeclareOptions = {}): Promise<QueueDeclareResult> {
    const reply = await this.#request(
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
    if (reply?.method.name === "queue.declare-ok") {
      return { queue: reply.method.queue, messageCount: reply.method.messageCount, consumerCount: reply.method.consumerCount };
    }
    return { queue, messageCount: 0, consumerCount: 0 };
  }

  async queueBind(queue: string, exchange: string, routingKey = "", args: FieldTable = {}, o: { noWait?: boolean } & Signal = {}): Promise<void> {
    await this.#request({ name: "queue.bind", classId: 50, methodId: 20, queue, exchange, routingKey, noWait: o.noWait ?? false, arguments: args }, o);
  }

  async queueUnbind(queue: string, exchange: string, routingKey = "", args: FieldTable = {}, o: Signal = {}): Promise<void> {
    await this.#request({ name: "queue.unbind", classId: 50, methodId: 50, queue, exchange, routingKey, arguments: args }, o);
  }

  /** Removes all ready messages; resolves with how many. */
  async queuePurge(queue: string, o: { noWait?: boolean } & Signal = {}): Promise<{ messageCount: number }> {
    const reply = await this.#request({ name: "queue.purge", classId: 50, methodId: 30, queue, noWait: o.noWait ?? false }, o);
    return { messageCount: reply?.method.name === "queue.purge-ok" ? reply.method.messageCount : 0 };
  }

  async queueDelete(queue: string, o: { ifUnused?: boolean; ifEmpty?: boolean; noWait?: boolean } & Signal = {}): Promise<{ messageCount: number }> {
    const reply = await this.#request(
      { name: "queue.delete", classId: 50, methodId: 40, queue, ifUnused: o.ifUnused ?? false, ifEmpty: o.ifEmpty ?? false, noWait: o.noWait ?? false },
      o,
    );
    return { messageCount: reply?.method.name === "queue.delete-ok" ? reply.method.messageCount : 0 };
  }

  // ---------------------------------------------------------------------------------------------------
  // Basic

  /** basic.qos: at most `prefetchCount` unacked messages per consumer (or per channel with `global`). */
  async basicQos(prefetchCount: number, o: { prefetchSize?: number; global?: boolean } & Signal = {}): Promise<void> {
    await this.#request({ name: "basic.qos", classId: 60, methodId: 10, prefetchSize: o.prefetchSize ?? 0, prefetchCount, global: o.global ?? false }, o);
  }

  /**
   * Starts a consumer. Iterate it with `for await`, or pass `onMessage` to be called for each message.
   * @example
   * const consumer = await ch.basicConsume(queue);
   * for await (const msg of consumer) { handle(msg.body); msg.ack(); }
   */
  async basicConsume(queue: string, o: ConsumeOptions = {}, onMessage?: (message: Message) => unknown): Promise<Consumer> {
    const method: Method = {
      name: "basic.consume",
      classId: 60,
      methodId: 20,
      queue,
      consumerTag: o.consumerTag ?? "",
      noLocal: o.noLocal ?? false,
      noAck: o.noAck ?? false,
      exclusive: o.exclusive ?? false,
      noWait: false,
      arguments: o.arguments ?? {},
    };
    let consumer: Consumer | undefined;
    // Register the consumer when consume-ok is dispatched, not when this function resumes: its first
    // deliveries may arrive in the same read and would otherwise find no consumer (and be rejected, or lost
    // with noAck).
    const reply = await this.#request(method, o, (e) => {
      if (e.method.name !== "basic.consume-ok") return;
      const consumerTag = e.method.consumerTag;
      if (o.signal?.aborted) {
        // The application gave up waiting: do not leave a consumer running that nobody can see or cancel.
        if (!this.#closed) this.#host.command(() => this.#host.machine.send(this.id, { name: "basic.cancel", classId: 60, methodId: 30, consumerTag, noWait: true }));
        this.#host.scheduleFlush();
        return;
      }
      consumer = new Consumer(this, queue, consumerTag, onMessage);
      if (o.onError) consumer.on("error", o.onError);
      this.#consumers.set(consumerTag, consumer);
    });
    if (reply?.method.name !== "basic.consume-ok" || !consumer) throw new Error("unreachable: basic.consume answered by " + reply?.method.name);
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
  async cancelConsumer(consumerTag: string, signal?: AbortSignal): Promise<void> {
    if (this.#closed) {
      this.#consumers.get(consumerTag)?.end(undefined);
      return;
    }
    await this.#request({ name: "basic.cancel", classId: 60, methodId: 30, consumerTag, noWait: false }, { signal });
    const consumer = this.#consumers.get(consumerTag);
    this.#consumers.delete(consumerTag);
    consumer?.end(undefined);
  }

  /**
   * Publishes a message. Outside confirm mode it resolves at once — or, when the socket's buffer is over the
   * high-water mark, once it drains. In confirm mode it resolves when the broker acks, and rejects with
   * PublishNackedError on a nack or MessageReturnedError when a mandatory message comes back unroutable.
   */
  basicPublish(exchange: string, routingKey: string, body: Uint8Array | string, properties: BasicProperties = {}, o: PublishOptions = {}): Promise<void> {
    let seq: number;
    try {
      if (this.#closed) throw this.#closedError();
      if (o.signal?.aborted) throw new AbortError("basicPublish aborted before it was sent", { cause: o.signal.reason });
      const bytes = typeof body === "string" ? encodeUtf8(body) : body;
      const machine = this.#host.machine;
      seq = this.#host.command(() => machine.publish(this.id, exchange, routingKey, bytes, properties, o.mandatory ?? false, o.immediate ?? false));
    } catch (e) {
      return Promise.reject(e);
    }
    this.#host.scheduleFlush();
    if (seq === 0) return this.#host.writable() ?? RESOLVED;
    const signal = o.signal;
    return new Promise<void>((resolve, reject) => {
      if (!signal) {
        this.#confirms.set(seq, { resolve, reject });
        return;
      }
      const onAbort = () => {
        if (this.#confirms.delete(seq)) reject(new AbortError("basicPublish aborted before the broker confirmed it (the message may still arrive)"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      const done = () => signal.removeEventListener("abort", onAbort);
      this.#confirms.set(seq, {
        resolve: () => (done(), resolve()),
        reject: (e) => (done(), reject(e)),
      });
    });
  }

  /**
   * Publishes without waiting, for tight loops: returns false when the socket's buffer is over the
   * high-water mark — the message is still sent; wait for `connection.writable()` before publishing more.
   * In confirm mode the outcome is not reported here; use basicPublish for that.
   */
  tryPublish(exchange: string, routingKey: string, body: Uint8Array | string, properties: BasicProperties = {}, o: PublishOptions = {}): boolean {
    if (this.#closed) throw this.#closedError();
    const bytes = typeof body === "string" ? encodeUtf8(body) : body;
    const machine = this.#host.machine;
    const seq = this.#host.command(() => machine.publish(this.id, exchange, routingKey, bytes, properties, o.mandatory ?? false, o.immediate ?? false));
    if (seq !== 0) this.#confirms.set(seq, IGNORED_CONFIRM);
    this.#host.scheduleFlush();
    return !this.#host.backpressured;
  }

  /** basic.get: one message, or null when the queue is empty. */
  async basicGet(queue: string, o: { noAck?: boolean } & Signal = {}): Promise<Message | null> {
    const reply = await this.#request({ name: "basic.get", classId: 60, methodId: 70, queue, noAck: o.noAck ?? false }, o, (e) => {
      // Aborted while the broker was answering: give the message back rather than leave it unacked.
      if (o.signal?.aborted && !o.noAck && e.method.name === "basic.get-ok" && !this.#closed) this.basicReject(e.method.deliveryTag, true);
    });
    const m = reply?.method;
    if (m?.name !== "basic.get-ok" || !reply?.message) return null;
    return new Message(this, reply.message.body, reply.message.properties, m.deliveryTag, m.redelivered, m.exchange, m.routingKey, "", m.messageCount);
  }

  basicAck(deliveryTag: Int64, multiple = false): void {
    this.#send({ name: "basic.ack", classId: 60, methodId: 80, deliveryTag, multiple });
  }

  basicNack(deliveryTag: Int64, o: { multiple?: boolean; requeue?: boolean } = {}): void {
    this.#send({ name: "basic.nack", classId: 60, methodId: 120, deliveryTag, multiple: o.multiple ?? false, requeue: o.requeue ?? true });
  }

  basicReject(deliveryTag: Int64, requeue = true): void {
    this.#send({ name: "basic.reject", classId: 60, methodId: 90, deliveryTag, requeue });
  }

  /** basic.recover: redeliver unacked messages (requeued unless `requeue` is false). */
  async basicRecover(requeue = true, o: Signal = {}): Promise<void> {
    await this.#request({ name: "basic.recover", classId: 60, methodId: 110, requeue }, o);
  }

  // ---------------------------------------------------------------------------------------------------
  // Confirms, transactions, flow

  /** Puts the channel in confirm mode: from now on basicPublish resolves on the broker's ack. */
  async confirmSelect(o: Signal = {}): Promise<void> {
    await this.#request({ name: "confirm.select", classId: 85, methodId: 10, nowait: false }, o);
  }

  async txSelect(o: Signal = {}): Promise<void> {
    await this.#request({ name: "tx.select", classId: 90, methodId: 10 }, o);
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
    return reply?.method.name === "channel.flow-ok" ? reply.method.active : active;
  }

  /** Closes the channel. Pending operations on it reject with ChannelClosedError. */
  async close(o: Signal = {}): Promise<void> {
    if (this.#closed) return;
    const machine = this.#host.machine;
    const requestId = this.#host.command(() => machine.closeChannel(this.id));
    this.#host.scheduleFlush();
    try {
      await this.#host.waitReply(requestId, o.signal);
    } catch (e) {
      // The connection going away closes the channel just as well.
      if (!this.#closed) throw e;
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Internals called by the connection while dispatching machine events

  /** @internal */
  onDelivery(e: DeliveryEvent): void {
    const message = new Message(this, e.message.body, e.message.properties, e.deliveryTag, e.redelivered, e.exchange, e.routingKey, e.consumerTag, undefined);
    const consumer = this.#consumers.get(e.consumerTag);
    if (consumer) consumer.deliver(message);
    else if (!this.#closed) {
      // A delivery for a consumer we no longer have (it raced a cancel): give it back rather than lose it.
      this.basicReject(e.deliveryTag, true);
    }
  }

  /** @internal */
  onReturn(e: ReturnEvent): void {
    this.emit("return", { replyCode: e.replyCode, replyText: e.replyText, exchange: e.exchange, routingKey: e.routingKey, properties: e.message.properties, body: e.message.body });
  }

  /** @internal */
  onConfirm(e: PublishConfirmedEvent): void {
    const pending = this.#confirms.get(e.seq);
    if (!pending) return;
    this.#confirms.delete(e.seq);
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

  /** @internal */
  onPublishFailed(seq: number, error: WarrenError): void {
    const pending = this.#confirms.get(seq);
    if (!pending) return;
    this.#confirms.delete(seq);
    pending.reject(error);
  }

  /** @internal */
  onConsumerCancelled(consumerTag: string): void {
    const consumer = this.#consumers.get(consumerTag);
    this.#consumers.delete(consumerTag);
    consumer?.end(new ConsumerCancelledError(consumerTag));
    this.emit("cancel", consumerTag);
  }

  /** @internal */
  onFlow(active: boolean): void {
    this.#flowActive = active;
    this.emit("flow", active);
  }

  /** @internal The channel is gone; `reason` says why. */
  onClosed(reason: CloseReason, connectionClosed: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    const clean = reason.initiator === "client" && reason.replyCode === 200;
    this.#closeError = errorFromClose(connectionClosed ? "connection" : "channel", reason);
    for (const consumer of this.#consumers.values()) consumer.end(clean ? undefined : this.#closeError);
    this.#consumers.clear();
    for (const pending of this.#confirms.values()) pending.reject(this.#closeError);
    this.#confirms.clear();
    this.emit("close", clean ? undefined : this.#closeError);
  }

  #closedError(): WarrenError {
    return this.#closeError ?? errorFromClose("channel", { initiator: "client", replyCode: 200, replyText: "channel closed", classId: 0, methodId: 0 });
  }

  /** Sends a synchronous method and waits for its reply; with noWait, sends it and resolves undefined. */
  async #request(method: Method, o: Signal, onReply?: (e: ReplyEvent) => void): Promise<ReplyEvent | undefined> {
    if (this.#closed) throw this.#closedError();
    if (o.signal?.aborted) throw new AbortError("operation aborted before it was sent", { cause: o.signal.reason });
    const machine = this.#host.machine;
    const noWait = (method as { noWait?: boolean }).noWait === true;
    if (noWait) {
      this.#host.command(() => machine.send(this.id, method));
      this.#host.scheduleFlush();
      return undefined;
    }
    const requestId = this.#host.command(() => machine.call(this.id, method));
    this.#host.flushForRequest();
    return this.#host.waitReply(requestId, o.signal, onReply);
  }

  #send(method: Method): void {
    if (this.#closed) throw this.#closedError();
    const machine = this.#host.machine;
    this.#host.command(() => machine.send(this.id, method));
    this.#host.scheduleFlush();
  }
}

const IGNORED_CONFIRM: PendingConfirm = { resolve() {}, reject() {} };
