/**
 * Caller mistakes: what the machine throws, synchronously, when a command cannot be carried out in the
 * state it is in (a publish on a closed channel, a second connection.close, a method the spec does not let
 * a client send). The machine's state is unchanged when it throws.
 *
 * Failures caused by the broker or the network are never thrown: they are events (see events.ts).
 */

/** Stable codes for {@link CommandError}. */
export type CommandErrorCode =
  /** The connection is closing or closed. */
  | "CONNECTION_CLOSED"
  /** The handshake has not finished, so channels cannot be used yet. */
  | "NOT_OPEN"
  /** The channel is not open (never opened, closing or closed). */
  | "CHANNEL_CLOSED"
  /** Every channel id up to channel_max is in use. */
  | "CHANNEL_LIMIT"
  /** The method is not one this command sends (e.g. an asynchronous method passed to `call`). */
  | "INVALID_METHOD"
  /** A value cannot be encoded (too long a short string, an integer out of range). */
  | "INVALID_ARGUMENT";

/**
 * A command was misused (the client layer has its own, user-facing `UsageError`; this one is the machine's).
 * @example
 * try { m.openChannel(); } catch (e) { if (e instanceof CommandError && e.code === "NOT_OPEN") wait(); }
 */
export class CommandError extends Error {
  override readonly name = "CommandError";
  readonly code: CommandErrorCode;
  constructor(code: CommandErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
