// The browser example: connect through warren-relay, publish with confirms, consume, show what happened.
//
// Query parameters fill the form (relay, user, password, n) and pick the queue's marker; `autorun=1`
// starts at once (the browser test uses that). The outcome is in the DOM: body[data-state] is "running",
// "done" or "error", #received lists the bodies consumed, #log the steps.
import { connect } from "warren/websocket";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
for (const name of ["relay", "user", "password", "n"]) if (params.has(name)) $(name).value = params.get(name);

function log(text) {
  const li = document.createElement("li");
  li.textContent = text;
  $("log").append(li);
}

function setState(state, text) {
  document.body.dataset.state = state;
  $("status").textContent = text;
}

async function run() {
  const relay = $("relay").value;
  const n = Math.max(1, Math.min(10_000, Number($("n").value) || 10));
  const marker = params.get("marker") ?? Math.random().toString(36).slice(2, 10);
  const queueName = `warren.browser.${marker}`;
  $("received").replaceChildren();
  $("log").replaceChildren();
  $("run").disabled = true;
  setState("running", "Running…");
  let conn;
  try {
    log(`connecting to ${relay}`);
    conn = await connect(relay, { username: $("user").value, password: $("password").value, vhost: "/", connectionName: `warren-browser-${marker}` });
    const sp = conn.serverProperties;
    log(`connected to ${sp.product} ${sp.version}`);
    document.body.dataset.server = `${sp.product} ${sp.version}`;

    const ch = await conn.openChannel();
    // Not exclusive and not auto-deleted, so that the test can check from Node that the broker has it.
    const { queue } = await ch.queueDeclare(queueName, { durable: false, autoDelete: false });
    log(`declared queue ${queue}`);
    await ch.confirmSelect();
    const bodies = Array.from({ length: n }, (_, i) => `hello ${i + 1} of ${n} from the browser [${marker}]`);
    await Promise.all(bodies.map((body, i) => ch.basicPublish("", queue, body, { messageId: String(i + 1), contentType: "text/plain" })));
    log(`published ${n} messages, all confirmed by the broker`);

    const received = [];
    const consumer = await ch.basicConsume(queue);
    for await (const message of consumer) {
      const text = new TextDecoder().decode(message.body);
      received.push(text);
      const li = document.createElement("li");
      li.textContent = text;
      $("received").append(li);
      message.ack();
      if (received.length === n) break; // leaving the loop cancels the consumer
    }
    log(`consumed and acked ${received.length} messages`);
    await conn.close();
    log("connection closed");
    const ok = received.length === n && received.every((t, i) => t === bodies[i]);
    setState(ok ? "done" : "error", ok ? `Done: ${n} messages made the round trip through RabbitMQ.` : "Messages came back different from what was sent.");
  } catch (e) {
    log(`error: ${e?.name ?? "Error"}: ${e?.message ?? e}`);
    setState("error", `Failed: ${e?.message ?? e}`);
    conn?.close().catch(() => {});
  } finally {
    $("run").disabled = false;
  }
}

$("settings").addEventListener("submit", (event) => {
  event.preventDefault();
  void run();
});
if (params.get("autorun") === "1") void run();
