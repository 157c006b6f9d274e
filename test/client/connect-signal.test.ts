/**
 * `connect({ signal })` (issue 8, defect 8): the README promises `{ signal }` on every awaitable, connect
 * included. An already-aborted signal fails at once without dialling; aborting during the handshake fails
 * promptly (not after connectionTimeout) and leaves no transport open.
 */
import { describe, expect, it } from "vitest";
import { rejectionOf, startConnect } from "../support/fake-runtime.ts";
import { useProcessGuard } from "../support/process-guard.ts";

useProcessGuard();

describe("connect with an AbortSignal", () => {
  it("rejects with AbortError and never dials when the signal is already aborted", async () => {
    const { runtime, connecting } = startConnect({ signal: AbortSignal.abort() });
    const e = await rejectionOf(connecting);
    expect(e).toMatchObject({ name: "AbortError", code: "ABORTED" });
    expect(runtime.connectCalls).toHaveLength(0);
  });

  it("rejects within ~50 ms with AbortError when aborted during the handshake, and destroys the transport", async () => {
    const ac = new AbortController();
    const { runtime, connecting } = startConnect({ signal: ac.signal, connectionTimeout: 10_000 }, { handshake: "silent" });
    // Wait until the client has dialled and sent its protocol header: the handshake is under way.
    for (let i = 0; i < 50 && runtime.transport?.writes.length !== 1; i++) await new Promise((r) => setTimeout(r, 2));
    expect(runtime.transport, "the client dialled").toBeDefined();
    const abortedAt = performance.now();
    ac.abort(new Error("the user gave up"));
    const e = await rejectionOf(connecting, 1000, "connect");
    expect(performance.now() - abortedAt).toBeLessThan(50);
    expect(e).toMatchObject({ name: "AbortError", code: "ABORTED" });
    expect(runtime.transport!.destroyed).toBe(true);
  });

  it("rejects with AbortError when aborted while the transport is still connecting", async () => {
    const ac = new AbortController();
    const { runtime, connecting } = startConnect({ signal: ac.signal, connectionTimeout: 10_000 }, {}, { connect: "hang" });
    await new Promise((r) => setTimeout(r, 5));
    ac.abort();
    const e = await rejectionOf(connecting, 1000, "connect");
    expect(e).toMatchObject({ code: "ABORTED" });
    expect(runtime.signals[0], "the transport factory is given the signal").toBeInstanceOf(AbortSignal);
  });
});
