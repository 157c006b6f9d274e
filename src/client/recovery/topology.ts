/**
 * The topology recorder: what the application declared through the API, kept so that a recovered connection
 * can declare it again. The model is the RabbitMQ Java client's: exchanges, queues, bindings (queue and
 * exchange-to-exchange), consumers — replayed in that order, each group in declaration order.
 *
 * How the client uses it:
 * - After a *successful* reply (never before, never for a passive declare), call the matching recorder:
 *   `exchangeDeclared`, `queueDeclared`, `queueBound`, `consumerStarted`, … Recording never throws and never
 *   keeps the caller's objects (argument tables are copied).
 * - While replaying, do not record: the replay re-sends what is already recorded. Do not report consumers
 *   that end with the connection as cancelled either; only a cancel the application asked for, or one the
 *   broker sent (basic.cancel), is `consumerCancelled`.
 * - On recovery, iterate `replayPlan()` and turn each step into one request (its `kind` is the AMQP method).
 *   Steps are built lazily, when the iteration reaches them, so when a server-named queue's step is answered
 *   with a new name and the client reports it with `queueRenamed(old, new)`, every later step (bindings,
 *   consumers) already carries the new name. Spreading the plan into an array first loses that.
 *
 * What is forgotten, and why (each rule is what RabbitMQ itself does, so the record matches the broker):
 * - `queueDeleted(q)`: the queue, every binding to it, every consumer of it.
 * - `exchangeDeleted(x)`: the exchange and every binding with it at either end.
 * - An auto-delete queue whose last recorded consumer is cancelled: the broker deleted it, so it is forgotten
 *   as if deleted (its bindings too). Only this client's consumers are known; if another connection still
 *   consumes, the broker keeps the queue but this record does not — as in the Java client.
 * - An auto-delete exchange whose last binding as a source goes (unbind, or a delete that took bindings with
 *   it): forgotten as if deleted, which may in turn empty another auto-delete exchange.
 * - A step that fails during a replay (say 406, because the queue was redeclared elsewhere with other
 *   arguments, or 405, because the broker has not yet noticed the old connection's exclusive queue is gone) is
 *   *kept*: the failure may be transient, and the application did not delete anything. The next recovery
 *   tries it again. `forget(step)` drops the one record a step came from, for a caller that decides otherwise.
 *
 * Never recorded, because the broker refuses them: declaring or deleting the default exchange ("") or an
 * `amq.*` exchange (403), binding to or from the default exchange. Bindings *to* `amq.*` exchanges are
 * recorded (only the declare is skipped). A server-named queue (requested name "") is redeclared with "" on
 * replay; a redeclare by its generated name keeps it server-named (a non-passive declare of an `amq.*` queue
 * name is refused, so the replay must ask for a fresh name). Exclusive and auto-delete queues are replayed:
 * the broker deleted them with the old connection.
 */
import type { FieldTable } from "../../codec/amqp/field-table.ts";
import { copyTable, tableKey } from "./field-table-key.ts";

/** An exchange as declared (exchange.declare without passive and no-wait). */
export interface ExchangeDeclaration {
  readonly exchange: string;
  readonly type: string;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly internal: boolean;
  readonly arguments: FieldTable;
}

/** A queue.declare as the application asked for it; `queue` "" lets the broker name the queue. */
export interface QueueDeclaration {
  readonly queue: string;
  readonly durable: boolean;
  readonly exclusive: boolean;
  readonly autoDelete: boolean;
  readonly arguments: FieldTable;
}

/** queue.bind / queue.unbind. */
export interface QueueBinding {
  readonly queue: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly arguments: FieldTable;
}

/** exchange.bind / exchange.unbind (a RabbitMQ extension): messages flow from `source` to `destination`. */
export interface ExchangeBinding {
  readonly destination: string;
  readonly source: string;
  readonly routingKey: string;
  readonly arguments: FieldTable;
}

