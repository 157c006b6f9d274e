#!/usr/bin/env node
// Records byte transcripts of real AMQP 0-9-1 sessions with RabbitMQ, for use as test fixtures
// (golden vectors for the codec, replay tests for the protocol state machine).
//
//   node scripts/record-transcript.mjs [scenarioName|all]     (default: all)
//
// For each scenario a TCP proxy is started on 127.0.0.1 (ephemeral port) that forwards to the broker
// (WARREN_BROKER_HOST / WARREN_BROKER_PORT, default 127.0.0.1:5672) and records every chunk it receives,
// in either direction, in the order it saw them. amqplib then drives the scenario through the proxy and
// the transcript is written to test/fixtures/transcripts/<name>.json.
//
// Chunk boundaries are whatever TCP delivered to the proxy; consumers of the fixtures should treat each
// direction as a byte stream (concatenate the chunks) rather than rely on the boundaries.

import { Buffer } from 'node:buffer';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT_DIR = path.join(ROOT, 'test', 'fixtures', 'transcripts');
const BROKER_HOST = process.env.WARREN_BROKER_HOST || '127.0.0.1';
const BROKER_PORT = Number(process.env.WARREN_BROKER_PORT || 5672);
const EXPECTED_BROKER = 'RabbitMQ 3.10.8';
const TRAILING_WAIT_MS = 300;

const amqplibVersion = JSON.parse(await readFile(path.join(ROOT, 'node_modules', 'amqplib', 'package.json'), 'utf8')).version;

