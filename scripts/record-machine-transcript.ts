/**
 * Records a machine transcript: warren's own ConnectionMachine, driven by the replay scenario
 * (test/machine/replay/scenario.ts), talking to a real RabbitMQ on 127.0.0.1:5672 (guest/guest).
 *
 *   npx tsx scripts/record-machine-transcript.ts            # writes test/fixtures/machine/session.json
 *   npx tsx scripts/record-machine-transcript.ts --check    # records, compares with the checked-in file
 *   npx tsx scripts/record-machine-transcript.ts --out FILE # writes elsewhere
 *
 * The loop is the adapter loop of connection.ts: socket data → handleInput → events into the scenario →
 * pollTransmit → socket.write; one timer from pollTimeout; end/close → handleEnd. Every client write starts a
 * new segment; every byte the broker sends goes into the current segment's s2c (see replay.ts for why that is
 * the unit a replay must respect). TCP's own chunking is not kept: the replay test tries every chunking.
 *
 * Determinism: the queue is deleted first on a separate, unrecorded connection, so declare-ok always reports
 * an empty queue; everything the client sends is pinned by the scenario; what the broker generates (server
 * properties, error texts) is whatever this broker says and is replayed as recorded. Before writing, the
 * recording is replayed offline (whole segments) and must reproduce itself.
 */
import { writeFileSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import type { ConnectionMachine, MachineEvent } from "../src/machine/index.ts";
import { concat, toHex } from "../test/support/bytes.ts";
import { createMachine, formatEvent, QUEUE, ReplayScenario } from "../test/machine/replay/scenario.ts";
import { fixtureUrl, type MachineTranscriptJson, replay, type Segment, segmentsToJson, wholeSegments } from "../test/machine/replay/replay.ts";

const HOST = "127.0.0.1";
const PORT = 5672;

interface Hooks {
  /** Bytes the client is about to write. */
  onWrite?: (bytes: Uint8Array) => void;
  /** Bytes the broker sent. */
  onRead?: (bytes: Uint8Array) => void;
}

/**
 * Runs a machine over a TCP connection until it reports connectionClosed and the socket is gone. `react` gets
 * every event; the promise resolves with the log of formatted events.
 */
function drive(m: ConnectionMachine, react: (e: MachineEvent) => void, hooks: Hooks = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: HOST, port: PORT, noDelay: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    let finished = false;
    const done = (err?: Error): void => {
      if (finished) return;
      finished = true;
      if (timer !== undefined) clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    const pump = (): void => {
      for (let e = m.pollEvent(); e !== undefined; e = m.pollEvent()) react(e);
      const out = m.pollTransmit(performance.now());
      if (out !== undefined && !socket.destroyed) {
        hooks.onWrite?.(out);
        socket.write(out);
      }
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      const at = m.pollTimeout();
      if (at !== undefined) {
        timer = setTimeout(() => {
          timer = undefined;
          m.handleTimeout(performance.now());
          pump();
        }, Math.max(0, at - performance.now()));
      }
      // RabbitMQ resets the connection right after close-ok; we leave once the machine is closed.
      if (m.isClosed) socket.end(() => done());
    };
    socket.on("connect", pump);
    socket.on("data", (chunk: Buffer) => {
      if (finished) return;
      const bytes = new Uint8Array(chunk); // a copy: the machine keeps a reference to what it is given
      hooks.onRead?.(bytes);
      m.handleInput(bytes, performance.now());
      pump();
    });
    const ended = (): void => {
      if (finished) return;
      m.handleEnd(performance.now());
      pump();
      if (m.isClosed) done();
      else done(new Error("the machine did not close when the transport ended"));
    };
    socket.on("end", ended);
    socket.on("close", ended);
    socket.on("error", (e: NodeJS.ErrnoException) => {
      // ECONNRESET after close-ok is RabbitMQ's normal way out; before the machine closed it is a failure.
      if (m.isClosed) return;
      if (e.code === "ECONNREFUSED") done(new Error(`no broker on ${HOST}:${PORT}: run scripts/broker.sh ensure`));
      else ended();
    });
  });
}

