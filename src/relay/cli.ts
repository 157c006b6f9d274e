/**
 * The `warren-relay` command line: parses arguments, starts a {@link Relay}, stops it on SIGINT/SIGTERM.
 *
 *   warren-relay [--listen HOST:PORT] [--upstream HOST:PORT]... [--allow HOST:PORT[,HOST:PORT]...]
 *                [--origin ORIGIN]... [--max-message-size BYTES] [--max-tunnels N]
 *                [--handshake-timeout MS] [--idle-timeout MS] [--quiet]
 *
 * The relay binds only to the --listen address (default 127.0.0.1:15670). Clients reach the first
 * --upstream by default and any other --upstream or --allow entry by asking for it (`?upstream=HOST:PORT`);
 * nothing else is ever dialled. With no upstream given, 127.0.0.1:5672.
 */
import { parseArgs } from "node:util";
import { formatUpstream, parseUpstream, Relay, type RelayOptions } from "./relay.ts";

export const USAGE = `Usage: warren-relay [options]

A WebSocket-to-TCP relay so that browsers can speak AMQP 0-9-1 to RabbitMQ (with warren/websocket).

Options:
  --listen HOST:PORT        address to listen on (default 127.0.0.1:15670; [::1]:PORT for IPv6)
  --upstream HOST:PORT      a broker clients may reach; repeatable, the first is the default
                            (default 127.0.0.1:5672)
  --allow HOST:PORT,...     more brokers clients may ask for with ?upstream=HOST:PORT
  --origin ORIGIN           allow browsers from this origin only (e.g. https://app.example); repeatable
                            (default: any origin)
  --max-message-size BYTES  largest WebSocket frame/message accepted from a client (default 1048576)
  --max-tunnels N           most connections at once, tunnels plus connections still in their handshake;
                            more are closed as they arrive (default 1000)
  --handshake-timeout MS    time a new connection has to send its upgrade request, then it is dropped
                            (default 10000)
  --idle-timeout MS         close a tunnel (1001) that carried no byte either way for this long; 0 never
                            (default 300000; AMQP heartbeats keep a live tunnel busy)
  --quiet                   log nothing but the listening address
  -h, --help                show this help
`;

export interface RelayCliConfig {
  host: string;
  port: number;
  options: RelayOptions;
  quiet: boolean;
}

/**
 * Turns command-line arguments into a relay configuration; throws an Error with a message for the user.
 * @example parseRelayArgs(["--upstream", "10.0.0.5:5672"]).options.upstreams; // ["10.0.0.5:5672"]
 */
export function parseRelayArgs(argv: readonly string[]): RelayCliConfig | "help" {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      listen: { type: "string" },
      upstream: { type: "string", multiple: true },
      allow: { type: "string", multiple: true },
      origin: { type: "string", multiple: true },
      "max-message-size": { type: "string" },
      "max-tunnels": { type: "string" },
      "handshake-timeout": { type: "string" },
      "idle-timeout": { type: "string" },
      quiet: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return "help";
  // Port 0 asks the system for a free port (the address is printed), so it is valid here but not upstream.
  const listenArg = values.listen ?? "127.0.0.1:15670";
  const anyPort = listenArg.endsWith(":0");
  const listen = parseUpstream(anyPort ? `${listenArg.slice(0, -2)}:1` : listenArg);
  const list = [...(values.upstream ?? []), ...(values.allow ?? []).flatMap((a) => a.split(","))].map((s) => s.trim()).filter((s) => s !== "");
  const upstreams = [...new Set((list.length > 0 ? list : ["127.0.0.1:5672"]).map((s) => formatUpstream(parseUpstream(s))))];
  const options: RelayOptions = { upstreams };
  if (values.origin) options.origins = values.origin;
  const max = wholeNumber(values, "max-message-size", "bytes", 1);
  if (max !== undefined) options.maxMessageSize = max;
  const tunnels = wholeNumber(values, "max-tunnels", "connections", 1);
  if (tunnels !== undefined) options.maxTunnels = tunnels;
  const handshake = wholeNumber(values, "handshake-timeout", "milliseconds", 1);
  if (handshake !== undefined) options.handshakeTimeout = handshake;
  const idle = wholeNumber(values, "idle-timeout", "milliseconds", 0);
  if (idle !== undefined) options.idleTimeout = idle;
  return { host: listen.host, port: anyPort ? 0 : listen.port, options, quiet: values.quiet ?? false };
}

/** Node's timers cap: a longer timeout would fire at once. Also more than any count the relay takes. */
const MAX_WHOLE = 0x7fff_ffff;

/** The value of a whole-number option, checked against [min, 2^31 − 1]; undefined when not given. */
function wholeNumber(values: Record<string, unknown>, name: string, unit: string, min: number): number | undefined {
  const v = values[name];
  if (typeof v !== "string") return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > MAX_WHOLE) {
    throw new Error(`--${name} must be a whole number of ${unit} from ${min} to ${MAX_WHOLE}, not "${v}"`);
  }
  return Number(v);
}

/**
 * Runs the relay until SIGINT/SIGTERM. Resolves with the running relay (tests stop it with `close()`), or
 * with an exit code after printing the help (0) or an argument error (2).
 */
export async function main(
  argv: readonly string[],
  io: { out(line: string): void; err(line: string): void } = { out: (l) => console.log(l), err: (l) => console.error(l) },
  handleSignals = true,
): Promise<Relay | number> {
  let config: RelayCliConfig | "help";
  try {
    config = parseRelayArgs(argv);
  } catch (e) {
    io.err(`warren-relay: ${e instanceof Error ? e.message : String(e)}\n\n${USAGE}`);
    return 2;
  }
  if (config === "help") {
    io.out(USAGE);
    return 0;
  }
  const relay = new Relay({ ...config.options, ...(!config.quiet && { log: (line: string) => io.err(`warren-relay: ${line}`) }) });
  const { url } = await relay.listen(config.port, config.host);
  const [first, ...more] = config.options.upstreams;
  io.out(`warren-relay listening on ${url} → ${first}${more.length > 0 ? ` (also allowed: ${more.join(", ")})` : ""}`);
  if (!config.options.origins && !config.quiet) {
    io.err("warren-relay: note: any web page may use this relay (no --origin given); name your app's origin with --origin");
  }
  if (handleSignals) {
    const stop = () => {
      relay.close().then(() => process.exit(0), () => process.exit(1));
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  }
  return relay;
}
