/**
 * A close says what it closed (issue 8, defect 4). When one read carries a channel.close for one channel and
 * a connection.close, a request on the closed channel fails with the channel's reason, and a request on
 * another channel with the connection's — the scope is carried by the close, not guessed afterwards from
 * whether the connection happens to be closed by the time the read was processed.
 */
import { describe, expect, it } from "vitest";
import { NotFoundError } from "../../src/client/errors.ts";
import { channelCloseFrame, connectionCloseFrame } from "../support/fake-peer.ts";
import { openConnection, rejectionOf, settle } from "../support/fake-runtime.ts";
import { useProcessGuard } from "../support/process-guard.ts";

useProcessGuard();

describe("channel.close 404 and connection.close 320 in one read", () => {
  it("rejects the channel's request with the channel's 404 and another channel's with the connection's 320", async () => {
    const { conn, peer } = await openConnection();
    const ch = await conn.openChannel();
    const other = await conn.openChannel();
    const declaring = ch.queueDeclare("missing", { passive: true });
    await peer.expectMethod("queue.declare", { channel: ch.id });
    const otherDeclaring = other.queueDeclare("q");
    await peer.expectMethod("queue.declare", { channel: other.id });
    const declareFailure = rejectionOf(declaring);
    const otherFailure = rejectionOf(otherDeclaring);

    peer.batch(
      channelCloseFrame(ch.id, 404, "NOT_FOUND - no queue 'missing' in vhost '/'", 50, 10),
      connectionCloseFrame(320, "CONNECTION_FORCED - broker forced connection closure"),
    );
    await settle();

    const e = await declareFailure;
    expect(e).toBeInstanceOf(NotFoundError);
    expect(e.replyCode).toBe(404);
    expect(e.message.startsWith("Channel closed")).toBe(true);

    const o = await otherFailure;
    expect(o).toMatchObject({ name: "ConnectionForcedError", code: "CONNECTION_FORCED", replyCode: 320 });
  });
});
