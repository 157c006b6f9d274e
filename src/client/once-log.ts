/**
 * Errors nobody observed (no listener, no awaiting promise), reported to the application's logger once per
 * source — a consumer, a channel, the connection — rather than lost, or repeated for every message.
 */
import type { Logger } from "./options.ts";

export class OnceLog {
  readonly #logger: Logger;
  readonly #warned = new WeakSet<object>();

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Warns about `source` unless it was warned about already. Never throws. */
  warn(source: object, message: string, error?: unknown): void {
    if (this.#warned.has(source)) return;
    this.#warned.add(source);
    try {
      this.#logger.warn(message, error);
    } catch {
      // a logger that throws must not break dispatch
    }
  }
}