/** A consumer as started; `key` is the client's own object for it (opaque here), `consumerTag` the tag consume-ok gave. */
export interface ConsumerDeclaration<K> {
  readonly key: K;
  readonly queue: string;
  readonly consumerTag: string;
  readonly noLocal: boolean;
  readonly noAck: boolean;
  readonly exclusive: boolean;
  readonly arguments: FieldTable;
}

/** One request of a replay; `kind` is the AMQP method to send (never passive, never no-wait for declares). */
export type ReplayStep<K> =
  | ({ readonly kind: "exchange.declare" } & ExchangeDeclaration)
  | ({
      readonly kind: "queue.declare";
      /** The name to ask for: "" for a server-named queue. */
      readonly queue: string;
      /** The name the queue had until now (the broker's name, for a server-named queue). */
      readonly recordedName: string;
      readonly serverNamed: boolean;
    } & Omit<QueueDeclaration, "queue">)
  | ({ readonly kind: "exchange.bind" } & ExchangeBinding)
  | ({ readonly kind: "queue.bind" } & QueueBinding)
  | ({ readonly kind: "basic.consume" } & ConsumerDeclaration<K>);

/** A server-named queue that got a new name on replay. */
export interface QueueRename {
  readonly from: string;
  readonly to: string;
}

// Internal records: mutable, so that a rename reaches every record (and every lazily built step) that names
// the queue. `seq` is the declaration order; `live` goes false when the record is forgotten, so a replay
// already under way skips it.
interface Entry {
  readonly seq: number;
  live: boolean;
}
interface ExchangeEntry extends Entry {
  readonly group: "exchange";
  decl: ExchangeDeclaration;
}
interface QueueEntry extends Entry {
  readonly group: "queue";
  name: string;
  serverNamed: boolean;
  decl: Omit<QueueDeclaration, "queue">;
}
interface QueueBindingEntry extends Entry {
  readonly group: "queue-binding";
  queue: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly arguments: FieldTable;
}
interface ExchangeBindingEntry extends Entry {
  readonly group: "exchange-binding";
  readonly destination: string;
  readonly source: string;
  readonly routingKey: string;
  readonly arguments: FieldTable;
}
interface ConsumerEntry<K> extends Entry {
  readonly group: "consumer";
  queue: string;
  decl: Omit<ConsumerDeclaration<K>, "queue">;
}
type AnyEntry<K> = ExchangeEntry | QueueEntry | QueueBindingEntry | ExchangeBindingEntry | ConsumerEntry<K>;

/** The default exchange and the `amq.*` ones: the broker refuses to declare or delete them (403). */
function isReservedExchange(name: string): boolean {
  return name === "" || name.startsWith("amq.");
}

function queueBindingKey(queue: string, exchange: string, routingKey: string, args: FieldTable): string {
  return JSON.stringify([queue, exchange, routingKey, tableKey(args)]);
}

function exchangeBindingKey(destination: string, source: string, routingKey: string, args: FieldTable): string {
  return JSON.stringify([destination, source, routingKey, tableKey(args)]);
}

/**
 * What one connection's application declared, to replay after a reconnect. `K` is the client's consumer
 * object; it is only stored and handed back in `basic.consume` steps.
 * @example
 * const topology = new Topology<Consumer>();
 * topology.queueDeclared({ queue: "", durable: false, exclusive: true, autoDelete: true, arguments: {} }, "amq.gen-1");
 * topology.queueBound({ queue: "amq.gen-1", exchange: "logs", routingKey: "", arguments: {} });
 * for (const step of topology.replayPlan()) {
 *   const reply = await send(step);
 *   if (step.kind === "queue.declare") topology.queueRenamed(step.recordedName, reply.queue);
 * }
 */
export class Topology<K = object> {
  #seq = 0;
  readonly #exchanges = new Map<string, ExchangeEntry>();
  readonly #queues = new Map<string, QueueEntry>();
  readonly #queueBindings = new Map<string, QueueBindingEntry>();
  readonly #exchangeBindings = new Map<string, ExchangeBindingEntry>();
  readonly #consumers = new Map<K, ConsumerEntry<K>>();
  /** The record each handed-out step was built from, for `forget`. */
  readonly #stepEntries = new WeakMap<object, AnyEntry<K>>();

