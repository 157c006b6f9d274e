import { connect } from "../src/index.ts";
const conn = await connect("amqp://guest:guest@127.0.0.1:5672/%2f?heartbeat=30");
console.log("connected", conn.serverProperties.version);
const ch = await conn.openChannel();
const { queue } = await ch.queueDeclare("", { exclusive: true });
console.log("queue", queue);
await ch.exchangeDeclare("warren.smoke", "topic", { durable: false, autoDelete: true });
await ch.queueBind(queue, "warren.smoke", "app.*");
await ch.basicQos(100);
await ch.confirmSelect();
await ch.basicPublish("warren.smoke", "app.start", JSON.stringify({ hi: 1 }), { contentType: "application/json", headers: { a: 1 } }, { mandatory: true });
try { await ch.basicPublish("warren.smoke", "nowhere", "x", {}, { mandatory: true }); } catch (e) { console.log("returned:", (e as Error).name, (e as Error).message); }
const one = await ch.basicGet(queue);
console.log("get", one?.bodyText(), one?.properties.headers);
one?.ack();
console.log("empty get", await ch.basicGet(queue));
const N = 10000;
const t0 = performance.now();
const consumer = await ch.basicConsume(queue);
const ps = [];
for (let i = 0; i < N; i++) ps.push(ch.basicPublish("warren.smoke", "app.x", `m${i}`));
await Promise.all(ps);
let n = 0;
for await (const m of consumer) { m.ack(); if (++n === N) break; }
console.log("consumed", n, "in", (performance.now() - t0).toFixed(0), "ms");
const ch2 = await conn.openChannel();
try { await ch2.queueDeclare(queue, { durable: true }); } catch (e) { console.log("ch2 error:", (e as Error).name, (e as Error).message); }
console.log("ch still ok:", (await ch.queueDeclare(queue, { passive: true })).queue === queue);
await ch.close();
await conn.close();
console.log("closed");
