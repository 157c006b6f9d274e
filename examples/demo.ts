/**
 * The README's demo: connect to the local broker, declare a topic exchange and a queue, publish a batch with
 * publisher confirms, consume it back with acks, and print what happened and how fast.
 *
 *   npm run demo            (starts a local RabbitMQ with scripts/broker.sh when none answers)
 *   AMQP_URL=amqp://… npm run demo
 */
import { connect } from "../src/index.ts";

const url = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672/%2f";
const count = Number(process.env.DEMO_COUNT ?? 10_000);

async function main(): Promise<void> {
  const conn = await connect(url, { connectionName: "warren demo" });
  const server = conn.serverProperties;
  console.log(`connected to ${String(server.product)} ${String(server.version)} at ${conn}`);
  conn.on("blocked", (reason) => console.log(`broker blocked publishing: ${reason}`));

  const ch = await conn.openChannel();
  await ch.exchangeDeclare("warren.demo", "topic", { autoDelete: true });
  const { queue } = await ch.queueDeclare("", { exclusive: true });
  await ch.queueBind(queue, "warren.demo", "demo.#");
  console.log(`declared exchange warren.demo and queue ${queue}, bound with demo.#`);

  // Publish with confirms: each basicPublish resolves when the broker has the message.
  await ch.confirmSelect();
  let t0 = performance.now();
  const confirms: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    confirms.push(ch.basicPublish("warren.demo", `demo.${i % 3 === 0 ? "fizz" : "plain"}`, JSON.stringify({ i }), { contentType: "application/json", deliveryMode: 1 }));
  }
  await Promise.all(confirms);
  let ms = performance.now() - t0;
  console.log(`published ${count} messages with confirms in ${ms.toFixed(0)} ms (${Math.round((count / ms) * 1000)} msg/s)`);

  // An unroutable mandatory message comes back instead of vanishing.
  try {
    await ch.basicPublish("warren.demo", "nowhere", "lost?", {}, { mandatory: true });
  } catch (e) {
    console.log(`mandatory publish to an unbound key was returned: ${(e as Error).message}`);
  }

  // Consume them back with a prefetch window, acking each.
  await ch.basicQos(500);
  const consumer = await ch.basicConsume(queue);
  t0 = performance.now();
  let received = 0;
  let sum = 0;
  for await (const msg of consumer) {
    sum += msg.json<{ i: number }>().i;
    msg.ack();
    if (++received === count) break; // leaving the loop cancels the consumer
  }
  ms = performance.now() - t0;
  const expected = (count * (count - 1)) / 2;
  console.log(`consumed ${received} messages in ${ms.toFixed(0)} ms (${Math.round((received / ms) * 1000)} msg/s), ${sum === expected ? "none lost or duplicated" : "MISMATCH"}`);

  await ch.close();
  await conn.close();
  console.log("closed cleanly");
  if (sum !== expected) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(`demo failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
