/**
 * TLS against a real RabbitMQ: server verification (CA, host name, IP SAN, verification off only when asked),
 * SNI, client certificates and SASL EXTERNAL.
 *
 * The broker is a second RabbitMQ node with a TLS listener on 127.0.0.1:5671 and test certificates made with
 * openssl (test/support/tls-broker.ts); beforeAll starts it, or reuses one that already runs with the same
 * certificates, and afterAll stops it unless another test run still uses it. The SNI tests use a tiny
 * node:tls server instead, because only the server side of a handshake can see the name the client sent.
 */
import { randomBytes } from "node:crypto";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AccessRefusedError,
  type Connection,
  HandshakeError,
  PreconditionFailedError,
  TransportError,
} from "../../src/index.ts";
import { useConnectAttempts } from "../support/broker.ts";
import { type Certificates, startTlsBroker, stopTlsBroker, TLS_BROKER, type TlsBroker } from "../support/tls-broker.ts";

let broker: TlsBroker;
let certs: Certificates;

beforeAll(async () => {
  broker = await startTlsBroker();
  certs = broker.certs;
}, 180_000);

afterAll(() => stopTlsBroker(), 60_000);

const AMQPS = `amqps://guest:guest@localhost:${TLS_BROKER.tlsPort}/`;
const AMQPS_IP = `amqps://guest:guest@127.0.0.1:${TLS_BROKER.tlsPort}/`;
const EXTERNAL = `amqps://localhost:${TLS_BROKER.tlsPort}/?auth_mechanism=EXTERNAL`;

const { open, rejection } = useConnectAttempts();

/**
 * Declares a queue, publishes to it with a confirm, and gets the message back. With `userId`, the message
 * carries that user-id property, which RabbitMQ accepts only when it names the connection's own user.
 */
async function roundTrip(conn: Connection, userId?: string): Promise<string> {
  const ch = await conn.openChannel();
  const { queue } = await ch.queueDeclare("", { exclusive: true });
  await ch.confirmSelect();
  const body = `over TLS ${queue}`;
  await ch.basicPublish("", queue, body, userId === undefined ? {} : { userId });
  const msg = await ch.basicGet(queue, { noAck: true });
  expect(msg?.bodyText()).toBe(body);
  if (userId !== undefined) expect(msg?.properties.userId).toBe(userId);
  await ch.close();
  return body;
}

/** `bytes` copied into the middle of a larger buffer: a view whose byteOffset is not 0. */
function offsetView(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  const big = new Uint8Array(bytes.length + 64).fill(0x2d);
  big.set(bytes, 32);
  return big.subarray(32, 32 + bytes.length);
}

/**
 * OpenSSL's verdicts on a chain that ends in a CA the client does not trust. RabbitMQ sends the test CA
 * along with its certificate, so Node reports SELF_SIGNED_CERT_IN_CHAIN; a server that sent its certificate
 * alone would get UNABLE_TO_VERIFY_LEAF_SIGNATURE.
 */
const UNTRUSTED = /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/;

