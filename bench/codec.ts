/**
 * Codec benchmark: one "publish message" (basic.publish method frame + content header + one body frame),
 * encoded and decoded by warren and by the codecs inside the two dev-dependency clients.
 *
 * Run: `npm run bench:codec` (≈ 40 s). Prints msgs/s per library and direction: the median of 10 timed
 * rounds of 500 ms, libraries alternating round by round, after a 500 ms warm-up.
 *
 * The message: channel 1, exchange "events", routing key "orders.eu.created", properties contentType,
 * contentEncoding, headers {a 32-char string, an int, a boolean, a nested table of a string and an int},
 * deliveryMode 2, priority 5, messageId, timestamp, appId, and a 256-byte body — 523 bytes on the wire as
 * three frames.
 *
 * What exactly is measured, per library (socket I/O, promises and streams are left out for everyone):
 *
 *   warren, encode: `encodeContent(w, 1, method, props, body, 131072)` into one long-lived Writer, then
 *     `w.finish()` — a fresh Uint8Array view per message that the caller owns, as a client hands it to a
 *     socket. The method and properties objects are built once (as a client's `publish` receives them).
 *   warren, decode: one long-lived FrameDecoder; per message `push(chunk)` and `next()` until it returns
 *     undefined (3 frames + the final "need more"), reading routing key, message id, two headers, body.
 *
 *   amqplib 2.x, encode: exactly `Connection.sendMessage` minus the stream write — `defs.encodeMethod(BasicPublish)`
 *     + `defs.encodeProperties(BasicProperties)` (each allocates its own Buffer; headers go through the
 *     SCRATCH buffer and are copied), then `Buffer.allocUnsafe(total)`, two copies and `frame.makeBodyFrame`
 *     + copy (its < 2048-byte single-chunk path). The fields/properties object is what `Args.publish`
 *     returns, built once outside the loop (amqplib's own option mapping is *not* timed — in its favour).
 *   amqplib 2.x, decode: exactly `Connection.recvFrame` for a chunk arriving from the stream — `parseFrame`
 *     on the (empty) rest, `Buffer.concat([rest, chunk])`, then per frame `parseFrame` + `frame.decodeFrame`
 *     (method fields via `defs.decode`, properties and headers via `codec.decodeFields`, body as a
 *     subarray), and the final `parseFrame` that finds nothing left. Channel-level message assembly
 *     (`acceptMessage`) is not timed.
 *
 *   @cloudamqp/amqp-client 4.x, encode: the body of `AMQPChannel.basicPublish` from "get a buffer from the
 *     pool" to `bufferView.subarray(0, j)` — AMQPView writes of the method frame, `setProperties` (headers
 *     via `setTable`), the body frame copy — with the buffer pushed back to the pool right after (in the
 *     library that happens when the socket write completes; here the view is consumed at once). Reusing one
 *     pooled 128 KiB buffer is this library's design and it keeps that advantage: it allocates nothing per
 *     message but the subarray. The promise / `connection.send` part is not timed.
 *   @cloudamqp/amqp-client 4.x, decode: the whole-frame path of `AMQPClient.onRead` (`readInt32BE` for the
 *     size, `new AMQPView` over the frame) and the loop of `AMQPBaseClient.parseFrames` for a content
 *     method, header and body: `getShortString` for exchange and routing key, `new AMQPMessage`,
 *     `getUint64` + `getProperties` (headers via `getTable`), `new Uint8Array(bodySize)` and the body copy,
 *     then `onMessageReady`'s `message.body = message._rawBytes`. The library's parser is a method of the
 *     connection and only knows server-sent methods, so this is that code re-stated for basic.publish (the
 *     same calls as its basic.deliver case) rather than a call into it. The body copy is part of how that
 *     library parses; warren and amqplib hand out a view instead.
 *
 * Fairness: all three decoders read the same bytes — warren's encoding, checked first to decode correctly
 * in every library (and each library's own encoding to decode in warren and in itself). Decode inputs are a
 * ring of 256 messages that differ in their message id (as real ones do: no string cache gets a free hit
 * on it), each a distinct Buffer carved out of one ArrayBuffer at an odd offset, as socket reads arrive.
 * Each library runs in its own child process, so no library pays for another's garbage or heap sizing (in
 * one shared process the order of the runs moved every library's numbers by up to 2×); V8's memory
 * reducer is off in the children, because it shrinks the heap of whichever process sits idle while the
 * others are measured — an artifact of the alternation that a busy client never sees. A second table
 * gives msgs per second of the process's CPU time, which moves less when other processes share the machine
 * (they still share its cores' caches); look at the per-round numbers and the load average before trusting
 * a median.
 */
