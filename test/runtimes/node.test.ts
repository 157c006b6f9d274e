/**
 * The runtime scenarios (test/runtimes/scenarios.ts) on Node, with src/adapters/node.ts — the same list the
 * Deno and Bun runners run. Needs the broker (scripts/broker.sh ensure); the TLS scenarios start or reuse
 * the runtimes' TLS node (test/runtimes/support.ts).
 */
import { beforeAll, describe, it } from "vitest";
import * as w from "../../src/adapters/node.ts";
import { type ScenarioEnv, scenarios } from "./scenarios.ts";
import { amqpUrl, runPeer, runtimesTlsBroker, stallProxy, type TlsEnv, unixProxy } from "./support.ts";

let tls: TlsEnv | undefined;
let tlsMissing = "";

const env: ScenarioEnv = {
  runtime: "node",
  w,
  url: amqpUrl(),
  get tls() {
    return tls;
  },
  unixProxy,
  stallProxy,
  runPeer,
  peers: ["deno", "bun"],
  caps: { tlsVerifyOff: true, tlsOverUnix: true },
};

beforeAll(async () => {
  const r = await runtimesTlsBroker();
  tls = r.tls;
  if (!r.tls) tlsMissing = r.reason;
}, 180_000);

describe("runtime scenarios on Node", () => {
  for (const s of scenarios) {
    it(s.name, async (ctx) => {
      if (s.tls && !tls) {
        console.warn(`skipped (no TLS broker: ${tlsMissing}): ${s.name}`);
        ctx.skip();
      }
      await s.run(env);
    }, s.timeout ?? 30_000);
  }
});
