/**
 * What the machine reports through `pollEvent()`: a closed, discriminated union.
 *
 * Settlement rules the tests hold the machine to:
 * - every request id returned by `openChannel`, `call`, `closeChannel` or `updateSecret` is settled by
 *   exactly one `reply` or `requestFailed` event;
 * - every publish sequence number returned by `publish` on a channel in confirm mode is settled by exactly one
 *   `publishConfirmed` or `publishFailed` event;
 * - `connectionClosed` is the last event, emitted once; every request and publish still pending is failed
 *   before it.
 *
 * Close scope: `requestFailed`, `publishFailed` and `channelClosed` say what ended (`scope`): "channel" when
 * the channel closed on its own (channel.close from either side, a 311 for an oversize message) while the
 * connection lived on; "connection" when the connection ending is what failed them. It is decided when the
 * event is emitted, so a channel.close 404 and a connection.close 320 in one read give the channel's
 * request scope "channel" (404) and everything else scope "connection" (320).
 */
import type { BasicProperties } from "../codec/amqp/properties.ts";
import type { FieldTable } from "../codec/amqp/field-table.ts";
import type { Int64 } from "../codec/parsers.ts";
import type { Method } from "../codec/amqp/methods.generated.ts";

/** Who or what ended a channel or a connection. */
export type CloseInitiator =
  /** The application asked for it. */
  | "client"
  /** The broker sent channel.close / connection.close. */
  | "broker"
  /** The machine closed it because the broker broke the protocol (or sent content over the size limit). */
  | "protocol"
  /** The transport ended (end of stream) or the peer stopped answering (heartbeat, close timeout). */
  | "transport";

/**
 * Why a channel or connection closed. `replyCode`/`replyText` are the AMQP ones where a close method carried
 * them; `classId`/`methodId` name the method that caused it (0 when none).
 */
export interface CloseReason {
  readonly initiator: CloseInitiator;
  readonly replyCode: number;
  readonly replyText: string;
  readonly classId: number;
  readonly methodId: number;
}

/**
 * What ended: a channel on its own, or the whole connection.
 * @example if (e.type === "requestFailed" && e.scope === "connection") reconnect();
 */
export type CloseScope = "channel" | "connection";

/** A message's content as it arrived (properties + body): a delivery, a get-ok or a return. */
export interface Content {
  readonly properties: BasicProperties;
  readonly body: Uint8Array;
}

/** The connection is open: handshake and tuning are done. */
export interface HandshakeDoneEvent {
  readonly type: "handshakeDone";
  readonly serverProperties: FieldTable;
  readonly channelMax: number;
  readonly frameMax: number;
  /** Seconds; 0 when heartbeats are off. */
  readonly heartbeat: number;
}

/** The answer to a request. `message` is set for basic.get-ok. `method` is undefined for no-wait sends. */
export interface ReplyEvent {
  readonly type: "reply";
  readonly channel: number;
  readonly requestId: number;
  readonly method: Method;
  readonly message: Content | undefined;
}

/** A request that will get no reply: its channel or connection closed first. */
export interface RequestFailedEvent {
  readonly type: "requestFailed";
  readonly channel: number;
  readonly requestId: number;
  readonly reason: CloseReason;
  readonly scope: CloseScope;
}

/** A message for a consumer. */
export interface DeliveryEvent {
  readonly type: "delivery";
  readonly channel: number;
  readonly consumerTag: string;
  readonly deliveryTag: Int64;
  readonly redelivered: boolean;
  readonly exchange: string;
  readonly routingKey: string;
  readonly message: Content;
}

/**
 * A mandatory (or immediate) publish the broker could not route. In confirm mode `publishSeq` is the
 * sequence number of the publish it belongs to — the earliest unconfirmed, not yet returned mandatory publish
 * to the same exchange and routing key — and the `publishConfirmed` for that number follows with `returned`.
 */
export interface ReturnEvent {
  readonly type: "return";
  readonly channel: number;
  readonly replyCode: number;
  readonly replyText: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly message: Content;
  readonly publishSeq: number | undefined;
}

/** The broker acked (`ack: true`) or nacked a publish in confirm mode. */
export interface PublishConfirmedEvent {
  readonly type: "publishConfirmed";
  readonly channel: number;
  readonly seq: number;
  readonly ack: boolean;
  /** Set when a basic.return for this publish came before its ack. */
  readonly returned: ReturnEvent | undefined;
}

/** A publish in confirm mode that will never be confirmed: its channel or connection closed first. */
export interface PublishFailedEvent {
  readonly type: "publishFailed";
  readonly channel: number;
  readonly seq: number;
  readonly reason: CloseReason;
  readonly scope: CloseScope;
}

/** The broker cancelled a consumer (its queue was deleted, or it failed over). */
export interface ConsumerCancelledEvent {
  readonly type: "consumerCancelled";
  readonly channel: number;
  readonly consumerTag: string;
}

/** The broker asked to pause (false) or resume (true) publishing on a channel (channel.flow). */
export interface ChannelFlowEvent {
  readonly type: "channelFlow";
  readonly channel: number;
  readonly active: boolean;
}

/** A channel closed. Its id may be reused by a later `openChannel`. */
export interface ChannelClosedEvent {
  readonly type: "channelClosed";
  readonly channel: number;
  readonly reason: CloseReason;
  readonly scope: CloseScope;
}

/** The broker stopped (connection.blocked) or resumed (connection.unblocked) reading from publishers. */
export interface BlockedEvent {
  readonly type: "blocked";
  readonly reason: string;
}
export interface UnblockedEvent {
  readonly type: "unblocked";
}

/** The connection is over. The last event; the transport may be closed once transmits are drained. */
export interface ConnectionClosedEvent {
  readonly type: "connectionClosed";
  readonly reason: CloseReason;
}

export type MachineEvent =
  | HandshakeDoneEvent
  | ReplyEvent
  | RequestFailedEvent
  | DeliveryEvent
  | ReturnEvent
  | PublishConfirmedEvent
  | PublishFailedEvent
  | ConsumerCancelledEvent
  | ChannelFlowEvent
  | ChannelClosedEvent
  | BlockedEvent
  | UnblockedEvent
  | ConnectionClosedEvent;