import { fork } from "node:child_process";
import { createRequire } from "node:module";
import { availableParallelism, loadavg } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { AMQPView } from "@cloudamqp/amqp-client/amqp-view";
import { AMQPMessage } from "@cloudamqp/amqp-client/amqp-message";
import type { AMQPProperties, Field } from "@cloudamqp/amqp-client";
import {
  type BasicProperties,
  type BasicPublish,
  type BodyFrame,
  encodeContent,
  type Frame,
  FrameDecoder,
  type HeaderFrame,
  type MethodFrame,
  Writer,
} from "../src/codec/index.ts";

// ---------------------------------------------------------------------------------------------------------
// The message

const CHANNEL = 1;
const FRAME_MAX = 131072;
const EXCHANGE = "events";
const ROUTING_KEY = "orders.eu.created";
const BODY = Buffer.alloc(256);
for (let i = 0; i < BODY.length; i++) BODY[i] = (i * 7 + 3) & 0xff;
const TIMESTAMP = 1_700_000_000;

const headers = {
  "x-trace-id": "4bf92f3577b34da6a3ce929d0e0e4736",
  "x-retry-count": 3,
  "x-replayed": false,
  "x-origin": { region: "eu-west-1", shard: 7 },
};

const warrenMethod: BasicPublish = {
  name: "basic.publish",
  classId: 60,
  methodId: 40,
  exchange: EXCHANGE,
  routingKey: ROUTING_KEY,
  mandatory: false,
  immediate: false,
};
const warrenProps: BasicProperties = {
  contentType: "application/json",
  contentEncoding: "utf-8",
  headers,
  deliveryMode: 2,
  priority: 5,
  messageId: "msg-0000000000000042",
  timestamp: TIMESTAMP,
  appId: "warren-bench",
};

// ---------------------------------------------------------------------------------------------------------
// The peers' internals (CommonJS files behind amqplib's `exports` map, loaded by path)

interface AmqplibFrameStructure {
  type: number;
  channel: number;
  size: number;
  payload: Buffer;
  rest: Buffer;
}
interface AmqplibDecoded {
  id?: number;
  channel: number;
  size?: number;
  fields?: Record<string, unknown>;
  content?: Buffer;
}
interface AmqplibDefs {
  BasicPublish: number;
  BasicProperties: number;
  FRAME_OVERHEAD: number;
  encodeMethod(id: number, channel: number, fields: object): Buffer;
  encodeProperties(id: number, channel: number, size: number, fields: object): Buffer;
}
interface AmqplibFrame {
  makeBodyFrame(channel: number, payload: Buffer): Buffer;
  parseFrame(bin: Buffer, max: number): AmqplibFrameStructure | false;
  decodeFrame(frame: AmqplibFrameStructure): AmqplibDecoded;
}
interface AmqplibArgs {
  publish(exchange: string, routingKey: string, options: object): Record<string, unknown>;
}

