/**
 * Delivery tags across recoveries (src/client/delivery-tags.ts): unchanged until a connection is lost; after
 * it, the application's tags keep growing, and a tag from before the loss maps to nothing (it must not be
 * acked: the broker forgot it, and acking it would close the channel with 406).
 */
import { describe, expect, it } from "vitest";
import { DeliveryTags } from "../../src/client/delivery-tags.ts";

describe("delivery tags", () => {
  it("pass through unchanged while the connection was never lost", () => {
    const t = new DeliveryTags();
    expect(t.fromBroker(1)).toBe(1);
    expect(t.fromBroker(2n ** 64n - 1n)).toBe(2n ** 64n - 1n);
    expect(t.toBroker(7, false)).toBe(7);
  });

  it("after a loss, keep growing; tags from before map to nothing, new ones to the broker's", () => {
    const t = new DeliveryTags();
    t.fromBroker(1);
    t.fromBroker(2);
    t.fromBroker(3);
    t.connectionLost();
    expect(t.fromBroker(1)).toBe(4); // the recovered channel's first delivery
    expect(t.fromBroker(2)).toBe(5);
    expect(t.toBroker(3, false)).toBeUndefined(); // stale
    expect(t.toBroker(4, false)).toBe(1);
    expect(t.toBroker(5, true)).toBe(2);
    expect(t.toBroker(0, true)).toBe(0); // multiple with 0: everything outstanding on this connection
    t.connectionLost();
    expect(t.fromBroker(1)).toBe(6);
    expect(t.toBroker(5, false)).toBeUndefined();
  });

  it("remember what a multiple ack covered, until the connection is lost", () => {
    const t = new DeliveryTags();
    t.settledMultiple(10);
    t.settledMultiple(4);
    expect(t.coveredByMultiple(10)).toBe(true);
    expect(t.coveredByMultiple(11)).toBe(false);
    t.connectionLost();
    expect(t.coveredByMultiple(1)).toBe(false);
  });
});
