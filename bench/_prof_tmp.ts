import { encodeContent, FrameDecoder, Writer, type BasicPublish } from "../src/codec/index.ts";
const w = new Writer();
const m: BasicPublish = { name: "basic.publish", classId: 60, methodId: 40, exchange: "events", routingKey: "orders.eu.created", mandatory: false, immediate: false };
const headers = { "x-trace-id": "4bf92f3577b34da6a3ce929d0e0e4736", "x-retry-count": 3, "x-replayed": false, "x-origin": { region: "eu-west-1", shard: 7 } };
const props = { contentType: "application/json", contentEncoding: "utf-8", headers, deliveryMode: 2, priority: 5, messageId: "msg-0000000000000042", timestamp: 1700000000, appId: "warren-bench" };
const body = new Uint8Array(256);
encodeContent(w, 1, m, props, body, 131072);
const ref = w.finish();
const mode = process.argv[2] ?? "dec";
const asBuf = process.argv[3] === "buf";
const RING = 256; const chunks: Uint8Array[] = [];
for (let i = 0; i < RING; i++) chunks.push(asBuf ? Buffer.from(ref) : ref.slice());
let sink = 0;
const d = new FrameDecoder();
for (let r = 0; r < 6; r++) {
  const t = performance.now(); const N = 500000;
  if (mode === "dec") {
    for (let i = 0; i < N; i++) { d.push(chunks[i & 255]!); let f; while ((f = d.next()) !== undefined) sink += f.type; }
  } else if (mode === "enc") {
    for (let i = 0; i < N; i++) { encodeContent(w, 1, m, props, body, 131072); sink += w.finish().length; }
  }
  const ms = performance.now() - t; console.log(mode, asBuf ? "buf" : "u8", Math.round(N / ms * 1000));
}
console.log(sink % 7);
