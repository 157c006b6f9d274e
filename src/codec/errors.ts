/**
 * The one error the decoders throw.
 *
 * Every failure to decode bytes — a bad frame-end octet, a string running past its frame, an unknown field
 * type — surfaces as a `DecodeError` with a stable `code` and the AMQP reply code a connection close should
 * carry for it (501 frame error, 502 syntax error, …). Nothing else may escape a decoder: the fuzz targets
 * assert exactly that.
 *
 * "Not enough bytes yet" is not an error; the streaming envelope reports it as {@link Incomplete}.
 */

/** Stable codes for {@link DecodeError}. */
export const DecodeErrorCode = {
  /** A frame did not end with the frame-end octet (0xCE). */
  FRAME_END: "FRAME_END",
  /** A frame declared a size above the negotiated frame_max. */
  FRAME_TOO_LARGE: "FRAME_TOO_LARGE",
  /** The frame type octet is none of method, header, body, heartbeat. */
  FRAME_TYPE: "FRAME_TYPE",
  /** A frame is malformed in a way other than the above (e.g. a heartbeat with a payload). */
  FRAME_INVALID: "FRAME_INVALID",
  /** The payload ended before its fields did. */
  TRUNCATED: "TRUNCATED",
  /** The payload had bytes left after its last field. */
  TRAILING_BYTES: "TRAILING_BYTES",
  /** A short string or key was not valid UTF-8. */
  BAD_UTF8: "BAD_UTF8",
  /** A field table or array held a type code RabbitMQ does not define. */
  FIELD_TYPE: "FIELD_TYPE",
  /** Tables or arrays nested deeper than the cap. */
  NESTING: "NESTING",
  /** A field held a value out of its domain (e.g. property flags with unknown bits). */
  BAD_VALUE: "BAD_VALUE",
  /** A method frame named a class/method pair the spec does not define. */
  UNKNOWN_METHOD: "UNKNOWN_METHOD",
} as const;
export type DecodeErrorCode = (typeof DecodeErrorCode)[keyof typeof DecodeErrorCode];

/** AMQP reply codes a decode failure maps to (spec constants frame-error, syntax-error, not-implemented). */
const REPLY_CODE: Record<DecodeErrorCode, number> = {
  FRAME_END: 501,
  FRAME_TOO_LARGE: 501,
  FRAME_TYPE: 501,
  FRAME_INVALID: 501,
  TRUNCATED: 501,
  TRAILING_BYTES: 501,
  BAD_UTF8: 502,
  FIELD_TYPE: 502,
  NESTING: 502,
  BAD_VALUE: 502,
  UNKNOWN_METHOD: 540,
};

/**
 * Bytes that cannot be decoded.
 *
 * @example
 * try { decodeFieldTable(new Cursor(bytes)); }
 * catch (e) { if (e instanceof DecodeError) console.log(e.code, e.replyCode, e.message); }
 */
export class DecodeError extends Error {
  override readonly name = "DecodeError";
  /** Stable machine-readable code. */
  readonly code: DecodeErrorCode;
  /** The AMQP reply code for a connection.close caused by this error. */
  readonly replyCode: number;
  constructor(code: DecodeErrorCode, message: string) {
    super(message);
    this.code = code;
    this.replyCode = REPLY_CODE[code];
  }
}

/**
 * Thrown by a value that cannot be encoded (a short string over 255 bytes, an integer out of range, a
 * table nested past the cap). It is a caller mistake, raised before any byte is handed out.
 *
 * @example
 * try { encodeShortString(w, "x".repeat(256)); } catch (e) { e instanceof EncodeError; }
 */
export class EncodeError extends Error {
  override readonly name = "EncodeError";
  readonly code = "ENCODE" as const;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * "Need more bytes": a parser reached the end of its input before finishing. Distinct from
 * {@link DecodeError} (the bytes are wrong). Not an `Error` subclass, so throwing it records no stack trace;
 * the streaming envelope ({@link parsePartial}) turns it into a result, and {@link complete} turns it into
 * a `DecodeError` where the input is known to be whole.
 */
export class Incomplete {
  /** How many more bytes, at least, the parser needs. */
  readonly needed: number;
  constructor(needed: number) {
    this.needed = needed;
  }
}