const require = createRequire(import.meta.url);
const amqplibLib = path.join(path.dirname(require.resolve("amqplib")), "lib");
const defs = require(path.join(amqplibLib, "defs.js")) as AmqplibDefs;
const amqplibFrame = require(path.join(amqplibLib, "frame.js")) as AmqplibFrame;
const Args = require(path.join(amqplibLib, "api_args.js")) as AmqplibArgs;

// ---------------------------------------------------------------------------------------------------------
// warren

function warrenEncoder(): () => Uint8Array {
  const w = new Writer();
  return () => {
    encodeContent(w, CHANNEL, warrenMethod, warrenProps, BODY, FRAME_MAX);
    return w.finish();
  };
}

interface Decoded {
  routingKey: string;
  messageId: string | undefined;
  deliveryMode: number | undefined;
  origin: unknown;
  retry: unknown;
  body: Uint8Array;
}

function warrenDecoder(): (chunk: Buffer) => Decoded {
  const d = new FrameDecoder({ frameMax: FRAME_MAX });
  return (chunk) => {
    // What src/adapters/node.ts does with every socket read: hand the machine a plain Uint8Array view (a
    // Buffer subclass instance would make every byte access in the decoder polymorphic).
    d.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    let method: MethodFrame | undefined;
    let header: HeaderFrame | undefined;
    let body: BodyFrame | undefined;
    let f: Frame | undefined;
    while ((f = d.next()) !== undefined) {
      if (f.type === 1) method = f;
      else if (f.type === 2) header = f;
      else if (f.type === 3) body = f;
    }
    const m = method!.method as BasicPublish;
    const p = header!.properties;
    return { routingKey: m.routingKey, messageId: p.messageId, deliveryMode: p.deliveryMode, origin: p.headers?.["x-origin"], retry: p.headers?.["x-retry-count"], body: body!.payload };
  };
}

// ---------------------------------------------------------------------------------------------------------
// amqplib

const amqplibFields = Args.publish(EXCHANGE, ROUTING_KEY, {
  contentType: warrenProps.contentType,
  contentEncoding: warrenProps.contentEncoding,
  headers,
  deliveryMode: 2,
  priority: 5,
  messageId: warrenProps.messageId,
  timestamp: TIMESTAMP,
  appId: warrenProps.appId,
});

function amqplibEncoder(): () => Uint8Array {
  const SINGLE_CHUNK_THRESHOLD = 2048;
  return () => {
    // Connection.sendMessage(channel, BasicPublish, fields, BasicProperties, props, content)
    const content = BODY;
    const mframe = defs.encodeMethod(defs.BasicPublish, CHANNEL, amqplibFields);
    const pframe = defs.encodeProperties(defs.BasicProperties, CHANNEL, content.length, amqplibFields);
    const methodHeaderLen = mframe.length + pframe.length;
    const bodyLen = content.length > 0 ? content.length + defs.FRAME_OVERHEAD : 0;
    const allLen = methodHeaderLen + bodyLen;
    if (allLen >= SINGLE_CHUNK_THRESHOLD) throw new Error("bench message must take the single-chunk path");
    const all = Buffer.allocUnsafe(allLen);
    let offset = mframe.copy(all, 0);
    offset += pframe.copy(all, offset);
    if (bodyLen > 0) amqplibFrame.makeBodyFrame(CHANNEL, content).copy(all, offset);
    return all; // → buffer.write(all)
  };
}

