/**
 * The connection handshake (spec 2.2.4) as an explicit table: in each state, the one method the broker may
 * send next. Anything else during the handshake is 505 unexpected frame (connection.close, accepted in every
 * state, is handled by the facade before this table is consulted).
 *
 *   awaitingStart   connection.start  → start-ok (SASL response)                → awaitingTune
 *   awaitingTune    connection.secure → secure-ok (SASL response)               → awaitingTune
 *                   connection.tune   → tune-ok + open                          → awaitingOpenOk
 *   awaitingOpenOk  connection.open-ok → handshakeDone                          → (open: the facade's)
 *
 * Secrets: the password lives in an ES private field (invisible to util.inspect and JSON) until open-ok.
 * Frames carrying the SASL response are written through `writeSecret`, which keeps them out of the
 * long-lived output slab (see transmit.ts), and the response bytes are zeroed once encoded.
 */
import type { FieldTable } from "../codec/amqp/field-table.ts";
import type { Method, MethodName } from "../codec/amqp/methods.generated.ts";
import { type MachineCore, reason, REPLY } from "./core.ts";
import { negotiateTune, type SaslMechanism, type Tuned } from "./options.ts";
import { chooseMechanism, saslResponse } from "./sasl.ts";

/** Announced to the broker as client property `version`. */
export const WARREN_VERSION = "0.1.0";

/** warren's capabilities, announced in connection.start-ok (RabbitMQ's client capabilities). */
const CAPABILITIES: FieldTable = {
  publisher_confirms: true,
  exchange_exchange_bindings: true,
  "basic.nack": true,
  consumer_cancel_notify: true,
  "connection.blocked": true,
  authentication_failure_close: true,
  per_consumer_qos: true,
  direct_reply_to: true,
};

export type HandshakeState = "awaitingStart" | "awaitingTune" | "awaitingOpenOk";

/** What the broker may send in each state. */
const ACCEPTS: { readonly [S in HandshakeState]: readonly MethodName[] } = {
  awaitingStart: ["connection.start"],
  awaitingTune: ["connection.secure", "connection.tune"],
  awaitingOpenOk: ["connection.open-ok"],
};

/** What the handshake needs from the facade beyond the core. */
export interface HandshakeHost extends MachineCore {
  /** Writes a method frame that carries a secret, kept out of the reusable output buffer. */
  writeSecret(m: Method): void;
  /** Tuning is agreed: apply it (frame_max, channel_max, heartbeat). */
  tuned(t: Tuned): void;
  /** connection.open-ok arrived. */
  opened(serverProperties: FieldTable): void;
}

export class Handshake {
  state: HandshakeState = "awaitingStart";
  #password: string;
  private readonly host: HandshakeHost;
  private mechanism: SaslMechanism = "PLAIN";
  private serverProperties: FieldTable = {};

  constructor(host: HandshakeHost, password: string) {
    this.host = host;
    this.#password = password;
  }

  /** A method on channel 0 before the connection is open (connection.close excepted). */
  handle(m: Method): void {
    if (!ACCEPTS[this.state].includes(m.name)) {
      this.host.protocolError(REPLY.UNEXPECTED_FRAME, `unexpected ${m.name} (connection ${this.state})`, m);
      return;
    }
    switch (m.name) {
      case "connection.start":
        this.serverProperties = m.serverProperties;
        this.onStart(m.versionMajor, m.versionMinor, m.mechanisms);
        return;
      case "connection.secure":
        this.writeResponse((response) => ({ name: "connection.secure-ok", classId: 10, methodId: 21, response }));
        return;
      case "connection.tune":
        this.onTune(m.channelMax, m.frameMax, m.heartbeat);
        return;
      case "connection.open-ok":
        this.#password = ""; // not needed any more
        this.host.opened(this.serverProperties);
        return;
    }
  }

  /** Why the transport ending now, in this state, most likely happened. */
  endedText(): string {
    if (this.state === "awaitingStart") return "connection closed by the peer before the AMQP handshake (is it an AMQP 0-9-1 broker?)";
    if (this.state === "awaitingTune") return "connection closed by the broker during authentication (wrong credentials or mechanism?)";
    return "connection closed by the broker while opening the virtual host";
  }

  /** The handshake is over (done or failed): drop the password. */
  forget(): void {
    this.#password = "";
  }

  private onStart(major: number, minor: number, mechanisms: Uint8Array): void {
    if (major !== 0 || minor !== 9) {
      this.host.abort(0, reason("protocol", 0, `the broker speaks AMQP ${major}-${minor}, not 0-9`));
      return;
    }
    const offered = new TextDecoder().decode(mechanisms).split(" ").filter(Boolean);
    const wanted = this.host.options.mechanism;
    const mechanism = chooseMechanism(offered, wanted);
    if (mechanism === undefined) {
      const text = `authentication mechanism ${wanted ?? "PLAIN or AMQPLAIN"} is not offered by the broker (it offers ${offered.join(", ") || "none"})`;
      this.host.abort(0, reason("protocol", 0, text));
      return;
    }
    this.mechanism = mechanism;
    const clientProperties = { product: "warren", version: WARREN_VERSION, ...this.host.options.clientProperties, capabilities: CAPABILITIES };
    this.writeResponse((response) => ({ name: "connection.start-ok", classId: 10, methodId: 11, clientProperties, mechanism, response, locale: "en_US" }));
    this.state = "awaitingTune";
  }

  /** Builds the SASL response, writes the method carrying it as a secret, then zeroes the response bytes. */
  private writeResponse(build: (response: Uint8Array) => Method): void {
    const response = saslResponse(this.mechanism, this.host.options.username, this.#password);
    try {
      this.host.writeSecret(build(response));
    } finally {
      response.fill(0);
    }
  }

  private onTune(channelMax: number, frameMax: number, heartbeat: number): void {
    const tuned = negotiateTune(this.host.options, { channelMax, frameMax, heartbeat });
    if (typeof tuned === "string") {
      // Nothing can be sent within such frames: fail at once as a handshake failure (replyCode 0), telling the
      // broker why, instead of waiting out a close handshake that reads like a permission problem.
      this.host.abort(REPLY.COMMAND_INVALID, reason("protocol", 0, tuned, 10, 30));
      return;
    }
    this.host.tuned(tuned);
    this.host.writeMethod(0, { name: "connection.tune-ok", classId: 10, methodId: 31, ...tuned });
    this.host.writeMethod(0, { name: "connection.open", classId: 10, methodId: 40, virtualHost: this.host.options.vhost });
    this.state = "awaitingOpenOk";
  }
}
