/**
 * The topology recorder (src/client/recovery/topology.ts): what a recovered connection declares again, in
 * what order, under which names, and what it has forgotten.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Decimal, type FieldTable } from "../../../src/codec/amqp/field-table.ts";
import { type ReplayStep, Topology } from "../../../src/client/recovery/topology.ts";

type Key = { name: string };
const key = (name: string): Key => ({ name });

const exchange = (name: string, o: { type?: string; autoDelete?: boolean; durable?: boolean; arguments?: FieldTable } = {}) => ({
  exchange: name,
  type: o.type ?? "direct",
  durable: o.durable ?? false,
  autoDelete: o.autoDelete ?? false,
  internal: false,
  arguments: o.arguments ?? {},
});
const queue = (name: string, o: { autoDelete?: boolean; exclusive?: boolean; durable?: boolean; arguments?: FieldTable } = {}) => ({
  queue: name,
  durable: o.durable ?? false,
  exclusive: o.exclusive ?? false,
  autoDelete: o.autoDelete ?? false,
  arguments: o.arguments ?? {},
});
const qBinding = (q: string, x: string, routingKey = "", args: FieldTable = {}) => ({ queue: q, exchange: x, routingKey, arguments: args });
const xBinding = (destination: string, source: string, routingKey = "", args: FieldTable = {}) => ({ destination, source, routingKey, arguments: args });
const consumer = (k: Key, q: string, consumerTag = `ctag-${k.name}`) => ({ key: k, queue: q, consumerTag, noLocal: false, noAck: false, exclusive: false, arguments: {} });

/** A step as one short line: the method and the names it carries. */
function show(step: ReplayStep<Key>): string {
  switch (step.kind) {
    case "exchange.declare":
      return `exchange ${step.exchange}`;
    case "queue.declare":
      return step.serverNamed ? `queue "" (was ${step.recordedName})` : `queue ${step.queue}`;
    case "queue.bind":
      return `bind ${step.queue} <- ${step.exchange} [${step.routingKey}]`;
    case "exchange.bind":
      return `bind exchange ${step.destination} <- ${step.source} [${step.routingKey}]`;
    case "basic.consume":
      return `consume ${step.queue} as ${step.key.name} (${step.consumerTag})`;
  }
}

const plan = (t: Topology<Key>) => [...t.replayPlan()].map(show);

describe("the replay plan's order", () => {
  it("is exchanges, then queues, then bindings, then consumers — whatever order they were declared in", () => {
    const t = new Topology<Key>();
    t.queueDeclared(queue("q1"), "q1");
    t.exchangeDeclared(exchange("x1"));
    t.consumerStarted(consumer(key("c1"), "q1"));
    t.queueBound(qBinding("q1", "x1", "k"));
    t.exchangeDeclared(exchange("x2"));
    t.exchangeBound(xBinding("x2", "x1", "k2"));
    t.queueDeclared(queue("q2"), "q2");
    expect(plan(t)).toEqual(["exchange x1", "exchange x2", "queue q1", "queue q2", "bind q1 <- x1 [k]", "bind exchange x2 <- x1 [k2]", "consume q1 as c1 (ctag-c1)"]);
  });

  it("keeps declaration order within each group", () => {
    const t = new Topology<Key>();
    for (const n of ["c", "a", "b"]) t.exchangeDeclared(exchange(n));
    for (const n of ["q3", "q1", "q2"]) t.queueDeclared(queue(n), n);
    expect(plan(t)).toEqual(["exchange c", "exchange a", "exchange b", "queue q3", "queue q1", "queue q2"]);
  });

  it("turns each step into the fields of its AMQP method", () => {
    const t = new Topology<Key>();
    t.exchangeDeclared({ exchange: "x", type: "topic", durable: true, autoDelete: false, internal: true, arguments: { "alternate-exchange": "ae" } });
    t.queueDeclared(queue("q", { durable: true, arguments: { "x-queue-type": "quorum" } }), "q");
    const c = key("c");
    t.consumerStarted({ key: c, queue: "q", consumerTag: "tag", noLocal: true, noAck: true, exclusive: true, arguments: { "x-priority": 5 } });
    expect([...t.replayPlan()]).toEqual([
      { kind: "exchange.declare", exchange: "x", type: "topic", durable: true, autoDelete: false, internal: true, arguments: { "alternate-exchange": "ae" } },
      { kind: "queue.declare", queue: "q", recordedName: "q", serverNamed: false, durable: true, exclusive: false, autoDelete: false, arguments: { "x-queue-type": "quorum" } },
      { kind: "basic.consume", key: c, queue: "q", consumerTag: "tag", noLocal: true, noAck: true, exclusive: true, arguments: { "x-priority": 5 } },
    ]);
  });

  it("includes exclusive and auto-delete queues: the broker deleted them with the old connection", () => {
    const t = new Topology<Key>();
    t.queueDeclared(queue("ex", { exclusive: true }), "ex");
    t.queueDeclared(queue("ad", { autoDelete: true }), "ad");
    expect(plan(t)).toEqual(["queue ex", "queue ad"]);
  });
});

