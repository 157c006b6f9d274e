/**
 * Replaying a recorded topology on a recovered connection, in the Java client's order: exchanges, queues,
 * bindings, then consumers (each on its own channel, which the connection reopened first).
 *
 * Declarations go out on a scratch channel of their own, so that one failing step (a 406 because the queue
 * was redeclared elsewhere with other arguments, say) closes only that scratch channel: the step is reported
 * and the rest goes on, on a fresh scratch channel. A server-named queue gets a new name; the topology
 * carries it to the bindings and consumers that follow, and the renames are reported.
 *
 * A connection lost during the replay rejects the request in flight; the replay stops there (`lost()`), and
 * the recovery loop starts again from the top.
 */
import type { Method } from "../../codec/amqp/methods.generated.ts";
import type { ReplyEvent } from "../../machine/events.ts";
import type { Channel } from "../channel.ts";
import type { Commands } from "../commands.ts";
import type { Consumer } from "../consumer.ts";
import type { QueueRename, ReplayStep, Topology } from "./topology.ts";

/** What the replay needs from the connection. */
export interface ReplayHost<K> {
  /** Opens a machine channel (a free number) and resolves with it once open. */
  openScratchChannel(): Promise<number>;
  closeScratchChannel(channel: number): void;
  /** One synchronous request; rejects when its channel or the connection closes first. */
  request(channel: number, method: Method): Promise<ReplyEvent>;
  /** Re-registers a consumer on its channel, with the step's (possibly renamed) queue. */
  consume(step: ConsumeStep<K>): Promise<void>;
  /** True once the connection being replayed on was lost. */
  lost(): boolean;
}

export type ConsumeStep<K> = Extract<ReplayStep<K>, { kind: "basic.consume" }>;

/** A replay step that failed; the rest of the replay went on. */
export interface ReplayFailure {
  readonly step: string;
  readonly error: unknown;
}

export interface ReplayReport {
  readonly renamedQueues: QueueRename[];
  readonly failures: ReplayFailure[];
  /** Confirm-mode publishes whose outcome was lost and that were sent again (recovery `unconfirmed: "resend"`). */
  resent: number;
}

/** The connection dropped while replaying: the recovery loop tries again. */
export class ReplayInterrupted extends Error {
  constructor(cause: unknown) {
    super("the connection was lost while replaying its topology", { cause });
    this.name = "ReplayInterrupted";
  }
}

/**
 * The whole replay on a recovered connection: every channel reopened (same number, same qos, confirm and tx
 * mode), then the topology and consumers, then — under the resend policy — the publishes whose outcome was
 * lost, each on its own channel in its original order (before any publish that waited for the recovery).
 * `lost` says whether the connection dropped meanwhile.
 */
export async function replayConnection(channels: readonly Channel[], commands: Commands, topology: Topology<Consumer>, lost: () => boolean): Promise<ReplayReport> {
  try {
    for (const ch of [...channels].sort((a, b) => a.id - b.id)) await ch.reopen();
  } catch (e) {
    if (lost()) throw new ReplayInterrupted(e);
    throw e;
  }
  const report = await replayTopology<Consumer>(
    {
      openScratchChannel: () => commands.openChannel(undefined, undefined),
      closeScratchChannel: (channel) => commands.dropChannel(channel),
      request: (channel, method) => commands.rawRequest(channel, method),
      consume: async (step) => {
        const ch = channels.find((c) => c.hasConsumer(step.key));
        if (ch) await ch.resubscribe(step);
      },
      lost,
    },
    topology,
  );
  for (const ch of channels) report.resent += ch.resendUnconfirmed();
  if (lost()) throw new ReplayInterrupted(new Error("the connection was lost while resending unconfirmed publishes"));
  return report;
}

export async function replayTopology<K>(host: ReplayHost<K>, topology: Topology<K>): Promise<ReplayReport> {
  const report: ReplayReport = { renamedQueues: [], failures: [], resent: 0 };
  let scratch: number | undefined;
  try {
    for (const step of topology.replayPlan()) {
      try {
        if (step.kind === "basic.consume") {
          await host.consume(step);
          continue;
        }
        scratch ??= await host.openScratchChannel();
        const reply = await host.request(scratch, methodOf(step));
        if (step.kind === "queue.declare" && reply.method.name === "queue.declare-ok" && reply.method.queue !== step.recordedName) {
          const rename = topology.queueRenamed(step.recordedName, reply.method.queue);
          if (rename) report.renamedQueues.push(rename);
        }
      } catch (e) {
        if (host.lost()) throw new ReplayInterrupted(e);
        report.failures.push({ step: describeStep(step), error: e });
        if (scratch !== undefined && step.kind !== "basic.consume") {
          host.closeScratchChannel(scratch); // most likely closed by the failure already
          scratch = undefined;
        }
      }
    }
  } finally {
    if (scratch !== undefined && !host.lost()) host.closeScratchChannel(scratch);
  }
  return report;
}

function methodOf(step: Exclude<ReplayStep<unknown>, { kind: "basic.consume" }>): Method {
  switch (step.kind) {
    case "exchange.declare":
      return { name: "exchange.declare", classId: 40, methodId: 10, exchange: step.exchange, type: step.type, passive: false, durable: step.durable, autoDelete: step.autoDelete, internal: step.internal, noWait: false, arguments: step.arguments };
    case "queue.declare":
      return { name: "queue.declare", classId: 50, methodId: 10, queue: step.queue, passive: false, durable: step.durable, exclusive: step.exclusive, autoDelete: step.autoDelete, noWait: false, arguments: step.arguments };
    case "exchange.bind":
      return { name: "exchange.bind", classId: 40, methodId: 30, destination: step.destination, source: step.source, routingKey: step.routingKey, noWait: false, arguments: step.arguments };
    case "queue.bind":
      return { name: "queue.bind", classId: 50, methodId: 20, queue: step.queue, exchange: step.exchange, routingKey: step.routingKey, noWait: false, arguments: step.arguments };
  }
}

function describeStep(step: ReplayStep<unknown>): string {
  switch (step.kind) {
    case "exchange.declare":
      return `exchange.declare "${step.exchange}"`;
    case "queue.declare":
      return `queue.declare "${step.serverNamed ? "" : step.queue}"${step.serverNamed ? ` (was ${step.recordedName})` : ""}`;
    case "exchange.bind":
      return `exchange.bind "${step.destination}" ← "${step.source}" (${step.routingKey})`;
    case "queue.bind":
      return `queue.bind "${step.queue}" ← "${step.exchange}" (${step.routingKey})`;
    case "basic.consume":
      return `basic.consume "${step.queue}" (${step.consumerTag})`;
  }
}
