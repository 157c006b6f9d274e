/**
 * `connect` for any runtime: resolves the URL(s) and options into endpoints, builds the Connection and opens
 * it. Each adapter's `connect` calls `connectWith` with its own Runtime. The URL's password never appears in an
 * error message.
 */
import { CommandError } from "../machine/errors.ts";
import { Connection } from "./connection.ts";
import { UsageError } from "./errors.ts";
import type { ConnectOptions } from "./options.ts";
import { resolveEndpoints } from "./recovery/hosts.ts";
import type { Runtime } from "./transport.ts";

export async function connectWith(runtime: Runtime, url?: string | readonly string[] | ConnectOptions, options?: ConnectOptions): Promise<Connection> {
  const endpoints = typeof url === "string" || Array.isArray(url) ? resolveEndpoints(url as string | readonly string[], options) : resolveEndpoints(undefined, { ...(url as ConnectOptions | undefined), ...options });
  const first = endpoints[0]!.options;
  let conn: Connection;
  try {
    conn = new Connection(runtime, endpoints, first.hostOrder);
  } catch (e) {
    // An out-of-range option (heartbeat, frameMax, …) as the machine reports it: the client's own UsageError,
    // so `isWarrenError` and `code` work as for every other failure.
    if (e instanceof CommandError) throw new UsageError(e.message);
    throw e;
  }
  return conn.open(first.signal);
}