describe("what is never declared", () => {
  it("skips the default exchange and amq.* exchanges (the broker refuses to declare them)", () => {
    const t = new Topology<Key>();
    t.exchangeDeclared(exchange(""));
    t.exchangeDeclared(exchange("amq.topic", { type: "topic" }));
    t.exchangeDeclared(exchange("amq.custom"));
    expect(plan(t)).toEqual([]);
    expect(t.empty).toBe(true);
  });

  it("does not record bindings to or from the default exchange", () => {
    const t = new Topology<Key>();
    t.queueBound(qBinding("q", "", "q"));
    t.exchangeBound(xBinding("x", ""));
    t.exchangeBound(xBinding("", "x"));
    expect(plan(t)).toEqual([]);
  });

  it("replays bindings to amq.* exchanges: only their declaration is skipped", () => {
    const t = new Topology<Key>();
    t.queueDeclared(queue("q"), "q");
    t.queueBound(qBinding("q", "amq.topic", "a.#"));
    expect(plan(t)).toEqual(["queue q", "bind q <- amq.topic [a.#]"]);
  });
});

describe("redeclaring", () => {
  it("replaces the exchange's record (last wins) and keeps its place in the order", () => {
    const t = new Topology<Key>();
    t.exchangeDeclared(exchange("x1", { type: "direct" }));
    t.exchangeDeclared(exchange("x2"));
    t.exchangeDeclared(exchange("x1", { type: "fanout", durable: true }));
    const steps = [...t.replayPlan()];
    expect(steps.map(show)).toEqual(["exchange x1", "exchange x2"]);
    expect(steps[0]).toMatchObject({ type: "fanout", durable: true });
  });

  it("replaces the queue's record (last wins)", () => {
    const t = new Topology<Key>();
    t.queueDeclared(queue("q", { durable: false }), "q");
    t.queueDeclared(queue("q", { durable: true, arguments: { "x-max-length": 10 } }), "q");
    expect([...t.replayPlan()]).toMatchObject([{ kind: "queue.declare", queue: "q", durable: true, arguments: { "x-max-length": 10 } }]);
  });

  it("binding twice records one binding; a binding with other arguments is another binding", () => {
    const t = new Topology<Key>();
    t.queueBound(qBinding("q", "x", "k", { a: 1, b: 2 }));
    t.queueBound(qBinding("q", "x", "k", { b: 2, a: 1 }));
    t.queueBound(qBinding("q", "x", "k", { a: 1n, b: 2 }));
    expect(plan(t)).toEqual(["bind q <- x [k]", "bind q <- x [k]"]);
  });

  it("starting the same consumer again replaces it (say, with the tag a replay got)", () => {
    const t = new Topology<Key>();
    const c = key("c");
    t.consumerStarted(consumer(c, "q", "amq.ctag-1"));
    t.consumerStarted(consumer(c, "q", "amq.ctag-2"));
    expect(plan(t)).toEqual(["consume q as c (amq.ctag-2)"]);
  });

  it("keeps its own copy of argument tables: mutating the caller's object later changes nothing", () => {
    const t = new Topology<Key>();
    const args: FieldTable = { "x-max-length": 10, nested: { list: [1, new Decimal(2, 314)] }, bytes: new Uint8Array([1, 2]) };
    t.queueDeclared(queue("q", { arguments: args }), "q");
    args["x-max-length"] = 99;
    ((args.nested as FieldTable).list as unknown[]).push("late");
    (args.bytes as Uint8Array)[0] = 9;
    const [step] = [...t.replayPlan()];
    expect(step!.arguments).toEqual({ "x-max-length": 10, nested: { list: [1, new Decimal(2, 314)] }, bytes: new Uint8Array([1, 2]) });
  });

  it("a redeclare of a server-named queue by its generated name keeps it server-named (amq.* names cannot be declared)", () => {
    const t = new Topology<Key>();
    t.queueDeclared(queue("", { exclusive: true }), "amq.gen-A");
    t.queueDeclared(queue("amq.gen-A", { exclusive: true }), "amq.gen-A");
    expect([...t.replayPlan()]).toMatchObject([{ kind: "queue.declare", queue: "", recordedName: "amq.gen-A", serverNamed: true }]);
  });

  it("a no-wait declare of a server-named queue (no name known) is not recorded", () => {
    const t = new Topology<Key>();
    t.queueDeclared(queue(""), "");
    expect(t.empty).toBe(true);
  });
});

