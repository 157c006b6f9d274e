/**
 * The errors the client rejects with: one class per family, each with a stable `code`, and the AMQP reply
 * code, text, class id and method id where the broker gave them.
 *
 * Recognise them with `instanceof` or, across duplicate installs of warren, with {@link isWarrenError} and
 * `err.code`.
 */
import type { CloseReason } from "../machine/events.ts";

const BRAND = Symbol.for("warren.error");

export interface ErrorDetails {
  replyCode?: number;
  replyText?: string;
  classId?: number;
  methodId?: number;
  cause?: unknown;
}

export class WarrenError extends Error {
  override name = "WarrenError";
  /** A stable identifier of the kind of error, e.g. "NOT_FOUND", "CONNECTION_CLOSED". */
  readonly code: string;
  /** The AMQP reply code (0 when the broker gave none). */
  readonly replyCode: number;
  readonly replyText: string;
  /** The class and method that caused it (0 when unknown). */
  readonly classId: number;
  readonly methodId: number;
  constructor(code: string, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.replyCode = details.replyCode ?? 0;
    this.replyText = details.replyText ?? "";
    this.classId = details.classId ?? 0;
    this.methodId = details.methodId ?? 0;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/** True for any warren error, even one from another copy of the library. */
export function isWarrenError(e: unknown): e is WarrenError {
  return typeof e === "object" && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
}

function define(name: string, code: string) {
  const C = class extends WarrenError {
    constructor(message: string, details: ErrorDetails = {}) {
      super(code, message, details);
      this.name = name;
    }
  };
  Object.defineProperty(C, "name", { value: name });
  return C;
}

/** The connection is closed (by the application, the broker or the network). */
export const ConnectionClosedError = define("ConnectionClosedError", "CONNECTION_CLOSED");
/** The channel is closed. */
export const ChannelClosedError = define("ChannelClosedError", "CHANNEL_CLOSED");
/** 403: bad credentials, or no permission for the operation. */
export const AccessRefusedError = define("AccessRefusedError", "ACCESS_REFUSED");
/** 404: the exchange or queue does not exist. */
export const NotFoundError = define("NotFoundError", "NOT_FOUND");
/** 405: the queue is exclusive to another connection. */
export const ResourceLockedError = define("ResourceLockedError", "RESOURCE_LOCKED");
/** 406: e.g. redeclaring a queue with different arguments, acking an unknown delivery tag. */
export const PreconditionFailedError = define("PreconditionFailedError", "PRECONDITION_FAILED");
/** 311: a message was larger than allowed. */
export const ContentTooLargeError = define("ContentTooLargeError", "CONTENT_TOO_LARGE");
/** 530: e.g. the virtual host does not exist or is not allowed. */
export const NotAllowedError = define("NotAllowedError", "NOT_ALLOWED");
/** 320: the broker closed the connection (an operator, a shutdown). */
export const ConnectionForcedError = define("ConnectionForcedError", "CONNECTION_FORCED");
/** 501–505, 540, 541: a protocol error between client and broker. */
export const ProtocolError = define("ProtocolError", "PROTOCOL_ERROR");
/** 506: the broker ran out of a resource. */
export const ResourceError = define("ResourceError", "RESOURCE_ERROR");
/** The broker nacked a publish in confirm mode. */
export const PublishNackedError = define("PublishNackedError", "PUBLISH_NACKED");
/** A mandatory publish could not be routed and came back (basic.return). */
export const MessageReturnedError = define("MessageReturnedError", "MESSAGE_RETURNED");
/** Connecting (TCP, TLS, AMQP handshake) took longer than connectionTimeout. */
export const ConnectTimeoutError = define("ConnectTimeoutError", "CONNECT_TIMEOUT");
/** The network could not reach the broker (refused, unreachable, reset, TLS failure). */
export const TransportError = define("TransportError", "TRANSPORT_ERROR");
/** An authentication mechanism problem, or a peer that does not speak AMQP 0-9-1. */
export const HandshakeError = define("HandshakeError", "HANDSHAKE_ERROR");
/** An operation was aborted through its AbortSignal. */
export const AbortError = define("AbortError", "ABORTED");
/** The application called something wrongly (bad argument, closed channel). */
export const UsageError = define("UsageError", "USAGE_ERROR");
/**
 * A confirm-mode publish whose outcome was lost with the connection: the broker may or may not have the
 * message. Never a nack and never "not sent" — the application decides whether to publish it again.
 */
export const OutcomeUnknownError = define("OutcomeUnknownError", "OUTCOME_UNKNOWN");
/**
 * Not sent: the connection was recovering and did not come back within the publish timeout (or the wait was
 * aborted, or too many publishes were already waiting). Safe to retry — the broker never saw it.
 */
export const NotConnectedError = define("NotConnectedError", "NOT_CONNECTED");

const BY_REPLY_CODE: Record<number, ReturnType<typeof define>> = {
  311: ContentTooLargeError,
  320: ConnectionForcedError,
  403: AccessRefusedError,
  404: NotFoundError,
  405: ResourceLockedError,
  406: PreconditionFailedError,
  501: ProtocolError,
  502: ProtocolError,
  503: ProtocolError,
  504: ProtocolError,
  505: ProtocolError,
  506: ResourceError,
  530: NotAllowedError,
  540: ProtocolError,
  541: ProtocolError,
};

/**
 * The error for something pending on a channel or connection that closed for `reason`. A close with a
 * telling reply code (404, 406, 403, …) gives that family; a normal close gives Channel/ConnectionClosedError.
 */
export function errorFromClose(scope: "channel" | "connection", reason: CloseReason): WarrenError {
  const details: ErrorDetails = { replyCode: reason.replyCode, replyText: reason.replyText, classId: reason.classId, methodId: reason.methodId };
  const who = reason.initiator === "broker" ? "the broker" : reason.initiator === "client" ? "the application" : reason.initiator === "protocol" ? "warren (protocol error)" : "the network";
  const code = reason.replyCode ? ` ${reason.replyCode}` : "";
  const message = `${scope === "channel" ? "Channel" : "Connection"} closed by ${who}${code}: ${reason.replyText || "no reason given"}`;
  const Family = BY_REPLY_CODE[reason.replyCode];
  if (Family && reason.replyCode !== 200) return new Family(message, details);
  if (reason.initiator === "transport" && scope === "connection") return new TransportError(message, details);
  return scope === "channel" ? new ChannelClosedError(message, details) : new ConnectionClosedError(message, details);
}

/**
 * An error (a socket's, usually) as one line: its code (or its class, when it is not a plain Error) before its
 * message, unless the message names it already — Node's do ("connect ECONNREFUSED 127.0.0.1:1"), Deno's and
 * Bun's do not ("Connection refused (os error 111)").
 * @example describeError(Object.assign(new Error("Connection refused"), { code: "ECONNREFUSED" })); // "ECONNREFUSED: Connection refused"
 */
export function describeError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = (e as { code?: unknown }).code;
  const tag = typeof code === "string" && code !== "" ? code : e.name !== "Error" ? e.name : "";
  return tag !== "" && !e.message.includes(tag) ? `${tag}: ${e.message}` : e.message;
}

/**
 * What a connection's end is reported as. Errors during the handshake get names that say what to fix, and a
 * transport failure carries the socket's own error (a TLS alert, a reset), which says more than the
 * machine's "the transport closed".
 */
export function connectionError(reason: CloseReason, at: { where: string; handshaking: boolean; cause: unknown }): WarrenError {
  if (at.handshaking && reason.initiator === "protocol" && reason.replyCode === 0) {
    return new HandshakeError(`Could not connect to ${at.where}: ${reason.replyText}`);
  }
  if (at.cause !== undefined && reason.initiator === "transport") {
    if (at.cause instanceof TransportError) return at.cause;
    const text = at.handshaking ? `Could not connect to ${at.where}: ${describeError(at.cause)}` : `Connection to ${at.where} lost: ${describeError(at.cause)}`;
    return new TransportError(text, { cause: at.cause });
  }
  return errorFromClose("connection", reason);
}

/** Errors no other host and no later attempt can fix: bad credentials, an unknown vhost, a handshake or usage problem, an abort. */
export function isPermanentConnectError(e: unknown): boolean {
  return e instanceof AccessRefusedError || e instanceof NotAllowedError || e instanceof HandshakeError || e instanceof UsageError || e instanceof AbortError;
}
