/** Loads the byte transcripts recorded from a real RabbitMQ (test/fixtures/transcripts). */
import { readFileSync } from "node:fs";
import { hex } from "./bytes.ts";

export interface Chunk {
  dir: "c2s" | "s2c";
  bytes: Uint8Array;
}
export interface Transcript {
  description: string;
  chunks: Chunk[];
}

export const TRANSCRIPTS = ["handshake", "publish-consume", "channel-error", "large-body"] as const;

export function loadTranscript(name: (typeof TRANSCRIPTS)[number]): Transcript {
  const url = new URL(`../fixtures/transcripts/${name}.json`, import.meta.url);
  const json = JSON.parse(readFileSync(url, "utf8")) as { description: string; chunks: { dir: "c2s" | "s2c"; hex: string }[] };
  return { description: json.description, chunks: json.chunks.map((c) => ({ dir: c.dir, bytes: hex(c.hex) })) };
}

/** Every byte one side sent, in order. */
export function stream(t: Transcript, dir: "c2s" | "s2c"): Uint8Array {
  const parts = t.chunks.filter((c) => c.dir === dir).map((c) => c.bytes);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