function amqplibDecoder(): (chunk: Buffer) => Decoded {
  // Connection.recvFrame, with `stream.read()` returning the chunk once.
  let rest: Buffer = Buffer.alloc(0);
  let incoming: Buffer | null = null;
  const maxFrameSize = FRAME_MAX;
  function recvFrame(): AmqplibDecoded | false {
    const frame = amqplibFrame.parseFrame(rest, maxFrameSize);
    if (!frame) {
      const chunk = incoming;
      incoming = null;
      if (chunk === null) return false;
      rest = Buffer.concat([rest, chunk]);
      return recvFrame();
    }
    rest = frame.rest;
    return amqplibFrame.decodeFrame(frame);
  }
  return (chunk) => {
    incoming = chunk;
    let method: AmqplibDecoded | undefined;
    let header: AmqplibDecoded | undefined;
    let body: AmqplibDecoded | undefined;
    let f: AmqplibDecoded | false;
    while ((f = recvFrame()) !== false) {
      if (f.content !== undefined) body = f;
      else if (f.size !== undefined) header = f;
      else method = f;
    }
    const props = header!.fields as { deliveryMode: number; messageId: string; headers: Record<string, unknown> };
    return {
      routingKey: method!.fields!["routingKey"] as string,
      messageId: props.messageId,
      deliveryMode: props.deliveryMode,
      origin: props.headers["x-origin"],
      retry: props.headers["x-retry-count"],
      body: body!.content!,
    };
  };
}

// ---------------------------------------------------------------------------------------------------------
// @cloudamqp/amqp-client

// AMQPFrame's enum values, as the library's compiled code reads them.
const Type = { METHOD: 1, HEADER: 2, BODY: 3, HEARTBEAT: 8 } as const;
const END_CODE = 206;
const CLASS_BASIC = 60;
const BASIC_PUBLISH = 40;

const cloudProps: AMQPProperties = {
  contentType: warrenProps.contentType!,
  contentEncoding: warrenProps.contentEncoding!,
  headers: headers as Record<string, Field>,
  deliveryMode: 2,
  priority: 5,
  messageId: warrenProps.messageId!,
  timestamp: new Date(TIMESTAMP * 1000),
  appId: warrenProps.appId!,
};

function cloudamqpEncoder(): () => Uint8Array {
  const connection = { frameMax: FRAME_MAX, bufferPool: [] as AMQPView[] };
  const id = CHANNEL;
  return () => {
    // AMQPChannel.basicPublish(exchange, routingKey, data, properties, mandatory, immediate)
    const exchange = EXCHANGE;
    const routingKey = ROUTING_KEY;
    const properties = cloudProps;
    const mandatory = false;
    const immediate = false;
    const body: Uint8Array = BODY;
    let j = 0;
    let buffer = connection.bufferPool.pop() || new AMQPView(new ArrayBuffer(connection.frameMax));
    buffer.setUint8(j, Type.METHOD);
    j += 1;
    buffer.setUint16(j, id);
    j += 2;
    j += 4;
    buffer.setUint16(j, CLASS_BASIC);
    j += 2;
    buffer.setUint16(j, BASIC_PUBLISH);
    j += 2;
    buffer.setUint16(j, 0);
    j += 2;
    j += buffer.setShortString(j, exchange);
    j += buffer.setShortString(j, routingKey);
    let bits = 0;
    if (mandatory) bits = bits | (1 << 0);
    if (immediate) bits = bits | (1 << 1);
    buffer.setUint8(j, bits);
    j += 1;
    buffer.setUint8(j, END_CODE);
    j += 1;
    buffer.setUint32(3, j - 8);

    const headerStart = j;
    buffer.setUint8(j, Type.HEADER);
    j += 1;
    buffer.setUint16(j, id);
    j += 2;
    j += 4;
    buffer.setUint16(j, CLASS_BASIC);
    j += 2;
    buffer.setUint16(j, 0);
    j += 2;
    buffer.setUint32(j, 0);
    j += 4;
    buffer.setUint32(j, body.byteLength);
    j += 4;
    j += buffer.setProperties(j, properties);
    buffer.setUint8(j, END_CODE);
    j += 1;
    buffer.setUint32(headerStart + 3, j - headerStart - 8);

    let bufferView = new Uint8Array(buffer.buffer);
    const bodyFrameCount = Math.ceil(body.byteLength / (connection.frameMax - 8));
    const bufferSize = j + body.byteLength + 8 * bodyFrameCount;
    if (buffer.byteLength < bufferSize) {
      const newBuffer = new ArrayBuffer(bufferSize);
      const newBufferView = new Uint8Array(newBuffer);
      newBufferView.set(bufferView.subarray(0, j));
      buffer = new AMQPView(newBuffer);
      bufferView = newBufferView;
    }
    for (let bodyPos = 0; bodyPos < body.byteLength; ) {
      const frameSize = Math.min(body.byteLength - bodyPos, connection.frameMax - 8);
      const dataSlice = body.subarray(bodyPos, bodyPos + frameSize);
      buffer.setUint8(j, Type.BODY);
      j += 1;
      buffer.setUint16(j, id);
      j += 2;
      buffer.setUint32(j, frameSize);
      j += 4;
      bufferView.set(dataSlice, j);
      j += frameSize;
      buffer.setUint8(j, END_CODE);
      j += 1;
      bodyPos += frameSize;
    }
    const out = bufferView.subarray(0, j); // → this.connection.send(out)
    connection.bufferPool.push(buffer); // → .finally(() => this.connection.bufferPool.push(buffer))
    return out;
  };
}

