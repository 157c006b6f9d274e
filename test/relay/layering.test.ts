/**
 * The WebSocket pieces keep to their layers: the adapter is runtime-neutral (it runs in browsers, Deno and
 * Bun as it is), the framing uses only warren/codec, and only the relay server touches Node — and then only
 * node:http, node:net, node:crypto (and the stream/util types and helpers that come with them).
 */
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const src = (rel: string) =>
  readFileSync(new URL(`../../src/${rel}`, import.meta.url), "utf8")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/(^|[^:])\/\/.*$/gm, "$1");
const imports = (rel: string) => [...src(rel).matchAll(/from\s+["']([^"']+)["']/g)].map((m) => m[1]!);

describe("layering of the WebSocket adapter and the relay", () => {
  it("src/adapters/websocket.ts, and the adapter helpers it shares, use no Node API", () => {
    for (const f of ["websocket.ts", "attempt.ts", "common.ts"]) {
      expect(src(`adapters/${f}`)).not.toMatch(/node:|\bBuffer\b|\bprocess\.|\brequire\(/);
      for (const m of imports(`adapters/${f}`)) expect(m, `${f} imports ${m}`).toMatch(/^(\.\.\/client\/|\.\/(attempt|common)\.ts$)/);
    }
  });

  it("src/relay/ws-frame.ts is built on warren/codec alone", () => {
    expect(src("relay/ws-frame.ts")).not.toMatch(/node:|\bBuffer\b|\bprocess\./);
    for (const m of imports("relay/ws-frame.ts")) expect(m).toMatch(/^\.\.\/codec\/[a-z0-9-]+\.ts$/);
  });

  it("the relay depends on nothing outside Node's standard library and warren/codec", () => {
    for (const f of readdirSync(new URL("../../src/relay/", import.meta.url))) {
      for (const m of imports(`relay/${f}`)) expect(m, `${f} imports ${m}`).toMatch(/^(node:(http|net|crypto|stream|util)|\.\/[a-z0-9-]+\.ts|\.\.\/codec\/[a-z0-9-]+\.ts)$/);
    }
  });
});
