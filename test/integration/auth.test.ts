/**
 * SASL mechanisms against the main test broker (127.0.0.1:5672), which offers PLAIN and AMQPLAIN on its plain
 * AMQP port: AMQPLAIN logs in and is refused like PLAIN, and a mechanism the broker does not offer fails
 * before any credential is sent. EXTERNAL with a client certificate needs TLS: see tls.test.ts.
 */
import { describe, expect, it } from "vitest";
import { AccessRefusedError, type Connection, HandshakeError, UsageError } from "../../src/index.ts";
import { amqpUrl, rabbitmqctl, uniqueName, useConnectAttempts } from "../support/broker.ts";

const { open, rejection } = useConnectAttempts();

/** The main broker's URI with other credentials. */
function urlAs(user: string, password: string, query = ""): string {
  const url = new URL(amqpUrl(query));
  url.username = encodeURIComponent(user);
  url.password = encodeURIComponent(password);
  return url.href;
}

async function roundTrip(conn: Connection): Promise<void> {
  const ch = await conn.openChannel();
  const { queue } = await ch.queueDeclare("", { exclusive: true });
  await ch.confirmSelect();
  await ch.basicPublish("", queue, "hello via AMQPLAIN");
  const msg = await ch.basicGet(queue, { noAck: true });
  expect(msg?.bodyText()).toBe("hello via AMQPLAIN");
  await ch.close();
}

/** The mechanism the broker says a connection (found by its connection_name) logged in with. */
async function brokerMechanism(connectionName: string): Promise<string | undefined> {
  const out = await rabbitmqctl(["list_connections", "auth_mechanism", "client_properties", "--formatter", "json"]);
  const rows = JSON.parse(out.slice(out.indexOf("["))) as { auth_mechanism: string; client_properties: [string, string, unknown][] }[];
  return rows.find((r) => r.client_properties.some(([k, , v]) => k === "connection_name" && v === connectionName))?.auth_mechanism;
}

describe("AMQPLAIN", () => {
  it("logs in with auth_mechanism=AMQPLAIN and the broker records AMQPLAIN", async () => {
    const name = uniqueName("warren.auth.amqplain");
    const conn = await open(amqpUrl("auth_mechanism=AMQPLAIN"), { connectionName: name });
    await roundTrip(conn);
    expect(await brokerMechanism(name)).toBe("AMQPLAIN");
  });

  it("takes the mechanism from the options object, and from the URI in any case", async () => {
    await roundTrip(await open(amqpUrl(), { authMechanism: "AMQPLAIN" }));
    await roundTrip(await open(amqpUrl("auth_mechanism=amqplain")));
  });

  it("refuses a wrong password with AccessRefusedError (403), without echoing the password", async () => {
    const err = await rejection(urlAs("guest", "not-the-password", "auth_mechanism=AMQPLAIN"));
    expect(err).toBeInstanceOf(AccessRefusedError);
    expect((err as InstanceType<typeof AccessRefusedError>).replyCode).toBe(403);
    expect(err.message).toMatch(/ACCESS_REFUSED/);
    expect(err.message).not.toContain("not-the-password");
  });

  it("refuses an unknown user with AccessRefusedError", async () => {
    const err = await rejection(urlAs(uniqueName("nobody"), "x", "auth_mechanism=AMQPLAIN"));
    expect(err).toBeInstanceOf(AccessRefusedError);
  });

  it("encodes non-ASCII and long credentials so the broker can read them (refused as credentials, not as bad frames)", async () => {
    // AMQPLAIN's LOGIN and PASSWORD are long strings: byte lengths, not character counts, and no 255 limit.
    for (const password of ["pässwörd-✓-🐇", "p".repeat(300)]) {
      const err = await rejection(urlAs("güest", password, "auth_mechanism=AMQPLAIN"));
      expect(err).toBeInstanceOf(AccessRefusedError);
    }
  });
});

describe("PLAIN", () => {
  it("is the default and refuses a wrong password with AccessRefusedError", async () => {
    const name = uniqueName("warren.auth.plain");
    await open(amqpUrl(), { connectionName: name });
    expect(await brokerMechanism(name)).toBe("PLAIN");
    const err = await rejection(urlAs("guest", "not-the-password"));
    expect(err).toBeInstanceOf(AccessRefusedError);
  });
});

describe("a mechanism the broker does not offer", () => {
  it("fails with a HandshakeError that lists what the broker offers", async () => {
    // The plain AMQP port never offers EXTERNAL: it needs a TLS client certificate.
    const err = await rejection(amqpUrl("auth_mechanism=EXTERNAL"));
    expect(err).toBeInstanceOf(HandshakeError);
    expect(err.message).toMatch(/EXTERNAL is not offered by the broker/);
    expect(err.message).toMatch(/it offers .*\bPLAIN\b/);
    expect(err.message).toMatch(/it offers .*\bAMQPLAIN\b/);
  });

  it("rejects a mechanism warren does not implement before connecting, with UsageError", async () => {
    const err = await rejection(amqpUrl("auth_mechanism=SCRAM-SHA-256"));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toMatch(/PLAIN, AMQPLAIN, EXTERNAL/);
  });
});
