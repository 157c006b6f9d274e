/**
 * Machine transcripts (test/fixtures/machine/*.json) and their replay.
 *
 * A transcript is a list of segments. `segments[i].c2s` is one write the client made; `segments[i].s2c` is
 * every byte the broker sent after that write and before the next one. The broker can only answer what it
 * has received, so a replay may cut a segment's s2c bytes anywhere, but must let the machine react (drain
 * events into the scenario, drain pollTransmit) before the next segment's bytes — which is what an adapter
 * does after every read anyway.
 *
 * The replay feeds each chunk, then reacts, and attributes what the machine writes to the segment whose
 * input it was reacting to: output produced while segment i-1's bytes were fed must equal segment i's c2s
 * exactly (segment 0's c2s is what the machine writes before any input — the protocol header).
 */
import { readFileSync } from "node:fs";
import { concat, hex, toHex } from "../../support/bytes.ts";
import { createMachine, ReplayScenario } from "./scenario.ts";

export interface Segment {
  readonly c2s: Uint8Array;
  readonly s2c: Uint8Array;
}

export interface MachineTranscript {
  readonly description: string;
  readonly broker: string;
  readonly segments: readonly Segment[];
  readonly expectedEvents: readonly string[];
}

/** The JSON form: bytes as lowercase hex. */
export interface MachineTranscriptJson {
  description: string;
  broker: string;
  recordedWith: string;
  scenario: string;
  layout: string;
  segments: { c2s: string; s2c: string }[];
  expectedEvents: string[];
}

export function fixtureUrl(name: string): URL {
  return new URL(`../../fixtures/machine/${name}.json`, import.meta.url);
}

export function loadMachineTranscript(name: string): MachineTranscript {
  const json = JSON.parse(readFileSync(fixtureUrl(name), "utf8")) as MachineTranscriptJson;
  return {
    description: json.description,
    broker: json.broker,
    segments: json.segments.map((s) => ({ c2s: hex(s.c2s), s2c: hex(s.s2c) })),
    expectedEvents: json.expectedEvents,
  };
}

export function segmentsToJson(segments: readonly Segment[]): { c2s: string; s2c: string }[] {
  return segments.map((s) => ({ c2s: toHex(s.c2s), s2c: toHex(s.s2c) }));
}

export interface ReplayResult {
  /** `output[i]`: what the machine wrote for segment i (see the file comment); one more entry than segments. */
  readonly output: Uint8Array[];
  readonly log: string[];
  /** Whether the machine reported `connectionClosed`. */
  readonly closed: boolean;
}

/**
 * Replays `segments` into a fresh machine driven by the scenario. `split` cuts one segment's s2c bytes into
 * the chunks to feed (it must return pieces that concatenate back to the input). After the last segment the
 * transport ends (`handleEnd`), as RabbitMQ drops the connection after close-ok.
 */
export function replay(segments: readonly Segment[], split: (bytes: Uint8Array, segment: number) => Uint8Array[]): ReplayResult {
  const now = 0;
  const m = createMachine(now);
  const scenario = new ReplayScenario();
  // What pollTransmit returned, kept as handed out (not copied) until the end: the transport owns those
  // bytes, so a machine that wrote into them again later would show up as a mismatch.
  const written: Uint8Array[][] = [[]];
  const pump = (): void => {
    scenario.drain(m);
    const out = m.pollTransmit(now);
    if (out !== undefined) written.at(-1)!.push(out);
  };
  pump();
  segments.forEach((seg, i) => {
    written.push([]);
    for (const chunk of split(seg.s2c, i)) {
      m.handleInput(chunk, now);
      pump();
    }
    if (i === segments.length - 1) {
      m.handleEnd(now);
      pump();
    }
  });
  return { output: written.map(concat), log: scenario.log, closed: m.isClosed };
}

/** Each segment whole: one read per broker burst. */
export const wholeSegments = (bytes: Uint8Array): Uint8Array[] => [bytes];

/** One byte per read. */
export const byteByByte = (bytes: Uint8Array): Uint8Array[] => Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));

/**
 * Cuts the whole s2c stream into chunks of the given sizes, cycling through them; a chunk never crosses a
 * segment boundary (the segment's end cuts it short and the next chunk starts with the next size).
 */
export function bySizes(sizes: readonly number[]): (bytes: Uint8Array) => Uint8Array[] {
  let k = 0;
  return (bytes) => {
    const out: Uint8Array[] = [];
    for (let at = 0; at < bytes.length; ) {
      const n = Math.max(1, sizes[k++ % sizes.length]!);
      out.push(bytes.subarray(at, at + n));
      at += n;
    }
    return out;
  };
}
