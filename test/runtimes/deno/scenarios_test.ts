/**
 * The runtime scenarios (test/runtimes/scenarios.ts) on Deno, with src/adapters/deno.ts:
 *
 *   npx deno test -A test/runtimes/deno/
 *
 * Named *_test.ts (which Deno and Bun collect, vitest does not) so that vitest's test/**\/*.test.ts leaves it
 * alone. tsc also checks this file, with Node's types: `Deno` below is Deno's namespace under Deno's checker
 * and `any` under tsc.
 */
import * as w from "../../../src/adapters/deno.ts";
import { type ScenarioEnv, scenarios } from "../scenarios.ts";
import { amqpUrl, runPeer, runtimesTlsBroker, stallProxy, unixProxy } from "../support.ts";

// deno-lint-ignore no-explicit-any
type DenoNs = typeof globalThis extends { Deno: infer D } ? D : any;
const Deno = (globalThis as unknown as { Deno: DenoNs }).Deno;

const tlsBroker = await runtimesTlsBroker();
if (!tlsBroker.tls) console.warn(`TLS scenarios skipped: no TLS broker (${tlsBroker.reason})`);

const env: ScenarioEnv = {
  runtime: "deno",
  w,
  url: amqpUrl(),
  tls: tlsBroker.tls,
  unixProxy,
  stallProxy,
  runPeer,
  peers: ["node", "bun"],
  caps: { tlsVerifyOff: false, tlsOverUnix: false },
};

for (const s of scenarios) {
  Deno.test({
    name: s.name,
    ignore: s.tls === true && !env.tls,
    // Deno's op and resource sanitizers stay on: a scenario that leaves a socket or a pending read behind
    // fails here.
    async fn() {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const ms = s.timeout ?? 30_000;
      try {
        await Promise.race([
          s.run(env),
          new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms))),
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
  });
}