  // ---------------------------------------------------------------------------------------------------
  // Recording

  /** exchange.declare-ok (not passive). A redeclare replaces the record, keeping its place in the order. */
  exchangeDeclared(d: ExchangeDeclaration): void {
    if (isReservedExchange(d.exchange)) return;
    const decl: ExchangeDeclaration = { ...d, arguments: copyTable(d.arguments) };
    const old = this.#exchanges.get(d.exchange);
    if (old) old.decl = decl;
    else this.#exchanges.set(d.exchange, { group: "exchange", seq: this.#seq++, live: true, decl });
  }

  /** exchange.delete-ok: forgets the exchange and every binding with it at either end. */
  exchangeDeleted(exchange: string): void {
    if (isReservedExchange(exchange)) return; // the broker refused it
    this.#dropExchange(exchange);
  }

  /**
   * queue.declare-ok (not passive): `requested` as the application asked, `actualName` what the broker
   * answered. A redeclare of a recorded name replaces the record, keeping its place in the order. A no-wait
   * declare of a server-named queue gives no name and is not recorded.
   */
  queueDeclared(requested: QueueDeclaration, actualName: string): void {
    if (actualName === "") return;
    const decl = { durable: requested.durable, exclusive: requested.exclusive, autoDelete: requested.autoDelete, arguments: copyTable(requested.arguments) };
    const old = this.#queues.get(actualName);
    if (old) {
      old.decl = decl;
      // Redeclaring a server-named queue by its generated name does not make it application-named: replaying
      // that name would be refused (403, reserved "amq." prefix).
      old.serverNamed ||= requested.queue === "";
    } else {
      this.#queues.set(actualName, { group: "queue", seq: this.#seq++, live: true, name: actualName, serverNamed: requested.queue === "", decl });
    }
  }

  /** queue.delete-ok: forgets the queue, every binding to it and every consumer of it. */
  queueDeleted(queue: string): void {
    this.#dropQueue(queue);
  }

  /** queue.bind-ok. Binding the same queue, exchange, routing key and arguments again changes nothing. */
  queueBound(b: QueueBinding): void {
    if (b.exchange === "" || b.queue === "") return; // the default exchange cannot be bound; "" is not a name to replay
    const key = queueBindingKey(b.queue, b.exchange, b.routingKey, b.arguments);
    if (this.#queueBindings.has(key)) return;
    this.#queueBindings.set(key, { group: "queue-binding", seq: this.#seq++, live: true, queue: b.queue, exchange: b.exchange, routingKey: b.routingKey, arguments: copyTable(b.arguments) });
  }

  /** queue.unbind-ok: forgets the binding with the same queue, exchange, routing key and arguments. */
  queueUnbound(b: QueueBinding): void {
    const key = queueBindingKey(b.queue, b.exchange, b.routingKey, b.arguments);
    const entry = this.#queueBindings.get(key);
    if (!entry) return;
    this.#unrecord(this.#queueBindings, key, entry);
    this.#autoDeleteSources([b.exchange]);
  }

  /** exchange.bind-ok. */
  exchangeBound(b: ExchangeBinding): void {
    if (b.destination === "" || b.source === "") return;
    const key = exchangeBindingKey(b.destination, b.source, b.routingKey, b.arguments);
    if (this.#exchangeBindings.has(key)) return;
    this.#exchangeBindings.set(key, {
      group: "exchange-binding",
      seq: this.#seq++,
      live: true,
      destination: b.destination,
      source: b.source,
      routingKey: b.routingKey,
      arguments: copyTable(b.arguments),
    });
  }