// amqplib's default client properties, in amqplib's own key order, except that `platform` (normally
// "Node.JS v<x.y.z>") is pinned so re-recording on another Node version yields the same bytes.
const CLIENT_PROPERTIES = {
  product: 'amqplib',
  version: amqplibVersion,
  platform: 'Node.JS',
  information: 'https://amqp-node.github.io/amqplib/',
  capabilities: {
    publisher_confirms: true,
    exchange_exchange_bindings: true,
    'basic.nack': true,
    consumer_cancel_notify: true,
    'connection.blocked': true,
    authentication_failure_close: true,
  },
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------------------
// Recording proxy

async function startProxy() {
  const chunks = [];
  const sockets = new Set();
  let connections = 0;

  const server = net.createServer((client) => {
    connections++;
    client.setNoDelay(true);
    sockets.add(client);
    const upstream = net.connect({ host: BROKER_HOST, port: BROKER_PORT });
    upstream.setNoDelay(true);
    sockets.add(upstream);

    client.on('data', (data) => {
      chunks.push({ dir: 'c2s', hex: data.toString('hex') });
      upstream.write(data); // buffered by the socket until upstream is connected
    });
    upstream.on('data', (data) => {
      chunks.push({ dir: 's2c', hex: data.toString('hex') });
      client.write(data);
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    // RabbitMQ closes its socket with SO_LINGER 0 after connection.close-ok, so a reset from the broker side
    // at the end of a session is normal; anything else is worth a message.
    const teardown = (side, peer) => (err) => {
      if (!(side === 'upstream' && err.code === 'ECONNRESET')) console.error(`proxy ${side}: ${err.message}`);
      peer.destroy();
    };
    client.on('error', teardown('client', upstream));
    upstream.on('error', teardown('upstream', client));
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });

  return {
    port: server.address().port,
    chunks,
    connectionCount: () => connections,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Scenarios. Each gets the amqp URL of the proxy and returns when the connection is closed.

function connect(url) {
  // amqplib copies extra client properties onto its defaults iterating the keys last-to-first, so pass
  // them reversed to keep the keys on the wire in amqplib's usual order (product, version, platform, ...).
  const clientProperties = Object.fromEntries(Object.entries(CLIENT_PROPERTIES).reverse());
  return amqp.connect(url, { clientProperties });
}

const scenarios = {
  handshake: {
    description:
      'Connect (frameMax 131072, heartbeat 0) and close the connection cleanly: protocol header, ' +
      'connection.start/start-ok, tune/tune-ok, open/open-ok, close/close-ok.',
    async run(url, info) {
      const conn = await connect(url);
      info.serverProperties = conn.connection.serverProperties;
      await conn.close();
    },
  },

  'publish-consume': {
    description:
      'Confirm channel; queue.declare "warren.golden.pc"; basic.publish via the default exchange of "hello warren" ' +
      'with every basic property set (headers include int, string, bool and nested table); wait for basic.ack; ' +
      'basic.qos prefetch 10; basic.consume with consumer tag "warren.golden.pc.ctag"; one basic.deliver; ' +
      'basic.ack; basic.cancel; queue.delete; channel.close; connection.close.',
    async run(url, info) {
      const queue = 'warren.golden.pc';
      const conn = await connect(url);
      info.serverProperties = conn.connection.serverProperties;
      conn.on('error', (err) => console.error(`connection error: ${err.message}`));
      const ch = await conn.createConfirmChannel();
      ch.on('error', (err) => console.error(`channel error: ${err.message}`));
      await ch.assertQueue(queue, { durable: false, autoDelete: false });
      ch.sendToQueue(queue, Buffer.from('hello warren', 'utf8'), {
        contentType: 'text/plain',
        contentEncoding: 'utf-8',
        headers: { 'x-int': 42, 'x-str': 'abc', 'x-bool': true, 'x-nested': { k: 1 } },
        deliveryMode: 2,
        priority: 3,
        correlationId: 'corr-1',
        replyTo: 'reply.q',
        expiration: '60000',
        messageId: 'msg-1',
        timestamp: 1700000000,
        type: 'greeting',
        appId: 'warren-golden',
      });
      await ch.waitForConfirms();
      await ch.prefetch(10);
      let delivered;
      const received = new Promise((resolve) => {
        delivered = resolve;
      });
      const { consumerTag } = await ch.consume(
        queue,
        (msg) => {
          if (msg) delivered(msg);
        },
        { consumerTag: 'warren.golden.pc.ctag', noAck: false },
      );
      const msg = await received;
      if (msg.content.toString('utf8') !== 'hello warren') throw new Error('unexpected message body');
      ch.ack(msg);
      await ch.cancel(consumerTag);
      await ch.deleteQueue(queue);
      await ch.close();
      await conn.close();
    },
  },

  'channel-error': {
    description:
      'Channel 1 declares "warren.golden.ce" (durable false); channel 2 re-declares it durable true and the broker ' +
      'closes channel 2 with 406 PRECONDITION_FAILED (client answers channel.close-ok); channel 1 then deletes ' +
      'the queue and closes; connection.close.',
    async run(url, info) {
      const queue = 'warren.golden.ce';
      const conn = await connect(url);
      info.serverProperties = conn.connection.serverProperties;
      conn.on('error', (err) => console.error(`connection error: ${err.message}`));
      const ch1 = await conn.createChannel();
      ch1.on('error', (err) => console.error(`channel 1 error: ${err.message}`));
      await ch1.assertQueue(queue, { durable: false });

      const ch2 = await conn.createChannel();
      const ch2Closed = new Promise((resolve) => ch2.once('close', resolve));
      ch2.on('error', (err) => {
        info.channelError = err.message;
      });
      try {
        await ch2.assertQueue(queue, { durable: true });
        throw new Error('expected the broker to refuse the redeclaration');
      } catch (err) {
        if (err.code !== 406) throw err;
      }
      await ch2Closed;

      await ch1.deleteQueue(queue);
      await ch1.close();
      await conn.close();
    },
  },

  'large-body': {
    description:
      'queue.declare "warren.golden.lb"; basic.publish of a 300000-byte body (byte i = i % 251) which, with ' +
      'frameMax 131072, is sent as 3 body frames (131064 + 131064 + 37872); basic.get (no-ack) returns it ' +
      'as get-ok + header + 3 body frames; queue.delete; channel.close; connection.close.',
    async run(url, info) {
      const queue = 'warren.golden.lb';
      const body = Buffer.alloc(300000);
      for (let i = 0; i < body.length; i++) body[i] = i % 251;
      const conn = await connect(url);
      info.serverProperties = conn.connection.serverProperties;
      conn.on('error', (err) => console.error(`connection error: ${err.message}`));
      const ch = await conn.createChannel();
      ch.on('error', (err) => console.error(`channel error: ${err.message}`));
      await ch.assertQueue(queue);
      ch.sendToQueue(queue, body);
      const msg = await ch.get(queue, { noAck: true });
      if (!msg) throw new Error('basic.get returned get-empty; publish not yet routed');
      if (!msg.content.equals(body)) throw new Error('large body came back altered');
      await ch.deleteQueue(queue);
      await ch.close();
      await conn.close();
    },
  },
};

// ---------------------------------------------------------------------------------------------------------
// A small frame walker, used only to sanity-check and summarise what was recorded.

const METHOD_NAMES = {
  '10.10': 'connection.start', '10.11': 'connection.start-ok', '10.20': 'connection.secure',
  '10.21': 'connection.secure-ok', '10.30': 'connection.tune', '10.31': 'connection.tune-ok',
  '10.40': 'connection.open', '10.41': 'connection.open-ok', '10.50': 'connection.close',
  '10.51': 'connection.close-ok', '20.10': 'channel.open', '20.11': 'channel.open-ok',
  '20.40': 'channel.close', '20.41': 'channel.close-ok', '40.10': 'exchange.declare',
  '50.10': 'queue.declare', '50.11': 'queue.declare-ok', '50.40': 'queue.delete',
  '50.41': 'queue.delete-ok', '60.10': 'basic.qos', '60.11': 'basic.qos-ok', '60.20': 'basic.consume',
  '60.21': 'basic.consume-ok', '60.30': 'basic.cancel', '60.31': 'basic.cancel-ok', '60.40': 'basic.publish',
  '60.60': 'basic.deliver', '60.70': 'basic.get', '60.71': 'basic.get-ok', '60.72': 'basic.get-empty',
  '60.80': 'basic.ack', '60.120': 'basic.nack', '85.10': 'confirm.select', '85.11': 'confirm.select-ok',
};

function walkFrames(chunks, dir) {
  let buf = Buffer.concat(chunks.filter((c) => c.dir === dir).map((c) => Buffer.from(c.hex, 'hex')));
  const frames = [];
  if (dir === 'c2s') {
    const header = buf.subarray(0, 8);
    if (header.toString('hex') !== '414d515000000901') throw new Error(`c2s does not start with AMQP 0-9-1 header`);
    frames.push({ kind: 'protocol-header' });
    buf = buf.subarray(8);
  }
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < 8) throw new Error(`${dir}: ${buf.length - off} trailing bytes`);
    const type = buf[off];
    const channel = buf.readUInt16BE(off + 1);
    const size = buf.readUInt32BE(off + 3);
    const end = off + 7 + size;
    if (end >= buf.length || buf[end] !== 0xce) throw new Error(`${dir}: bad frame at offset ${off}`);
    const payload = buf.subarray(off + 7, end);
    const frame = { type, channel, size };
    if (type === 1) {
      const key = `${payload.readUInt16BE(0)}.${payload.readUInt16BE(2)}`;
      frame.kind = METHOD_NAMES[key] || `method ${key}`;
      frame.payload = payload;
    } else if (type === 2) {
      frame.kind = 'header';
      frame.bodySize = Number(payload.readBigUInt64BE(4));
    } else if (type === 3) {
      frame.kind = 'body';
    } else if (type === 8) {
      frame.kind = 'heartbeat';
    } else {
      frame.kind = `type ${type}`;
    }
    frames.push(frame);
    off = end + 1;
  }
  return frames;
}

function summarise(chunks) {
  const lines = [];
  for (const dir of ['c2s', 's2c']) {
    const frames = walkFrames(chunks, dir);
    lines.push(
      `  ${dir}: ` +
        frames
          .map((f) => {
            if (f.kind === 'protocol-header') return 'AMQP0091';
            let s = `${f.kind}@${f.channel}`;
            if (f.kind === 'body') s += `(${f.size})`;
            if (f.kind === 'header') s += `(${f.bodySize})`;
            return s;
          })
          .join(', '),
    );
    for (const f of frames) {
      if (f.kind === 'connection.tune' || f.kind === 'connection.tune-ok') {
        const p = f.payload;
        lines.push(
          `    ${f.kind}: channelMax=${p.readUInt16BE(4)} frameMax=${p.readUInt32BE(6)} heartbeat=${p.readUInt16BE(10)}`,
        );
      }
    }
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------------

async function record(name) {
  const scenario = scenarios[name];
  const proxy = await startProxy();
  const url = `amqp://guest:guest@127.0.0.1:${proxy.port}/?frameMax=131072&heartbeat=0`;
  const info = {};
  try {
    await scenario.run(url, info);
    await sleep(TRAILING_WAIT_MS);
  } finally {
    await proxy.stop();
  }
  if (proxy.connectionCount() !== 1) throw new Error(`${name}: expected 1 proxied connection, saw ${proxy.connectionCount()}`);

  const sp = info.serverProperties || {};
  const broker = sp.product && sp.version ? `${sp.product} ${sp.version}` : EXPECTED_BROKER;
  if (broker !== EXPECTED_BROKER) console.warn(`warning: broker reports itself as "${broker}", not "${EXPECTED_BROKER}"`);

  const transcript = {
    description: scenario.description,
    broker,
    recordedWith: 'scripts/record-transcript.mjs',
    chunks: proxy.chunks,
  };
  await mkdir(OUT_DIR, { recursive: true });
  const file = path.join(OUT_DIR, `${name}.json`);
  await writeFile(file, `${JSON.stringify(transcript, null, 2)}\n`);
  console.log(`${path.relative(ROOT, file)}: ${proxy.chunks.length} chunks`);
  console.log(summarise(proxy.chunks));
  if (info.channelError) console.log(`  channel error seen by amqplib: ${info.channelError}`);
}

const arg = process.argv[2] || 'all';
const names = arg === 'all' ? Object.keys(scenarios) : [arg];
for (const name of names) {
  if (!scenarios[name]) {
    console.error(`unknown scenario "${name}"; expected one of: ${Object.keys(scenarios).join(', ')}, all`);
    process.exit(2);
  }
}
for (const name of names) await record(name);