/** AMQPMessage with the fields its type declarations strip as `@internal`, which the parser uses. */
type CloudMessage = AMQPMessage & { _rawBytes: Uint8Array | null; bodyPos: number };
interface CloudChannel {
  delivery?: CloudMessage | undefined;
}

function cloudamqpDecoder(): (chunk: Buffer) => Decoded {
  const channel: CloudChannel = { delivery: undefined };
  const channels: (CloudChannel | undefined)[] = [undefined, channel];
  let ready: CloudMessage | undefined;
  // AMQPChannel.onMessageReady
  function onMessageReady(message: CloudMessage): void {
    message.body = message._rawBytes;
    delete channel.delivery;
    ready = message;
  }
  // AMQPBaseClient.parseFrames, the cases a published message takes
  function parseFrames(view: AMQPView): void {
    for (let i = 0; i < view.byteLength; ) {
      const type = view.getUint8(i);
      i += 1;
      const channelId = view.getUint16(i);
      i += 2;
      const frameSize = view.getUint32(i);
      i += 4;
      let frameEnd = 0;
      try {
        frameEnd = view.getUint8(i + frameSize);
      } catch {
        throw new Error(`Frame end out of range, frameSize=${frameSize}, pos=${i}, byteLength=${view.byteLength}`);
      }
      if (frameEnd !== END_CODE) throw new Error(`Invalid frame end ${frameEnd}, expected ${END_CODE}`);
      const channel = channels[channelId];
      if (!channel) {
        i += frameSize + 1;
        continue;
      }
      switch (type) {
        case Type.METHOD: {
          const classId = view.getUint16(i);
          i += 2;
          const methodId = view.getUint16(i);
          i += 2;
          if (classId === CLASS_BASIC && methodId === BASIC_PUBLISH) {
            // as its BasicMethod.DELIVER case, with publish's arguments
            i += 2; // reserved1
            const [exchange, exchangeLen] = view.getShortString(i);
            i += exchangeLen;
            const [routingKey, routingKeyLen] = view.getShortString(i);
            i += routingKeyLen;
            const bits = view.getUint8(i);
            i += 1;
            const message = new AMQPMessage(channel as never) as CloudMessage;
            message.exchange = exchange;
            message.routingKey = routingKey;
            message.redelivered = (bits & 1) === 1;
            channel.delivery = message;
          } else {
            i += frameSize - 4;
          }
          break;
        }
        case Type.HEADER: {
          i += 4;
          const bodySize = view.getUint64(i);
          i += 8;
          const [properties, propLen] = view.getProperties(i);
          i += propLen;
          const message = channel.delivery;
          if (message) {
            message.bodySize = bodySize;
            message.properties = properties;
            message._rawBytes = new Uint8Array(bodySize);
            if (bodySize === 0) onMessageReady(message);
          }
          break;
        }
        case Type.BODY: {
          const message = channel.delivery;
          if (message && message._rawBytes) {
            const bodyPart = new Uint8Array(view.buffer, view.byteOffset + i, frameSize);
            message._rawBytes.set(bodyPart, message.bodyPos);
            message.bodyPos += frameSize;
            i += frameSize;
            if (message.bodyPos === message.bodySize) onMessageReady(message);
          }
          break;
        }
        default:
          i += frameSize;
      }
      i += 1;
    }
  }
  // AMQPClient.onRead, the path where whole frames lie in the read buffer
  let frameSize = 0;
  function onRead(buf: Buffer): boolean {
    const bufLen = buf.length;
    let bufPos = 0;
    while (bufPos < bufLen) {
      if (frameSize === 0) {
        if (bufPos + 3 + 4 > bufLen) throw new Error("bench input never splits a frame header");
        frameSize = buf.readInt32BE(bufPos + 3) + 8;
        if (bufLen - bufPos >= frameSize) {
          const view = new AMQPView(buf.buffer, buf.byteOffset + bufPos, frameSize);
          parseFrames(view);
          bufPos += frameSize;
          frameSize = 0;
          continue;
        }
      }
      throw new Error("bench input never splits a frame");
    }
    return true;
  }
  return (chunk) => {
    onRead(chunk);
    const m = ready!;
    ready = undefined;
    const h = m.properties.headers!;
    return { routingKey: m.routingKey, messageId: m.properties.messageId, deliveryMode: m.properties.deliveryMode, origin: h["x-origin"], retry: h["x-retry-count"], body: m.body! };
  };
}