describe("deleting forgets", () => {
  it("a deleted queue with its bindings and consumers", () => {
    const t = new Topology<Key>();
    t.exchangeDeclared(exchange("x"));
    t.queueDeclared(queue("q"), "q");
    t.queueDeclared(queue("other"), "other");
    t.queueBound(qBinding("q", "x", "a"));
    t.queueBound(qBinding("other", "x", "a"));
    t.consumerStarted(consumer(key("c"), "q"));
    t.consumerStarted(consumer(key("d"), "other"));
    t.queueDeleted("q");
    expect(plan(t)).toEqual(["exchange x", "queue other", "bind other <- x [a]", "consume other as d (ctag-d)"]);
  });

  it("a deleted exchange with every binding at either end", () => {
    const t = new Topology<Key>();
    for (const n of ["x", "up", "down"]) t.exchangeDeclared(exchange(n));
    t.queueDeclared(queue("q"), "q");
    t.queueBound(qBinding("q", "x"));
    t.exchangeBound(xBinding("x", "up"));
    t.exchangeBound(xBinding("down", "x"));
    t.exchangeBound(xBinding("down", "up"));
    t.exchangeDeleted("x");
    expect(plan(t)).toEqual(["exchange up", "exchange down", "queue q", "bind exchange down <- up []"]);
  });

  it("bindings to a queue or exchange this client did not declare, when it deletes them", () => {
    const t = new Topology<Key>();
    t.queueBound(qBinding("theirs", "x"));
    t.exchangeBound(xBinding("y", "theirs-x"));
    t.queueDeleted("theirs");
    t.exchangeDeleted("theirs-x");
    expect(plan(t)).toEqual([]);
  });

  it("an unbound binding, matched on queue, exchange, routing key and arguments", () => {
    const t = new Topology<Key>();
    t.queueBound(qBinding("q", "x", "k", { a: 1 }));
    t.queueBound(qBinding("q", "x", "k", { a: 2 }));
    t.queueUnbound(qBinding("q", "x", "k", { a: 1 }));
    t.queueUnbound(qBinding("q", "x", "other-key", { a: 2 })); // no such binding: nothing changes
    const steps = [...t.replayPlan()];
    expect(steps).toMatchObject([{ kind: "queue.bind", routingKey: "k", arguments: { a: 2 } }]);
    t.exchangeBound(xBinding("d", "s", "k"));
    t.exchangeUnbound(xBinding("d", "s", "k"));
    expect(plan(t)).toEqual(["bind q <- x [k]"]);
  });

  it("a cancelled consumer", () => {
    const t = new Topology<Key>();
    const c = key("c");
    t.queueDeclared(queue("q"), "q");
    t.consumerStarted(consumer(c, "q"));
    t.consumerCancelled(c);
    expect(plan(t)).toEqual(["queue q"]);
  });

  it("an auto-delete queue once its last consumer is cancelled (the broker deleted it), with its bindings", () => {
    const t = new Topology<Key>();
    const [c1, c2] = [key("c1"), key("c2")];
    t.exchangeDeclared(exchange("x"));
    t.queueDeclared(queue("q", { autoDelete: true }), "q");
    t.queueBound(qBinding("q", "x"));
    t.consumerStarted(consumer(c1, "q"));
    t.consumerStarted(consumer(c2, "q"));
    t.consumerCancelled(c1);
    expect(plan(t)).toEqual(["exchange x", "queue q", "bind q <- x []", "consume q as c2 (ctag-c2)"]);
    t.consumerCancelled(c2);
    expect(plan(t)).toEqual(["exchange x"]);
  });

  it("but not a queue without auto-delete when its last consumer goes", () => {
    const t = new Topology<Key>();
    const c = key("c");
    t.queueDeclared(queue("q"), "q");
    t.consumerStarted(consumer(c, "q"));
    t.consumerCancelled(c);
    expect(plan(t)).toEqual(["queue q"]);
  });

  it("an auto-delete exchange once its last binding as a source goes, in a chain", () => {
    const t = new Topology<Key>();
    t.exchangeDeclared(exchange("top", { autoDelete: true }));
    t.exchangeDeclared(exchange("mid", { autoDelete: true }));
    t.queueDeclared(queue("q"), "q");
    t.exchangeBound(xBinding("mid", "top"));
    t.queueBound(qBinding("q", "mid", "a"));
    t.queueBound(qBinding("q", "mid", "b"));
    t.queueUnbound(qBinding("q", "mid", "a"));
    expect(plan(t)).toEqual(["exchange top", "exchange mid", "queue q", "bind exchange mid <- top []", "bind q <- mid [b]"]);
    // Deleting the queue takes mid's last binding; mid goes, and with it top's last binding, so top goes too.
    t.queueDeleted("q");
    expect(plan(t)).toEqual([]);
  });

  it("an auto-delete exchange that never had a binding stays", () => {
    const t = new Topology<Key>();
    t.exchangeDeclared(exchange("x", { autoDelete: true }));
    t.queueDeleted("unrelated");
    expect(plan(t)).toEqual(["exchange x"]);
  });
});