/** Deletes the scenario's queue on its own connection, so every recording starts from the same broker state. */
async function cleanUp(): Promise<void> {
  const m = createMachine(performance.now());
  const log: string[] = [];
  await drive(m, (e) => {
    log.push(formatEvent(e));
    if (e.type === "handshakeDone") m.openChannel();
    else if (e.type === "reply" && e.method.name === "channel.open-ok") {
      m.call(e.channel, { name: "queue.delete", classId: 50, methodId: 40, queue: QUEUE, ifUnused: false, ifEmpty: false, noWait: false });
    } else if (e.type === "reply" && e.method.name === "queue.delete-ok") m.close();
  });
  if (!log.some((l) => l.includes("queue.delete-ok"))) throw new Error(`clean-up failed:\n${log.join("\n")}`);
}

async function record(): Promise<{ segments: Segment[]; log: string[] }> {
  const m = createMachine(performance.now());
  const scenario = new ReplayScenario();
  const segments: { c2s: Uint8Array; s2c: Uint8Array[] }[] = [];
  await drive(m, (e) => scenario.react(m, e), {
    onWrite: (bytes) => segments.push({ c2s: bytes.slice(), s2c: [] }),
    onRead: (bytes) => {
      const last = segments.at(-1);
      if (last === undefined) throw new Error("the broker spoke before the client");
      last.s2c.push(bytes.slice());
    },
  });
  return { segments: segments.map((s) => ({ c2s: s.c2s, s2c: concat(s.s2c) })), log: scenario.log };
}

function brokerOf(log: readonly string[]): string {
  const m = /server="([^"]*)"\/"([^"]*)"/.exec(log[0] ?? "");
  return m ? `${m[1]} ${m[2]}` : "unknown";
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const check = args.includes("--check");
  const outIndex = args.indexOf("--out");
  const out = outIndex >= 0 ? args[outIndex + 1]! : fileURLToPath(fixtureUrl("session"));

  await cleanUp();
  const { segments, log } = await record();
  await cleanUp(); // leave nothing behind even if the scenario did not get to its queue.delete

  const last = log.at(-1) ?? "";
  if (!last.startsWith("connectionClosed client 200")) throw new Error(`the session did not end with a clean close:\n${log.join("\n")}`);

  // The recording must replay into itself before it is worth keeping.
  const again = replay(segments, wholeSegments);
  const c2s = concat(segments.map((s) => s.c2s));
  if (toHex(concat(again.output)) !== toHex(c2s) || JSON.stringify(again.log) !== JSON.stringify(log)) {
    throw new Error(`the recording does not replay into itself:\nlive:   ${log.join("\n        ")}\nreplay: ${again.log.join("\n        ")}`);
  }

  const json: MachineTranscriptJson = {
    description:
      "warren's ConnectionMachine driven by test/machine/replay/scenario.ts against RabbitMQ: handshake (heartbeat 0), channel 1, queue.declare, " +
      "confirm.select, three publishes (plain; all properties with a headers table; mandatory to an unroutable key on amq.direct → basic.return " +
      "before its ack), all confirms, basic.qos, basic.consume, two deliveries acked, basic.cancel, channel 2 redeclares the queue durable → " +
      "channel.close 406, queue.delete on channel 1, channel.close, connection.close.",
    broker: brokerOf(log),
    recordedWith: "npx tsx scripts/record-machine-transcript.ts",
    scenario: "test/machine/replay/scenario.ts",
    layout:
      "segments[i].c2s: one client write (hex); segments[i].s2c: every byte the broker sent after it and before the next client write (hex). " +
      "The transport ended after the last segment.",
    segments: segmentsToJson(segments),
    expectedEvents: log,
  };
  const text = `${JSON.stringify(json, null, 2)}\n`;
  const bytes = { c2s: c2s.length, s2c: segments.reduce((n, s) => n + s.s2c.length, 0) };
  const summary = `${segments.length} segments, ${bytes.c2s} bytes c2s, ${bytes.s2c} bytes s2c, ${log.length} events`;
  if (check) {
    const old = readFileSync(out, "utf8");
    if (old !== text) {
      console.error(`${out} differs from a new recording (${summary})`);
      process.exitCode = 1;
      return;
    }
    console.log(`${out} matches a new recording (${summary})`);
    return;
  }
  writeFileSync(out, text);
  console.log(`wrote ${out}: ${summary}`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