// ---------------------------------------------------------------------------------------------------------
// Correctness, once, before timing

function check(lib: string, what: string, d: Decoded): void {
  const origin = d.origin as { region?: unknown; shard?: unknown } | undefined;
  const ok =
    d.routingKey === ROUTING_KEY &&
    d.deliveryMode === 2 &&
    d.messageId?.startsWith("msg-") === true &&
    d.retry === 3 &&
    origin?.region === "eu-west-1" &&
    origin?.shard === 7 &&
    d.body.length === BODY.length &&
    Buffer.from(d.body.buffer, d.body.byteOffset, d.body.length).equals(BODY);
  if (!ok) throw new Error(`${lib} ${what}: decoded message is wrong: ${JSON.stringify({ ...d, body: d.body.length })}`);
}

interface Library {
  name: string;
  encode: () => Uint8Array;
  decode: (chunk: Buffer) => Decoded;
}

const LIBRARIES: Record<string, () => Library> = {
  warren: () => ({ name: "warren", encode: warrenEncoder(), decode: warrenDecoder() }),
  amqplib: () => ({ name: "amqplib", encode: amqplibEncoder(), decode: amqplibDecoder() }),
  "@cloudamqp/amqp-client": () => ({ name: "@cloudamqp/amqp-client", encode: cloudamqpEncoder(), decode: cloudamqpDecoder() }),
};
const NAMES = Object.keys(LIBRARIES);

/** Warren's bytes: what every decoder reads. */
function referenceBytes(): Buffer {
  return Buffer.from(warrenEncoder()());
}

/**
 * The decode inputs: the reference message with message ids msg-0000000000000000 … msg-0000000000000255,
 * written over the id's bytes (not re-encoded: encoding other property objects here would make warren's
 * encoder polymorphic in the process that then measures it).
 */
function ringMessages(): Buffer[] {
  const reference = referenceBytes();
  const id = Buffer.from(warrenProps.messageId!);
  const at = reference.indexOf(id);
  if (at < 0 || reference.indexOf(id, at + 1) >= 0) throw new Error("message id not found once in the reference message");
  const out: Buffer[] = [];
  for (let i = 0; i < RING; i++) {
    const m = Buffer.from(reference);
    m.write(`msg-${String(i).padStart(16, "0")}`, at, "latin1");
    out.push(m);
  }
  return out;
}