describe("server-named queues", () => {
  function serverNamed() {
    const t = new Topology<Key>();
    const c = key("c");
    t.exchangeDeclared(exchange("logs", { type: "fanout" }));
    t.queueDeclared(queue("", { exclusive: true }), "amq.gen-old");
    t.queueBound(qBinding("amq.gen-old", "logs"));
    t.consumerStarted(consumer(c, "amq.gen-old"));
    return { t, c };
  }

  it("are redeclared with an empty name, carrying the name they had", () => {
    const { t } = serverNamed();
    const steps = [...t.replayPlan()];
    expect(steps[1]).toMatchObject({ kind: "queue.declare", queue: "", recordedName: "amq.gen-old", serverNamed: true, exclusive: true });
  });

  it("a rename reported during the replay reaches every later step: bindings and consumers", () => {
    const { t } = serverNamed();
    const sent: string[] = [];
    for (const step of t.replayPlan()) {
      sent.push(show(step));
      if (step.kind === "queue.declare") expect(t.queueRenamed(step.recordedName, "amq.gen-new")).toEqual({ from: "amq.gen-old", to: "amq.gen-new" });
    }
    expect(sent).toEqual(["exchange logs", 'queue "" (was amq.gen-old)', "bind amq.gen-new <- logs []", "consume amq.gen-new as c (ctag-c)"]);
  });

  it("the recorded state takes the new name: the next recovery, deletes and unbinds use it", () => {
    const { t, c } = serverNamed();
    t.queueRenamed("amq.gen-old", "amq.gen-new");
    expect(plan(t)).toEqual(["exchange logs", 'queue "" (was amq.gen-new)', "bind amq.gen-new <- logs []", "consume amq.gen-new as c (ctag-c)"]);
    t.queueUnbound(qBinding("amq.gen-new", "logs"));
    expect(plan(t)).toEqual(["exchange logs", 'queue "" (was amq.gen-new)', "consume amq.gen-new as c (ctag-c)"]);
    t.queueDeleted("amq.gen-new");
    expect(plan(t)).toEqual(["exchange logs"]);
  });

  it("a rename to the same name is no rename", () => {
    const { t } = serverNamed();
    expect(t.queueRenamed("amq.gen-old", "amq.gen-old")).toBeUndefined();
  });
});