describe("server verification", () => {
  it("connects to amqps://localhost with the test CA and runs declare, publish and get", async () => {
    const conn = await open(AMQPS, { tls: { ca: certs.ca } });
    await roundTrip(conn);
  });

  it("verifies an IP host against the certificate's IP address SAN", async () => {
    const conn = await open(AMQPS_IP, { tls: { ca: certs.ca } });
    await roundTrip(conn);
  });

  it("takes ca as bytes (a view with a byteOffset) and as a list of CAs", async () => {
    const conn = await open(AMQPS, { tls: { ca: [certs.otherCa, offsetView(certs.ca)] } });
    await roundTrip(conn);
  });

  it("rejects a certificate that does not name tls.servername, with a TransportError naming the name", async () => {
    const err = await rejection(AMQPS_IP, { tls: { ca: certs.ca, servername: "wrong.example" } });
    expect(err).toBeInstanceOf(TransportError);
    expect(err.message).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
    expect(err.message).toMatch(/wrong\.example/);
    expect(err.message).toMatch(/altnames/);
    expect(err.message).toContain(`127.0.0.1:${TLS_BROKER.tlsPort}`);
  });

  it("rejects a server certificate signed by a CA it was not given", async () => {
    const err = await rejection(AMQPS, { tls: { ca: certs.otherCa } });
    expect(err).toBeInstanceOf(TransportError);
    expect(err.message).toMatch(UNTRUSTED);
  });

  it("verifies by default: without tls.ca the runtime's trust store does not know the test CA", async () => {
    const err = await rejection(AMQPS);
    expect(err).toBeInstanceOf(TransportError);
    expect(err.message).toMatch(UNTRUSTED);
    const alsoWithVerifyTrue = await rejection(AMQPS, { tls: { verify: true } });
    expect(alsoWithVerifyTrue).toBeInstanceOf(TransportError);
  });

  it("skips verification only with an explicit tls.verify = false", async () => {
    const conn = await open(AMQPS, { tls: { verify: false } });
    await roundTrip(conn);
    const wrongName = await open(AMQPS_IP, { tls: { verify: false, servername: "wrong.example", ca: certs.otherCa } });
    await roundTrip(wrongName);
  });

  it("runs TLS over a unix socket when socketPath and amqps are both given", async () => {
    const path = join(tmpdir(), `warren-tls-${process.pid}-${Date.now() % 1e6}.sock`);
    const proxy = net.createServer((client) => {
      const upstream = net.connect(TLS_BROKER.tlsPort, "127.0.0.1");
      client.pipe(upstream).pipe(client);
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(path, resolve));
    let conn: Connection | undefined;
    try {
      // The host is not dialled, but still names the server certificate must match.
      conn = await open(`amqps://guest:guest@localhost/`, { socketPath: path, tls: { ca: certs.ca } });
      await roundTrip(conn);
      const err = await rejection(`amqps://guest:guest@localhost/`, { socketPath: path, tls: { ca: certs.ca, servername: "wrong.example" } });
      expect(err).toBeInstanceOf(TransportError);
      expect(err.message).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
    } finally {
      await conn?.close().catch(() => undefined); // before the proxy closes, so close-ok can pass through it
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });
});

describe("SNI", () => {
  /** A TLS server with the broker's certificate that records the SNI name of each handshake, then hangs up. */
  async function sniServer(): Promise<{ port: number; names: (string | false | null | undefined)[]; close(): Promise<void> }> {
    const names: (string | false | null | undefined)[] = [];
    const server = tls.createServer({ cert: certs.serverCert, key: certs.serverKey }, (socket) => {
      names.push(socket.servername);
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return {
      port: (server.address() as net.AddressInfo).port,
      names,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  }

  it("sends the host name as SNI", async () => {
    const server = await sniServer();
    try {
      // The fake server hangs up after the handshake, so the connect fails; only the name matters here.
      await rejection(`amqps://localhost:${server.port}/`, { tls: { ca: certs.ca }, connectionTimeout: 5000 });
      expect(server.names).toEqual(["localhost"]);
    } finally {
      await server.close();
    }
  });

  it("sends no SNI for an IP address", async () => {
    const server = await sniServer();
    try {
      await rejection(`amqps://127.0.0.1:${server.port}/`, { tls: { ca: certs.ca }, connectionTimeout: 5000 });
      expect(server.names).toHaveLength(1);
      expect(server.names[0] || undefined).toBeUndefined();
    } finally {
      await server.close();
    }
  });

  it("sends tls.servername when given, even to an IP address", async () => {
    const server = await sniServer();
    try {
      await rejection(`amqps://127.0.0.1:${server.port}/`, { tls: { ca: certs.ca, servername: "localhost" }, connectionTimeout: 5000 });
      expect(server.names).toEqual(["localhost"]);
    } finally {
      await server.close();
    }
  });
});

describe("client certificates and EXTERNAL", () => {
  it("logs in as the certificate's common name with auth_mechanism=EXTERNAL", async () => {
    const connectionName = `warren tls test: EXTERNAL ${randomBytes(5).toString("hex")}`;
    const conn = await open(EXTERNAL, { tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey }, connectionName });
    // RabbitMQ accepts a user-id property only when it is the connection's user.
    await roundTrip(conn, TLS_BROKER.externalUser);
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    await expect(ch.basicPublish("", queue, "impostor", { userId: "guest" })).rejects.toBeInstanceOf(PreconditionFailedError);
    // And the broker lists the connection under that user.
    const rows = await broker.ctl(["list_connections", "user", "client_properties", "--formatter", "json"]);
    const users = (JSON.parse(rows.slice(rows.indexOf("["))) as { user: string; client_properties: [string, string, unknown][] }[])
      .filter((r) => r.client_properties.some(([k, , v]) => k === "connection_name" && v === connectionName))
      .map((r) => r.user);
    expect(users).toEqual([TLS_BROKER.externalUser]);
  });

  it("takes the certificate and key as bytes", async () => {
    const conn = await open(EXTERNAL, { tls: { ca: offsetView(certs.ca), cert: offsetView(certs.clientCert), key: offsetView(certs.clientKey) } });
    await roundTrip(conn, TLS_BROKER.externalUser);
  });

  it("opens an encrypted key with tls.passphrase", async () => {
    const conn = await open(EXTERNAL, {
      tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKeyEncrypted, passphrase: certs.clientKeyPassphrase },
    });
    await roundTrip(conn, TLS_BROKER.externalUser);
  });

  it("does not pick EXTERNAL unasked: with a client certificate and no auth_mechanism it logs in with PLAIN", async () => {
    const conn = await open(AMQPS, { tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey } });
    await roundTrip(conn, "guest");
  });

  it("is refused (403) when EXTERNAL is asked for without a client certificate", async () => {
    // RabbitMQ 3.10 offers EXTERNAL on every TLS connection, then refuses the login when no certificate came.
    const err = await rejection(EXTERNAL, { tls: { ca: certs.ca } });
    expect(err).toBeInstanceOf(AccessRefusedError);
    expect(err.message).toMatch(/403/);
    expect(err.message).toMatch(/EXTERNAL/);
  });

  it("is not offered EXTERNAL on the node's plain AMQP port: a HandshakeError listing what is offered", async () => {
    const err = await rejection(`amqp://localhost:${TLS_BROKER.port}/?auth_mechanism=EXTERNAL`);
    expect(err).toBeInstanceOf(HandshakeError);
    expect(err.message).toMatch(/EXTERNAL is not offered/);
    expect(err.message).toMatch(/AMQPLAIN/);
    expect(err.message).toMatch(/PLAIN/);
  });

  it("is refused by the broker with a client certificate from a CA the broker does not trust", async () => {
    // Under TLS 1.3 the client's handshake is complete before the server checks its certificate: the alert
    // arrives as the first answer to the AMQP protocol header, so it surfaces as the transport's close cause.
    const err = await rejection(EXTERNAL, { tls: { ca: certs.ca, cert: certs.otherClientCert, key: certs.otherClientKey } });
    expect(err).toBeInstanceOf(TransportError);
    expect(err.message).toMatch(/ERR_SSL_TLSV1_ALERT_UNKNOWN_CA|unknown ca/i);
  });

  it("refuses EXTERNAL for a trusted certificate whose common name is no user: AccessRefusedError", async () => {
    const err = await rejection(EXTERNAL, { tls: { ca: certs.ca, cert: certs.strangerCert, key: certs.strangerKey } });
    expect(err).toBeInstanceOf(AccessRefusedError);
    expect(err.message).toMatch(/403/);
  });
});

describe("non-ASCII credentials", () => {
  // AMQPLAIN sends LOGIN and PASSWORD as long strings (byte lengths, no 255-byte limit), PLAIN as one UTF-8
  // SASL message; a character count in place of a byte count would be refused here.
  for (const mechanism of ["PLAIN", "AMQPLAIN"] as const) {
    it(`logs in with ${mechanism} over plain AMQP and over TLS`, async () => {
      const credentials = { username: TLS_BROKER.unicodeUser, password: TLS_BROKER.unicodePassword, authMechanism: mechanism };
      await roundTrip(await open(`amqp://127.0.0.1:${TLS_BROKER.port}/`, credentials), TLS_BROKER.unicodeUser);
      await roundTrip(await open(AMQPS, { ...credentials, tls: { ca: certs.ca } }), TLS_BROKER.unicodeUser);
    });
  }

  it("refuses a wrong non-ASCII password with AccessRefusedError", async () => {
    const err = await rejection(`amqp://127.0.0.1:${TLS_BROKER.port}/`, { username: TLS_BROKER.unicodeUser, password: `${TLS_BROKER.unicodePassword}!`, authMechanism: "AMQPLAIN" });
    expect(err).toBeInstanceOf(AccessRefusedError);
  });
});
