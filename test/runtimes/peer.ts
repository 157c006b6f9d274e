/**
 * The other end of the cross-runtime scenario, run as a child process by a runner on another runtime
 * (test/runtimes/support.ts `runPeer`). It detects the runtime it runs on, connects with that runtime's
 * adapter, takes the one message waiting in PEER_IN (published by the runner's runtime), acks it, and
 * publishes — with a confirm — a reply to PEER_OUT saying which runtime received what. Exit code 0 when the
 * reply was confirmed.
 *
 *   PEER_URL   broker URI
 *   PEER_IN    queue holding the runner's message
 *   PEER_OUT   queue for the reply
 */
type Adapter = typeof import("../../src/adapters/node.ts");

const g = globalThis as { Deno?: unknown; Bun?: unknown };
const runtime = g.Deno !== undefined ? "deno" : g.Bun !== undefined ? "bun" : "node";
const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

async function main(): Promise<void> {
  const w = (await import(`../../src/adapters/${runtime}.ts`)) as Adapter;
  const conn = await w.connect(env("PEER_URL"), { connectionName: `warren runtimes peer (${runtime})`, connectionTimeout: 10_000 });
  try {
    const ch = await conn.openChannel();
    // The runner published before starting this process, with a confirm: the message is there.
    const deadline = performance.now() + 10_000;
    let msg = await ch.basicGet(env("PEER_IN"));
    while (msg === null && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      msg = await ch.basicGet(env("PEER_IN"));
    }
    if (msg === null) throw new Error(`no message in ${env("PEER_IN")}`);
    msg.ack();
    await ch.confirmSelect();
    const reply = {
      runtime,
      platform: (w as unknown as Record<string, { platform: string }>)[`${runtime}Runtime`]!.platform,
      received: msg.bodyText(),
      receivedFrom: msg.properties.appId,
      bodyBytes: msg.body.byteLength,
    };
    await ch.basicPublish("", env("PEER_OUT"), JSON.stringify(reply), { appId: runtime, contentType: "application/json" });
  } finally {
    await conn.close();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`peer on ${runtime} failed:`, e);
    process.exit(1);
  },
);