describe("a replay step that fails", () => {
  it("stays recorded by default, so the next recovery tries it again", () => {
    const t = new Topology<Key>();
    t.queueDeclared(queue("q", { arguments: { "x-queue-type": "quorum" } }), "q");
    for (const step of t.replayPlan()) void step; // the lead reports the 406, and records nothing
    expect(plan(t)).toEqual(["queue q"]);
  });

  it("forget(step) drops only the record the step came from", () => {
    const t = new Topology<Key>();
    t.exchangeDeclared(exchange("x"));
    t.queueDeclared(queue("q"), "q");
    t.queueBound(qBinding("q", "x"));
    const steps = [...t.replayPlan()];
    t.forget(steps[1]!); // the queue declare
    expect(plan(t)).toEqual(["exchange x", "bind q <- x []"]);
    t.forget(steps[2]!); // the binding
    t.forget(steps[0]!); // the exchange
    expect(plan(t)).toEqual([]);
    t.forget(steps[0]!); // twice: nothing more happens
  });

  it("forget works on a step whose queue was renamed after the step was made", () => {
    const t = new Topology<Key>();
    t.queueDeclared(queue(""), "amq.gen-1");
    t.queueBound(qBinding("amq.gen-1", "x"));
    const steps = [...t.replayPlan()];
    t.queueRenamed("amq.gen-1", "amq.gen-2");
    t.forget(steps[1]!);
    expect(plan(t)).toEqual(['queue "" (was amq.gen-2)']);
  });

  it("a record forgotten while a replay is under way is skipped by it", () => {
    const t = new Topology<Key>();
    t.queueDeclared(queue("q1"), "q1");
    t.queueDeclared(queue("q2"), "q2");
    const sent: string[] = [];
    for (const step of t.replayPlan()) {
      sent.push(show(step));
      t.queueDeleted("q2");
    }
    expect(sent).toEqual(["queue q1"]);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Properties: random sequences of the recorder's calls, checked against the operation log.

const names = { exchanges: ["x1", "x2", "x3", "amq.x"], queues: ["q1", "q2", "q3"], keys: ["", "k"] };
type Op =
  | { op: "declareExchange"; x: string; autoDelete: boolean }
  | { op: "deleteExchange"; x: string }
  | { op: "declareQueue"; q: string; autoDelete: boolean }
  | { op: "deleteQueue"; q: string }
  | { op: "bindQueue" | "unbindQueue"; q: string; x: string; k: string }
  | { op: "bindExchange" | "unbindExchange"; d: string; s: string; k: string }
  | { op: "consume"; c: number; q: string }
  | { op: "cancel"; c: number };

function ops(autoDelete: fc.Arbitrary<boolean>): fc.Arbitrary<Op[]> {
  const x = fc.constantFrom(...names.exchanges);
  const q = fc.constantFrom(...names.queues);
  const k = fc.constantFrom(...names.keys);
  const c = fc.integer({ min: 0, max: 3 });
  const one: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ op: fc.constant("declareExchange" as const), x, autoDelete }),
    // Deleting an amq.* exchange is refused by the broker, so the client never reports one.
    fc.record({ op: fc.constant("deleteExchange" as const), x: x.filter((n) => !n.startsWith("amq.")) }),
    fc.record({ op: fc.constant("declareQueue" as const), q, autoDelete }),
    fc.record({ op: fc.constant("deleteQueue" as const), q }),
    fc.record({ op: fc.constantFrom("bindQueue" as const, "unbindQueue" as const), q, x, k }),
    fc.record({ op: fc.constantFrom("bindExchange" as const, "unbindExchange" as const), d: x, s: x, k }),
    fc.record({ op: fc.constant("consume" as const), c, q }),
    fc.record({ op: fc.constant("cancel" as const), c }),
  );
  return fc.array(one, { maxLength: 40 });
}

const consumerKeys = [0, 1, 2, 3].map((i) => key(`c${i}`));

function run(list: readonly Op[]): Topology<Key> {
  const t = new Topology<Key>();
  for (const o of list) {
    switch (o.op) {
      case "declareExchange":
        t.exchangeDeclared(exchange(o.x, { autoDelete: o.autoDelete }));
        break;
      case "deleteExchange":
        t.exchangeDeleted(o.x);
        break;
      case "declareQueue":
        t.queueDeclared(queue(o.q, { autoDelete: o.autoDelete }), o.q);
        break;
      case "deleteQueue":
        t.queueDeleted(o.q);
        break;
      case "bindQueue":
        t.queueBound(qBinding(o.q, o.x, o.k));
        break;
      case "unbindQueue":
        t.queueUnbound(qBinding(o.q, o.x, o.k));
        break;
      case "bindExchange":
        t.exchangeBound(xBinding(o.d, o.s, o.k));
        break;
      case "unbindExchange":
        t.exchangeUnbound(xBinding(o.d, o.s, o.k));
        break;
      case "consume":
        t.consumerStarted(consumer(consumerKeys[o.c]!, o.q));
        break;
      case "cancel":
        t.consumerCancelled(consumerKeys[o.c]!);
        break;
    }
  }
  return t;
}

/** Whether, after position `from` of the log, something deleted or unbound what a step names. */
function undoneAfter(list: readonly Op[], from: number, undoes: (o: Op) => boolean): boolean {
  return list.slice(from + 1).some(undoes);
}

function lastIndex(list: readonly Op[], is: (o: Op) => boolean): number {
  for (let i = list.length - 1; i >= 0; i--) if (is(list[i]!)) return i;
  return -1;
}

describe("properties over random sequences of declare, delete, bind, unbind, consume and cancel", () => {
  it("the plan is ordered, has no duplicates and never declares amq.*", () => {
    fc.assert(
      fc.property(ops(fc.boolean()), (list) => {
        const steps = [...run(list).replayPlan()];
        const rank = { "exchange.declare": 0, "queue.declare": 1, "queue.bind": 2, "exchange.bind": 2, "basic.consume": 3 } as const;
        const ranks = steps.map((s) => rank[s.kind]);
        expect(ranks).toEqual([...ranks].sort());
        const shown = steps.map((s) => JSON.stringify(s));
        expect(new Set(shown).size).toBe(shown.length);
        expect(steps.some((s) => s.kind === "exchange.declare" && s.exchange.startsWith("amq."))).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it("the plan never holds a binding or consumer whose queue or exchange was deleted after it was made", () => {
    fc.assert(
      fc.property(ops(fc.boolean()), (list) => {
        for (const s of run(list).replayPlan()) {
          if (s.kind === "queue.bind") {
            const made = lastIndex(list, (o) => o.op === "bindQueue" && o.q === s.queue && o.x === s.exchange && o.k === s.routingKey);
            expect(made).toBeGreaterThanOrEqual(0);
            const gone = (o: Op) =>
              (o.op === "deleteQueue" && o.q === s.queue) ||
              (o.op === "deleteExchange" && o.x === s.exchange) ||
              (o.op === "unbindQueue" && o.q === s.queue && o.x === s.exchange && o.k === s.routingKey);
            expect(undoneAfter(list, made, gone)).toBe(false);
          } else if (s.kind === "exchange.bind") {
            const made = lastIndex(list, (o) => o.op === "bindExchange" && o.d === s.destination && o.s === s.source && o.k === s.routingKey);
            expect(made).toBeGreaterThanOrEqual(0);
            const gone = (o: Op) =>
              (o.op === "deleteExchange" && (o.x === s.source || o.x === s.destination)) ||
              (o.op === "unbindExchange" && o.d === s.destination && o.s === s.source && o.k === s.routingKey);
            expect(undoneAfter(list, made, gone)).toBe(false);
          } else if (s.kind === "basic.consume") {
            const made = lastIndex(list, (o) => o.op === "consume" && consumerKeys[o.c] === s.key);
            expect(list[made]).toMatchObject({ q: s.queue });
            expect(undoneAfter(list, made, (o) => (o.op === "deleteQueue" && o.q === s.queue) || (o.op === "cancel" && consumerKeys[o.c] === s.key))).toBe(false);
          } else if (s.kind === "queue.declare") {
            const made = lastIndex(list, (o) => o.op === "declareQueue" && o.q === s.queue);
            expect(undoneAfter(list, made, (o) => o.op === "deleteQueue" && o.q === s.queue)).toBe(false);
          } else {
            const made = lastIndex(list, (o) => o.op === "declareExchange" && o.x === s.exchange);
            expect(undoneAfter(list, made, (o) => o.op === "deleteExchange" && o.x === s.exchange)).toBe(false);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("without auto-delete, everything declared and not undone since is in the plan, with the last declaration's settings", () => {
    fc.assert(
      fc.property(ops(fc.constant(false)), (list) => {
        const shown = new Set([...run(list).replayPlan()].map((s) => show(s)));
        list.forEach((o, i) => {
          const later = (undoes: (u: Op) => boolean) => undoneAfter(list, i, undoes);
          switch (o.op) {
            case "declareExchange":
              if (!o.x.startsWith("amq.") && !later((u) => u.op === "deleteExchange" && u.x === o.x)) expect(shown).toContain(`exchange ${o.x}`);
              break;
            case "declareQueue":
              if (!later((u) => u.op === "deleteQueue" && u.q === o.q)) expect(shown).toContain(`queue ${o.q}`);
              break;
            case "bindQueue":
              if (!later((u) => (u.op === "deleteQueue" && u.q === o.q) || (u.op === "deleteExchange" && u.x === o.x) || (u.op === "unbindQueue" && u.q === o.q && u.x === o.x && u.k === o.k)))
                expect(shown).toContain(`bind ${o.q} <- ${o.x} [${o.k}]`);
              break;
            case "bindExchange":
              if (!later((u) => (u.op === "deleteExchange" && (u.x === o.d || u.x === o.s)) || (u.op === "unbindExchange" && u.d === o.d && u.s === o.s && u.k === o.k)))
                expect(shown).toContain(`bind exchange ${o.d} <- ${o.s} [${o.k}]`);
              break;
            case "consume":
              if (!later((u) => (u.op === "deleteQueue" && u.q === o.q) || ((u.op === "cancel" || u.op === "consume") && u.c === o.c)))
                expect(shown).toContain(`consume ${o.q} as c${o.c} (ctag-c${o.c})`);
              break;
          }
        });
      }),
      { numRuns: 300 },
    );
  });

  it("after random renames during a replay, no binding or consumer names a queue by its old name", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ bindings: fc.nat({ max: 3 }), consumers: fc.nat({ max: 2 }) }), { minLength: 1, maxLength: 5 }), (queues) => {
        const t = new Topology<Key>();
        t.exchangeDeclared(exchange("x"));
        queues.forEach((spec, i) => {
          t.queueDeclared(queue(""), `amq.gen-${i}`);
          for (let b = 0; b < spec.bindings; b++) t.queueBound(qBinding(`amq.gen-${i}`, "x", `k${b}`));
          for (let c = 0; c < spec.consumers; c++) t.consumerStarted(consumer(key(`q${i}c${c}`), `amq.gen-${i}`));
        });
        const used: string[] = [];
        for (const step of t.replayPlan()) {
          if (step.kind === "queue.declare") t.queueRenamed(step.recordedName, step.recordedName.replace("gen", "new"));
          else if (step.kind === "queue.bind" || step.kind === "basic.consume") used.push(step.queue);
        }
        expect(used.length).toBe(queues.reduce((n, s) => n + s.bindings + s.consumers, 0));
        expect(used.every((q) => q.startsWith("amq.new-"))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
