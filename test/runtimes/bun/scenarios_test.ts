/// <reference types="bun" />
/**
 * The runtime scenarios (test/runtimes/scenarios.ts) on Bun, with src/adapters/bun.ts:
 *
 *   npx bun test test/runtimes/bun/
 *
 * Named *_test.ts (which Bun and Deno collect, vitest does not) so that vitest's test/**\/*.test.ts leaves it
 * alone. The reference above gives tsc Bun's types for this file — and lets it check src/adapters/bun.ts's
 * declarations of Bun's API against them.
 */
import { beforeAll, describe, test } from "bun:test";
import * as w from "../../../src/adapters/bun.ts";
import { type ScenarioEnv, scenarios } from "../scenarios.ts";
import { amqpUrl, runPeer, runtimesTlsBroker, stallProxy, type TlsEnv, unixProxy } from "../support.ts";

let tls: TlsEnv | undefined;

const env: ScenarioEnv = {
  runtime: "bun",
  w,
  url: amqpUrl(),
  get tls() {
    return tls;
  },
  unixProxy,
  stallProxy,
  runPeer,
  peers: ["node", "deno"],
  caps: { tlsVerifyOff: true, tlsOverUnix: true },
};

beforeAll(async () => {
  const r = await runtimesTlsBroker();
  tls = r.tls;
  if (!r.tls) console.warn(`TLS scenarios skipped: no TLS broker (${r.reason})`);
}, 180_000);

describe("runtime scenarios on Bun", () => {
  for (const s of scenarios) {
    test(s.name, async () => {
      if (s.tls && !tls) return; // reported once in beforeAll
      await s.run(env);
    }, s.timeout ?? 30_000);
  }
});
