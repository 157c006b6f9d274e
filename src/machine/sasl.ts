/**
 * SASL for connection.start-ok: choosing a mechanism from the broker's list and building its response.
 */
import { Writer } from "../codec/writer.ts";
import { encodeUtf8 } from "../codec/utf8.ts";
import type { SaslMechanism } from "./options.ts";

/**
 * Picks the mechanism: the one asked for if the broker offers it; otherwise PLAIN, then AMQPLAIN. Returns
 * undefined when there is no acceptable choice. EXTERNAL is never picked unasked: it authenticates with the
 * TLS client certificate, which the user must have meant to send.
 */
export function chooseMechanism(offered: readonly string[], wanted: SaslMechanism | undefined): SaslMechanism | undefined {
  if (wanted !== undefined) return offered.includes(wanted) ? wanted : undefined;
  if (offered.includes("PLAIN")) return "PLAIN";
  if (offered.includes("AMQPLAIN")) return "AMQPLAIN";
  return undefined;
}

/**
 * The start-ok response for a mechanism, in a buffer of its own (the caller zeroes it after use).
 * - PLAIN (RFC 4616): authzid NUL authcid NUL password.
 * - AMQPLAIN: the entries of a field table {LOGIN, PASSWORD} without the table's length prefix (RabbitMQ
 *   parses the response as bare table content).
 * - EXTERNAL: empty; the broker takes the identity from the client certificate.
 */
export function saslResponse(mechanism: SaslMechanism, username: string, password: string): Uint8Array {
  switch (mechanism) {
    case "PLAIN":
      return encodeUtf8(`\u0000${username}\u0000${password}`);
    case "AMQPLAIN": {
      // Sized for the worst case (3 bytes per UTF-16 unit) so the writer never grows and leaves no copy of
      // the password in an abandoned slab; the caller zeroes the result once it is encoded.
      const w = new Writer(64 + 3 * (username.length + password.length));
      w.shortString("LOGIN");
      w.u8(0x53); // 'S'
      w.longString(username);
      w.shortString("PASSWORD");
      w.u8(0x53);
      w.longString(password);
      return w.finish();
    }
    case "EXTERNAL":
      return new Uint8Array(0);
  }
}
