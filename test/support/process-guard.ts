/**
 * Fails a test that let something escape to the process: an `uncaughtException`, an `unhandledRejection`,
 * or an exception thrown out of a transport callback (the fake transport reports those with `reportEscape`,
 * since in Node such a throw from a socket listener is an uncaught exception).
 *
 * Call `useProcessGuard()` at the top of a test file; each test then ends with a check that nothing escaped
 * during it (after a short wait, since rejections are reported a turn later).
 */
import { afterEach, beforeEach, expect } from "vitest";

let current: string[] | undefined;

function describeError(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** Records a process-level failure in the running test (no-op outside a guarded test). */
export function reportEscape(where: string, error: unknown): void {
  current?.push(`${where}: ${describeError(error)}`);
}

export function useProcessGuard(): void {
  const onException = (e: unknown) => reportEscape("uncaughtException", e);
  const onRejection = (e: unknown) => reportEscape("unhandledRejection", e);
  beforeEach(() => {
    current = [];
    process.on("uncaughtException", onException);
    process.on("unhandledRejection", onRejection);
  });
  afterEach(async () => {
    await new Promise((resolve) => setTimeout(resolve, 20));
    process.off("uncaughtException", onException);
    process.off("unhandledRejection", onRejection);
    const seen = current ?? [];
    current = undefined;
    expect(seen, "process-level failures during the test").toEqual([]);
  });
}