  /** exchange.unbind-ok. */
  exchangeUnbound(b: ExchangeBinding): void {
    const key = exchangeBindingKey(b.destination, b.source, b.routingKey, b.arguments);
    const entry = this.#exchangeBindings.get(key);
    if (!entry) return;
    this.#unrecord(this.#exchangeBindings, key, entry);
    this.#autoDeleteSources([b.source]);
  }

  /**
   * basic.consume-ok, with the tag the broker confirmed. Starting the same `key` again (say, after a replay
   * that was given another tag) replaces the record, keeping its place in the order.
   */
  consumerStarted(c: ConsumerDeclaration<K>): void {
    const { queue, ...rest } = c;
    const decl = { ...rest, arguments: copyTable(c.arguments) };
    const old = this.#consumers.get(c.key);
    if (old) {
      old.queue = queue;
      old.decl = decl;
    } else {
      this.#consumers.set(c.key, { group: "consumer", seq: this.#seq++, live: true, queue, decl });
    }
  }

  /**
   * The consumer ended for good (basic.cancel-ok, or a basic.cancel from the broker). If it was the last
   * recorded consumer of an auto-delete queue, the broker has deleted that queue: it is forgotten too.
   */
  consumerCancelled(key: K): void {
    const entry = this.#consumers.get(key);
    if (!entry) return;
    this.#unrecord(this.#consumers, key, entry);
    const queue = this.#queues.get(entry.queue);
    if (queue?.decl.autoDelete && ![...this.#consumers.values()].some((c) => c.queue === entry.queue)) this.#dropQueue(entry.queue);
  }

  /**
   * A replayed `queue.declare` step was answered with a new name: the queue's record, its bindings and its
   * consumers take the new name, and so does every step of a replay still under way. Returns the rename (for
   * the `recovered` report), or undefined when the name did not change.
   */
  queueRenamed(from: string, to: string): QueueRename | undefined {
    if (from === to || to === "") return undefined;
    const queue = this.#queues.get(from);
    if (queue) {
      this.#queues.delete(from);
      const clash = this.#queues.get(to);
      if (clash) clash.live = false; // cannot happen with broker-generated names; the renamed record wins
      queue.name = to;
      this.#queues.set(to, queue);
    }
    for (const [key, b] of [...this.#queueBindings]) {
      if (b.queue !== from) continue;
      this.#queueBindings.delete(key);
      b.queue = to;
      const newKey = queueBindingKey(to, b.exchange, b.routingKey, b.arguments);
      if (this.#queueBindings.has(newKey)) b.live = false; // the same binding was already recorded under the new name
      else this.#queueBindings.set(newKey, b);
    }
    for (const c of this.#consumers.values()) if (c.queue === from) c.queue = to;
    return { from, to };
  }

  /**
   * Drops the one record `step` was built from (nothing that depends on it): for a caller that decides a
   * failed replay step should not be tried again. Steps of other objects, or already forgotten, are ignored.
   */
  forget(step: ReplayStep<K>): void {
    const entry = this.#stepEntries.get(step);
    if (!entry?.live) return;
    switch (entry.group) {
      case "exchange":
        this.#unrecord(this.#exchanges, entry.decl.exchange, entry);
        break;
      case "queue":
        this.#unrecord(this.#queues, entry.name, entry);
        break;
      case "queue-binding":
        this.#unrecord(this.#queueBindings, queueBindingKey(entry.queue, entry.exchange, entry.routingKey, entry.arguments), entry);
        break;
      case "exchange-binding":
        this.#unrecord(this.#exchangeBindings, exchangeBindingKey(entry.destination, entry.source, entry.routingKey, entry.arguments), entry);
        break;
      case "consumer":
        this.#unrecord(this.#consumers, entry.decl.key, entry);
        break;
    }
  }

  /** Whether nothing is recorded (a recovery then only reopens channels). */
  get empty(): boolean {
    return this.#exchanges.size + this.#queues.size + this.#queueBindings.size + this.#exchangeBindings.size + this.#consumers.size === 0;
  }

  // ---------------------------------------------------------------------------------------------------
  // Replay

  /**
   * The requests that rebuild the recorded topology, in order: exchanges, queues, bindings (both kinds), then
   * consumers, each group in declaration order. The set of records is fixed when the iteration starts; each
   * step is built when reached, from the record as it is then (renamed, or skipped when forgotten meanwhile).
   */
  *replayPlan(): Generator<ReplayStep<K>, void, undefined> {
    const bySeq = (a: Entry, b: Entry) => a.seq - b.seq;
    const bindings: (QueueBindingEntry | ExchangeBindingEntry)[] = [...this.#queueBindings.values(), ...this.#exchangeBindings.values()].sort(bySeq);
    const entries: AnyEntry<K>[] = [
      ...[...this.#exchanges.values()].sort(bySeq),
      ...[...this.#queues.values()].sort(bySeq),
      ...bindings,
      ...[...this.#consumers.values()].sort(bySeq),
    ];
    for (const entry of entries) {
      if (!entry.live) continue;
      const step = stepOf(entry);
      this.#stepEntries.set(step, entry);
      yield step;
    }
  }

  // ---------------------------------------------------------------------------------------------------

  #unrecord<T>(map: Map<T, AnyEntry<K>>, key: T, entry: AnyEntry<K>): void {
    if (map.get(key) === entry) map.delete(key);
    entry.live = false;
  }

  #dropQueue(queue: string): void {
    const entry = this.#queues.get(queue);
    if (entry) this.#unrecord(this.#queues, queue, entry);
    const sources: string[] = [];
    for (const [key, b] of [...this.#queueBindings]) {
      if (b.queue !== queue) continue;
      this.#unrecord(this.#queueBindings, key, b);
      sources.push(b.exchange);
    }
    for (const [key, c] of [...this.#consumers]) if (c.queue === queue) this.#unrecord(this.#consumers, key, c);
    this.#autoDeleteSources(sources);
  }

  #dropExchange(exchange: string): void {
    const entry = this.#exchanges.get(exchange);
    if (entry) this.#unrecord(this.#exchanges, exchange, entry);
    for (const [key, b] of [...this.#queueBindings]) if (b.exchange === exchange) this.#unrecord(this.#queueBindings, key, b);
    const sources: string[] = [];
    for (const [key, b] of [...this.#exchangeBindings]) {
      if (b.source !== exchange && b.destination !== exchange) continue;
      this.#unrecord(this.#exchangeBindings, key, b);
      if (b.source !== exchange) sources.push(b.source);
    }
    this.#autoDeleteSources(sources);
  }

  /** The broker deletes an auto-delete exchange when its last binding as a source goes. */
  #autoDeleteSources(sources: readonly string[]): void {
    for (const source of new Set(sources)) {
      const entry = this.#exchanges.get(source);
      if (!entry?.decl.autoDelete) continue;
      const stillBound =
        [...this.#queueBindings.values()].some((b) => b.exchange === source) || [...this.#exchangeBindings.values()].some((b) => b.source === source);
      if (!stillBound) this.#dropExchange(source); // may empty another auto-delete exchange in turn
    }
  }
}

function stepOf<K>(entry: AnyEntry<K>): ReplayStep<K> {
  switch (entry.group) {
    case "exchange":
      return { kind: "exchange.declare", ...entry.decl };
    case "queue":
      return { kind: "queue.declare", queue: entry.serverNamed ? "" : entry.name, recordedName: entry.name, serverNamed: entry.serverNamed, ...entry.decl };
    case "queue-binding":
      return { kind: "queue.bind", queue: entry.queue, exchange: entry.exchange, routingKey: entry.routingKey, arguments: entry.arguments };
    case "exchange-binding":
      return { kind: "exchange.bind", destination: entry.destination, source: entry.source, routingKey: entry.routingKey, arguments: entry.arguments };
    case "consumer":
      return { kind: "basic.consume", queue: entry.queue, ...entry.decl };
  }
}