/** Checks that every library's encoding decodes to the message, with warren's decoder and its own, and that every decoder reads warren's bytes. */
function checkAll(): void {
  const reference = referenceBytes();
  for (const name of NAMES) {
    const lib = LIBRARIES[name]!();
    const own = Buffer.from(lib.encode());
    check(name, "own encode → warren decode", warrenDecoder()(own));
    check(name, "own encode → own decode", lib.decode(own));
    check(name, "decode of warren's bytes", lib.decode(Buffer.from(reference)));
    const same = own.equals(reference) ? "identical to warren's" : `differ from warren's ${reference.length}`;
    console.log(`check ok: ${name.padEnd(22)} encodes ${own.length} bytes (${same}); decodes warren's bytes and its own`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Timing. Each library runs in its own child process, so no library's garbage or heap sizing is charged to
// another (a shared heap moved every library's numbers by up to 2× depending on who ran before). The
// parent only sequences the rounds: one child measures at a time.

const BATCH = 1024;
const RING = 256;

type Op = "encode" | "decode";
interface Request {
  op: Op;
  ms: number;
}

function childMain(name: string): void {
  const lib = LIBRARIES[name]!();
  // The decode inputs: 256 messages that differ only in their message id (as real ones do, so a decoder
  // that caches strings gets no free hit on it), in one ArrayBuffer at odd offsets, like socket reads.
  const messages = ringMessages();
  const stride = messages[0]!.length + 3;
  const arena = new ArrayBuffer(stride * RING + 1);
  const chunks: Buffer[] = [];
  for (let i = 0; i < RING; i++) {
    const b = Buffer.from(arena, 1 + i * stride, messages[i]!.length);
    messages[i]!.copy(b);
    chunks.push(b);
  }
  for (let i = 0; i < RING; i++) {
    const d = lib.decode(chunks[i]!);
    check(name, "decode of the ring", d);
    if (d.messageId !== `msg-${String(i).padStart(16, "0")}`) throw new Error(`${name}: ring message ${i} decoded with message id ${d.messageId}`);
  }

  let sink = 0;
  const enc = lib.encode;
  const dec = lib.decode;
  const batches: Record<Op, () => void> = {
    encode: () => {
      for (let i = 0; i < BATCH; i++) sink += enc().length;
    },
    decode: () => {
      for (let i = 0; i < BATCH; i++) sink += dec(chunks[i & (RING - 1)]!).body.length;
    },
  };
  process.on("message", (req: Request) => {
    const batch = batches[req.op];
    let ops = 0;
    const cpu = process.cpuUsage();
    const start = performance.now();
    let now = start;
    const until = start + req.ms;
    while (now < until) {
      batch();
      ops += BATCH;
      now = performance.now();
    }
    const used = process.cpuUsage(cpu);
    const reply: Measurement = { wall: (ops * 1000) / (now - start), cpu: (ops * 1e6) / (used.user + used.system) };
    process.send!({ ...reply, sink: sink & 1 });
  });
  process.send!({ ready: true });
}

/** Messages per second of wall-clock time, and per second of the process's CPU time. */
interface Measurement {
  wall: number;
  cpu: number;
}

interface Child {
  measure: (op: Op, ms: number) => Promise<Measurement>;
  close: () => void;
}

function spawnChild(name: string): Promise<Child> {
  const child = fork(fileURLToPath(import.meta.url), ["--child", name], { execArgv: [...process.execArgv, "--no-memory-reducer"], stdio: "inherit" });
  type Reply = Partial<Measurement> & { ready?: boolean };
  let waiting: ((m: Reply) => void) | undefined;
  child.on("message", (m: Reply) => {
    const w = waiting;
    waiting = undefined;
    w?.(m);
  });
  child.on("exit", (code) => {
    if (code !== 0 && code !== null) {
      console.error(`${name}: benchmark process exited with ${code}`);
      process.exit(1);
    }
  });
  const next = () => new Promise<Reply>((resolve) => (waiting = resolve));
  return next().then(() => ({
    measure: (op, ms) => {
      const reply = next();
      child.send({ op, ms } satisfies Request);
      return reply.then((m) => ({ wall: m.wall!, cpu: m.cpu! }));
    },
    close: () => child.kill(),
  }));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const WARMUP_MS = 500;
const ROUND_MS = 500;
const ROUNDS = 10;
const TARGET = 3;

async function parentMain(): Promise<void> {
  checkAll();
  const reference = referenceBytes();
  console.log(`\nwarren codec benchmark — Node ${process.version}, one ${reference.length}-byte publish message (method + header + ${BODY.length}-byte body frames)`);
  console.log(`one process per library; warm-up ${WARMUP_MS} ms, then ${ROUNDS} rounds of ${ROUND_MS} ms per library and direction, libraries alternating; median\n`);

  const children = await Promise.all(NAMES.map(spawnChild));
  for (const c of children) {
    await c.measure("encode", WARMUP_MS);
    await c.measure("decode", WARMUP_MS);
  }
  const results = NAMES.map(() => ({ encode: [] as Measurement[], decode: [] as Measurement[] }));
  for (let round = 0; round < ROUNDS; round++) {
    for (const op of ["encode", "decode"] as const) {
      // rotate the order each round
      for (let k = 0; k < NAMES.length; k++) {
        const i = (k + round) % NAMES.length;
        results[i]![op].push(await children[i]!.measure(op, ROUND_MS));
      }
    }
  }
  for (const c of children) c.close();

  const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
  let met = true;
  for (const clock of ["wall", "cpu"] as const) {
    const rows = NAMES.map((name, i) => ({
      name,
      encode: median(results[i]!.encode.map((m) => m[clock])),
      decode: median(results[i]!.decode.map((m) => m[clock])),
    }));
    const warren = rows[0]!;
    const peers = rows.slice(1);
    const bestEncode = Math.max(...peers.map((p) => p.encode));
    const bestDecode = Math.max(...peers.map((p) => p.decode));
    const header = ["library", "encode msgs/s", "decode msgs/s", "encode vs best peer", "decode vs best peer"];
    const table = rows.map((r) => [
      r.name,
      fmt(r.encode),
      fmt(r.decode),
      r === warren ? `${(r.encode / bestEncode).toFixed(2)}×` : "",
      r === warren ? `${(r.decode / bestDecode).toFixed(2)}×` : "",
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
    console.log(clock === "wall" ? "msgs per second of wall-clock time (median of rounds):" : "\nmsgs per second of the library process's CPU time (user + system; less sensitive to other processes on a shared machine, though not immune):");
    console.log(line(header));
    console.log(widths.map((w) => "-".repeat(w)).join("  "));
    for (const row of table) console.log(line(row));
    if (clock === "wall") met = warren.encode >= TARGET * bestEncode && warren.decode >= TARGET * bestDecode;
  }
  console.log("\nrounds (wall-clock msgs/s, encode | decode):");
  for (const [i, name] of NAMES.entries()) {
    const r = results[i]!;
    console.log(`  ${name.padEnd(22)}  ${r.encode.map((m) => fmt(m.wall)).join(" ")}  |  ${r.decode.map((m) => fmt(m.wall)).join(" ")}`);
  }
  const load = loadavg()[0]!.toFixed(2);
  console.log(`\ntarget: warren ≥ ${TARGET}× the best peer in both directions (wall clock) — ${met ? "met" : "NOT met"}; 1-minute load average at the end ${load} on ${availableParallelism()} CPUs`);
}

const childAt = process.argv.indexOf("--child");
if (childAt >= 0) childMain(process.argv[childAt + 1]!);
else await parentMain();
