/**
 * Several hosts (src/client/recovery/hosts.ts): the endpoints `connect([url1, url2])` and the `hosts` option
 * give, and the rotation that picks the next one — in order or shuffled per pass, skipping recent failures,
 * never refusing to hand one out.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { UsageError } from "../../../src/client/errors.ts";
import { type Endpoint, HostRotation, parseHost, resolveEndpoints } from "../../../src/client/recovery/hosts.ts";

const labels = (endpoints: readonly Endpoint[]) => endpoints.map((e) => e.label);

/** mulberry32: a small seeded random source, so a shuffle is the same on every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function take(rotation: HostRotation, n: number, now = 0): string[] {
  return Array.from({ length: n }, () => rotation.next(now).label);
}

describe("parsing a hosts entry", () => {
  it.each([
    ["rabbit1", { hostname: "rabbit1" }],
    ["rabbit1:5673", { hostname: "rabbit1", port: 5673 }],
    ["10.0.0.7:5672", { hostname: "10.0.0.7", port: 5672 }],
    ["[::1]", { hostname: "::1" }],
    ["[::1]:5673", { hostname: "::1", port: 5673 }],
    ["[fe80::1%eth0]:5672", { hostname: "fe80::1%eth0", port: 5672 }],
    ["2001:db8::7", { hostname: "2001:db8::7" }],
    ["/var/run/rabbitmq.sock", { socketPath: "/var/run/rabbitmq.sock" }],
    ["  rabbit2:1 ", { hostname: "rabbit2", port: 1 }],
  ])("%s", (entry, expected) => {
    expect(parseHost(entry)).toEqual(expected);
  });

  it.each([
    ["", /is empty/],
    ["amqp://rabbit1", /not a URL: pass several URLs as connect\(\[url1, url2\]\)/],
    ["rabbit1:http", /whole-number port/],
    ["rabbit1:", /whole-number port/],
    ["[::1]:x", /whole-number port/],
    [":5672", /has no host/],
    ["user:secret@rabbit1", /user info, not shown/],
    ["rabbit1/vhost", /must be "host:port"/],
  ])("refuses %j", (entry, message) => {
    expect(() => parseHost(entry, "hosts[0]")).toThrow(UsageError);
    expect(() => parseHost(entry, "hosts[0]")).toThrow(message);
  });

  it("never puts a password from an entry in its error", () => {
    expect(() => parseHost("u:hunter2@h")).toThrow(expect.objectContaining({ message: expect.not.stringContaining("hunter2") }));
  });
});

describe("the endpoints of connect(url | urls, options)", () => {
  it("one URL, or none: one endpoint", () => {
    expect(labels(resolveEndpoints("amqp://rabbit1:5673"))).toEqual(["rabbit1:5673"]);
    expect(labels(resolveEndpoints(undefined))).toEqual(["127.0.0.1:5672"]);
    expect(labels(resolveEndpoints(undefined, { hostname: "h", port: 1 }))).toEqual(["h:1"]);
  });

  it("several URLs: one endpoint each, each resolved on its own, the options object applied to all", () => {
    const endpoints = resolveEndpoints(["amqp://a:p@n1/vh", "amqps://b:q@[::1]:5671", "amqp://n3"], { heartbeat: 5 });
    expect(labels(endpoints)).toEqual(["n1:5672", "[::1]:5671", "n3:5672"]);
    expect(endpoints.map((e) => [e.options.username, e.options.password, e.options.vhost, e.options.tls, e.options.heartbeat])).toEqual([
      ["a", "p", "vh", false, 5],
      ["b", "q", "/", true, 5],
      ["guest", "guest", "/", false, 5],
    ]);
  });

  it("hosts: one endpoint per entry, with the URL's credentials, vhost and protocol but not its host", () => {
    const endpoints = resolveEndpoints("amqps://u:p@ignored:9999/prod?heartbeat=7", { hosts: ["n1", "n2:5673", "[::1]", { hostname: "n4", port: 6000 }] });
    expect(labels(endpoints)).toEqual(["n1:5671", "n2:5673", "[::1]:5671", "n4:6000"]);
    for (const e of endpoints) expect(e.options).toMatchObject({ tls: true, username: "u", password: "p", vhost: "prod", heartbeat: 7 });
  });

  it("hosts entries without a port take options.port", () => {
    expect(labels(resolveEndpoints(undefined, { hosts: ["n1", "n2:1"], port: 5680 }))).toEqual(["n1:5680", "n2:1"]);
  });

  it("a unix socket entry keeps the URL's host (it names the certificate with amqps)", () => {
    const [sock, tcp] = resolveEndpoints("amqps://rabbit.example", { hosts: ["/run/rabbit.sock", "n2"] });
    expect(sock!.label).toBe("/run/rabbit.sock");
    expect(sock!.options).toMatchObject({ socketPath: "/run/rabbit.sock", hostname: "rabbit.example", tls: true });
    expect(tcp!.options.socketPath).toBeUndefined();
    expect(labels(resolveEndpoints(undefined, { hosts: [{ socketPath: "/s" }] }))).toEqual(["/s"]);
  });

  it("a URL list may mix a unix socket (from options) only when there is one URL", () => {
    expect(labels(resolveEndpoints("amqp://h", { socketPath: "/s" }))).toEqual(["/s"]);
  });

  it("keeps the password out of the label and out of enumerable fields", () => {
    const [e] = resolveEndpoints("amqp://u:hunter2@n1");
    expect(e!.label).not.toContain("hunter2");
    expect(JSON.stringify(e)).not.toContain("hunter2");
    expect(e!.options.password).toBe("hunter2");
  });

  it.each([
    [[] as string[], {}, /empty list of URLs/],
    [["amqp://a", "amqp://b"], { hosts: ["c"] }, /several URLs or the hosts option, not both/],
    [["amqp://a", "amqp://b"], { hostname: "c" }, /With several URLs, each URL names its host/],
    [["amqp://a", "amqp://b"], { port: 1 }, /With several URLs/],
    ["amqp://a", { hosts: [] }, /hosts must be a non-empty array/],
    ["amqp://a", { hosts: ["b"], hostname: "c" }, /hosts replaces hostname and socketPath/],
    ["amqp://a", { hosts: ["b", "c:x"] }, /hosts\[1\]/],
    ["amqp://a", { hosts: [{ port: 1 }] }, /hosts\[0\] needs a hostname or a socketPath/],
    ["amqp://a", { hosts: ["b:70000"] }, /Invalid port 70000/],
    [["amqp://a", "http://b"], {}, /Invalid AMQP URI/],
  ])("refuses %j with %j", (url, options, message) => {
    expect(() => resolveEndpoints(url, options)).toThrow(UsageError);
    expect(() => resolveEndpoints(url, options)).toThrow(message);
  });
});

const three = () => resolveEndpoints(undefined, { hosts: ["a", "b", "c"] });

describe("the rotation, in order", () => {
  it("hands out the endpoints as listed, round and round", () => {
    expect(take(new HostRotation(three()), 7)).toEqual(["a:5672", "b:5672", "c:5672", "a:5672", "b:5672", "c:5672", "a:5672"]);
  });

  it("one endpoint: always that one, failed or not", () => {
    const [only] = resolveEndpoints("amqp://solo");
    const r = new HostRotation([only!]);
    r.failed(only!, 0);
    expect(take(r, 3)).toEqual(["solo:5672", "solo:5672", "solo:5672"]);
  });

  it("skips an endpoint that failed less than cooldownMs ago, and tries it again after", () => {
    const endpoints = three();
    const r = new HostRotation(endpoints, { cooldownMs: 1000 });
    r.failed(endpoints[1]!, 0);
    expect(take(r, 4, 500)).toEqual(["a:5672", "c:5672", "a:5672", "c:5672"]);
    expect(take(r, 3, 1000)).toEqual(["a:5672", "b:5672", "c:5672"]);
  });

  it("succeeded() clears a failure at once", () => {
    const endpoints = three();
    const r = new HostRotation(endpoints);
    r.failed(endpoints[0]!, 0);
    r.succeeded(endpoints[0]!);
    expect(take(r, 1, 1)).toEqual(["a:5672"]);
  });

  it("a failover moves on from the node that was lost", () => {
    const endpoints = three();
    const r = new HostRotation(endpoints);
    const first = r.next(0);
    r.succeeded(first);
    r.failed(first, 10_000); // the connection to a is lost: its node was killed
    expect(r.next(10_000).label).toBe("b:5672");
  });

  it("when every endpoint failed recently, hands out the one that failed longest ago", () => {
    const endpoints = three();
    const r = new HostRotation(endpoints);
    r.failed(endpoints[1]!, 100);
    r.failed(endpoints[2]!, 200);
    r.failed(endpoints[0]!, 300);
    expect(r.next(400).label).toBe("b:5672");
    // Failing in turn, they take turns: each time the one that has waited longest.
    const tried: string[] = [];
    for (let now = 500; now < 1100; now += 100) {
      const e = r.next(now);
      tried.push(e.label);
      r.failed(e, now);
    }
    expect(tried).toEqual(["b:5672", "c:5672", "a:5672", "b:5672", "c:5672", "a:5672"]);
  });

  it("refuses a foreign endpoint, an empty list and bad options", () => {
    const r = new HostRotation(three());
    const [stranger] = resolveEndpoints("amqp://stranger");
    expect(() => r.failed(stranger!, 0)).toThrow(/stranger:5672 is not one of this rotation's/);
    expect(() => new HostRotation([])).toThrow(UsageError);
    expect(() => new HostRotation(three(), { order: "shuffle" })).toThrow(/needs a random function/);
    expect(() => new HostRotation(three(), { order: "random" as "shuffle" })).toThrow(/order must be "in-order" or "shuffle"/);
    expect(() => new HostRotation(three(), { cooldownMs: -1 })).toThrow(/cooldownMs/);
  });
});

describe("the rotation, shuffled", () => {
  const many = () => resolveEndpoints(undefined, { hosts: ["a", "b", "c", "d", "e"] });

  it("is the same for the same seed", () => {
    expect(take(new HostRotation(many(), { order: "shuffle", random: seeded(42) }), 20)).toEqual(take(new HostRotation(many(), { order: "shuffle", random: seeded(42) }), 20));
  });

  it("hands out every endpoint once per pass, in a new order each pass", () => {
    const passes = take(new HostRotation(many(), { order: "shuffle", random: seeded(7) }), 50);
    const orders = new Set<string>();
    for (let i = 0; i < 50; i += 5) {
      const pass = passes.slice(i, i + 5);
      expect([...pass].sort()).toEqual(["a:5672", "b:5672", "c:5672", "d:5672", "e:5672"]);
      orders.add(pass.join(" "));
    }
    expect(orders.size).toBeGreaterThan(1);
  });

  it("with a random source stuck at 0 or at 1 still hands out each endpoint once per pass", () => {
    for (const r of [0, 1, 0.999999]) {
      const pass = take(new HostRotation(many(), { order: "shuffle", random: () => r }), 5);
      expect([...pass].sort()).toEqual(["a:5672", "b:5672", "c:5672", "d:5672", "e:5672"]);
    }
  });

  it("skips recent failures in a shuffled pass too", () => {
    const endpoints = many();
    const r = new HostRotation(endpoints, { order: "shuffle", random: seeded(3) });
    for (const i of [0, 2, 4]) r.failed(endpoints[i]!, 0);
    expect(new Set(take(r, 10, 1))).toEqual(new Set(["b:5672", "d:5672"]));
  });

  it("property: next() always returns a healthy endpoint when there is one, else the longest-failed", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer(),
        fc.boolean(),
        fc.array(fc.record({ who: fc.nat({ max: 5 }), what: fc.constantFrom("failed", "succeeded", "next") }), { maxLength: 40 }),
        (n, seed, shuffle, script) => {
          const endpoints = resolveEndpoints(undefined, { hosts: Array.from({ length: n }, (_, i) => `h${i}`) });
          const r = new HostRotation(endpoints, { order: shuffle ? "shuffle" : "in-order", random: seeded(seed), cooldownMs: 1000 });
          const failedAt = new Map<number, number>();
          let now = 0;
          for (const step of script) {
            now += 300;
            const who = step.who % n;
            if (step.what === "failed") {
              r.failed(endpoints[who]!, now);
              failedAt.set(who, now);
            } else if (step.what === "succeeded") {
              r.succeeded(endpoints[who]!);
              failedAt.delete(who);
            } else {
              const got = endpoints.indexOf(r.next(now));
              const healthy = endpoints.map((_, i) => i).filter((i) => !failedAt.has(i) || now - failedAt.get(i)! >= 1000);
              if (healthy.length > 0) expect(healthy).toContain(got);
              else expect(failedAt.get(got)).toBe(Math.min(...failedAt.values()));
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
