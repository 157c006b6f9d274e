/**
 * The reconnect policy: how long to wait before each attempt to reconnect, and when to give up. Pure: the
 * caller passes the attempt number, the time spent so far and the random source, and arms its own timer.
 *
 * The schedule (attempt 1 is the first reconnect after the connection was lost):
 * - attempt 1 is immediate: most losses are a single reset, and the broker is usually there at once;
 * - attempt n ≥ 2 waits around `initialDelayMs × multiplier^(n−2)`, capped at `maxDelayMs` (100 ms, 200 ms,
 *   400 ms, … 30 s by default), with jitter so that many clients cut off together (a broker restart) do not
 *   come back in lockstep:
 *   - "full" (the default): a uniform random wait from 0 up to the capped delay;
 *   - "equal": half the capped delay plus a uniform random part of the other half;
 *   - "none": exactly the capped delay;
 * - `maxAttempts` gives up after that many reconnect attempts; `maxElapsedMs` gives up once that much time
 *   has passed since the connection was lost, and shortens the last wait so that the final attempt starts
 *   no later than that deadline (a budget of 10 s never gives up at 5 s because the next wait would be 8 s).
 *
 * The jitter formulas are the ones AWS's "Exponential Backoff And Jitter" article names; waits are whole
 * milliseconds, rounded down.
 */
import { UsageError } from "../errors.ts";

export type Jitter = "full" | "equal" | "none";

/** How a connection reconnects after a loss it did not ask for. Every field is optional. */
export interface ReconnectOptions {
  /** The wait before the second attempt (the first is immediate), in milliseconds. Default 100. */
  initialDelayMs?: number;
  /** Each further wait is this many times the one before. Default 2. */
  multiplier?: number;
  /** No wait is longer than this, in milliseconds. Default 30000. */
  maxDelayMs?: number;
  /** Default "full". */
  jitter?: Jitter;
  /** Give up after this many reconnect attempts. Default: never. */
  maxAttempts?: number;
  /** Give up once this many milliseconds have passed since the connection was lost. Default: never. */
  maxElapsedMs?: number;
}

/** A validated policy with every default filled in. */
export interface ReconnectPolicy {
  readonly initialDelayMs: number;
  readonly multiplier: number;
  readonly maxDelayMs: number;
  readonly jitter: Jitter;
  readonly maxAttempts: number;
  readonly maxElapsedMs: number;
}

/** The longest a JavaScript timer can wait (setTimeout fires at once for anything larger). */
const MAX_TIMEOUT = 2 ** 31 - 1;
const JITTERS: readonly Jitter[] = ["full", "equal", "none"];

function whole(name: string, v: unknown, min: number, max: number): void {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new UsageError(`Option reconnect.${name} must be a whole number from ${min} to ${max}, not ${describe(v)}`);
  }
}

function describe(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

/**
 * Checks `options` and fills in the defaults. Throws UsageError naming the first option that is wrong.
 * @example resolveReconnectPolicy({ maxAttempts: 10 });
 *   // { initialDelayMs: 100, multiplier: 2, maxDelayMs: 30000, jitter: "full", maxAttempts: 10, maxElapsedMs: Infinity }
 */
export function resolveReconnectPolicy(options: ReconnectOptions = {}): ReconnectPolicy {
  if (typeof options !== "object" || options === null) throw new UsageError(`Option reconnect must be an object of reconnect options, not ${describe(options)}`);
  const o = options;
  if (o.initialDelayMs !== undefined) whole("initialDelayMs", o.initialDelayMs, 0, MAX_TIMEOUT);
  if (o.maxDelayMs !== undefined) whole("maxDelayMs", o.maxDelayMs, 0, MAX_TIMEOUT);
  if (o.multiplier !== undefined && (typeof o.multiplier !== "number" || !Number.isFinite(o.multiplier) || o.multiplier < 1)) {
    throw new UsageError(`Option reconnect.multiplier must be a finite number of at least 1, not ${describe(o.multiplier)}`);
  }
  if (o.jitter !== undefined && !JITTERS.includes(o.jitter)) {
    throw new UsageError(`Option reconnect.jitter must be one of ${JITTERS.map((j) => `"${j}"`).join(", ")}, not ${describe(o.jitter)}`);
  }
  if (o.maxAttempts !== undefined) whole("maxAttempts", o.maxAttempts, 1, Number.MAX_SAFE_INTEGER);
  if (o.maxElapsedMs !== undefined) whole("maxElapsedMs", o.maxElapsedMs, 0, Number.MAX_SAFE_INTEGER);
  const initialDelayMs = o.initialDelayMs ?? 100;
  const maxDelayMs = o.maxDelayMs ?? Math.max(30_000, initialDelayMs);
  if (maxDelayMs < initialDelayMs) {
    throw new UsageError(`Option reconnect.maxDelayMs (${maxDelayMs}) must be at least reconnect.initialDelayMs (${initialDelayMs})`);
  }
  return Object.freeze({
    initialDelayMs,
    multiplier: o.multiplier ?? 2,
    maxDelayMs,
    jitter: o.jitter ?? "full",
    maxAttempts: o.maxAttempts ?? Infinity,
    maxElapsedMs: o.maxElapsedMs ?? Infinity,
  });
}

/**
 * How many milliseconds to wait before reconnect attempt `attempt` (1 for the first after the loss), or
 * undefined to give up. `random` returns a number in [0, 1) (Math.random, or a seeded source in tests);
 * `elapsedMs` is the time since the connection was lost, attempts included.
 * @example nextDelay(resolveReconnectPolicy({ jitter: "none" }), 1, Math.random); // 0
 * @example nextDelay(resolveReconnectPolicy({ jitter: "none" }), 3, Math.random); // 200
 */
export function nextDelay(policy: ReconnectPolicy, attempt: number, random: () => number, elapsedMs = 0): number | undefined {
  if (!Number.isInteger(attempt) || attempt < 1) throw new UsageError(`nextDelay: attempt must be a whole number from 1, not ${attempt}`);
  if (!(elapsedMs >= 0)) throw new UsageError(`nextDelay: elapsedMs must be a number from 0, not ${elapsedMs}`);
  if (attempt > policy.maxAttempts) return undefined;
  const remaining = policy.maxElapsedMs - elapsedMs;
  // The first attempt is allowed even with a zero budget: it is immediate.
  if (remaining < 0 || (remaining === 0 && attempt > 1)) return undefined;
  const delay = attempt === 1 ? 0 : jittered(policy, cappedDelay(policy, attempt), random);
  return Math.min(delay, remaining);
}

/** The delay before attempt `attempt` ≥ 2 without jitter: exponential, capped (no overflow past the cap). */
function cappedDelay(p: ReconnectPolicy, attempt: number): number {
  const raw = p.initialDelayMs * p.multiplier ** (attempt - 2);
  return Math.min(p.maxDelayMs, raw); // an Infinity from a huge exponent is capped too
}

function jittered(p: ReconnectPolicy, capped: number, random: () => number): number {
  // Clamp: a random source that returns exactly 1 (or drifts outside [0, 1)) must not exceed the cap.
  const x = random();
  const r = x > 1 ? 1 : x >= 0 ? x : 0; // NaN counts as 0
  switch (p.jitter) {
    case "none":
      return capped;
    case "equal":
      return Math.floor(capped / 2 + (r * capped) / 2);
    case "full":
      return Math.floor(r * capped);
  }
}

/** Resolves after `ms`, or rejects with the signal's reason once it aborts (the timer cleared). */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => (signal?.removeEventListener("abort", onAbort), resolve()), ms);
    const onAbort = () => (clearTimeout(timer), reject(signal?.reason));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
