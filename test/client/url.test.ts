/**
 * AMQP URI parsing (https://www.rabbitmq.com/docs/uri-spec, uri-query-parameters): defaults, percent-decoding,
 * the vhost rules, query parameters in snake and camel case, IPv6 hosts, and errors that never echo the
 * password.
 */
import { describe, expect, it } from "vitest";
import { connect, isWarrenError, parseUrl, redactUrl, resolveConnectOptions, UsageError } from "../../src/index.ts";
import { recordUnhandledRejections } from "../support/broker.ts";

recordUnhandledRejections();

describe("scheme, host and port", () => {
  it("amqp defaults to port 5672 and plain TCP", () => {
    const o = resolveConnectOptions("amqp://rabbit.example");
    expect(o).toMatchObject({ tls: false, hostname: "rabbit.example", port: 5672 });
  });

  it("amqps defaults to port 5671 and TLS", () => {
    const o = resolveConnectOptions("amqps://rabbit.example");
    expect(o).toMatchObject({ tls: true, hostname: "rabbit.example", port: 5671 });
  });

  it("an explicit port wins", () => {
    expect(resolveConnectOptions("amqp://h:5673").port).toBe(5673);
    expect(resolveConnectOptions("amqps://h:443").port).toBe(443);
  });

  it("the scheme is case-insensitive", () => {
    expect(parseUrl("AMQPS://h").protocol).toBe("amqps:");
  });

  it("an IPv6 literal in brackets is the host, without the brackets", () => {
    expect(parseUrl("amqp://[::1]:5673/v")).toMatchObject({ hostname: "::1", port: 5673, vhost: "v" });
    expect(parseUrl("amqp://u:p@[2001:db8::7]")).toMatchObject({ hostname: "2001:db8::7", username: "u", password: "p" });
    expect(resolveConnectOptions("amqp://[fe80::1]").port).toBe(5672);
  });

  it("no host means 127.0.0.1; no user info means guest/guest", () => {
    expect(resolveConnectOptions("amqp://")).toMatchObject({ hostname: "127.0.0.1", port: 5672, username: "guest", password: "guest", vhost: "/" });
  });

  it("ports outside 1–65535 are a UsageError", () => {
    expect(() => resolveConnectOptions("amqp://h:99999")).toThrow(UsageError);
    expect(() => resolveConnectOptions("amqp://h:0")).toThrow(UsageError);
    expect(() => resolveConnectOptions(undefined, { port: 70000 })).toThrow(UsageError);
  });
});

describe("user info", () => {
  it("user name and password are percent-decoded", () => {
    expect(parseUrl("amqp://us%40er:p%40ss%3Aw%2Frd%25@h")).toMatchObject({ username: "us@er", password: "p@ss:w/rd%" });
  });

  it("a password may contain ':' unencoded (only the first ':' separates)", () => {
    expect(parseUrl("amqp://user:a:b:c@h")).toMatchObject({ username: "user", password: "a:b:c" });
  });

  it("a raw '@' in the password does not leak into the host name", () => {
    expect(parseUrl("amqp://user:p@ss@h/v")).toMatchObject({ hostname: "h", username: "user", password: "p@ss", vhost: "v" });
  });

  it("a user without a password; an empty user", () => {
    expect(parseUrl("amqp://alice@h")).toEqual({ protocol: "amqp:", hostname: "h", username: "alice" });
    expect(parseUrl("amqp://:secret@h")).toMatchObject({ username: "", password: "secret" });
  });

  it("UTF-8 percent-encoding decodes to the characters", () => {
    expect(parseUrl("amqp://j%C3%BCrgen:p%C3%A4ss@h").username).toBe("jürgen");
    expect(parseUrl("amqp://j%C3%BCrgen:p%C3%A4ss@h").password).toBe("päss");
  });
});

describe("vhost", () => {
  it("no path, or a bare '/', means the default vhost '/'", () => {
    expect(resolveConnectOptions("amqp://h").vhost).toBe("/");
    expect(resolveConnectOptions("amqp://h/").vhost).toBe("/");
    expect(resolveConnectOptions("amqp://h?heartbeat=5").vhost).toBe("/");
  });

  it("'/%2f' is the vhost '/', in either case", () => {
    expect(parseUrl("amqp://h/%2f").vhost).toBe("/");
    expect(parseUrl("amqp://h/%2F").vhost).toBe("/");
  });

  it("the path without its slash, percent-decoded, is the vhost", () => {
    expect(parseUrl("amqp://h/prod").vhost).toBe("prod");
    expect(parseUrl("amqp://h/a%2Fb").vhost).toBe("a/b");
    expect(parseUrl("amqp://h/my%20vhost").vhost).toBe("my vhost");
    expect(parseUrl("amqp://h:5672/%2fstaging").vhost).toBe("/staging");
  });

  it("an unencoded '/' inside the vhost is a UsageError", () => {
    expect(() => parseUrl("amqp://h/a/b")).toThrow(UsageError);
  });
});

describe("query parameters", () => {
  it("snake_case names", () => {
    expect(parseUrl("amqp://h?heartbeat=10&frame_max=65536&channel_max=100&connection_timeout=2500&auth_mechanism=amqplain")).toMatchObject({
      heartbeat: 10,
      frameMax: 65536,
      channelMax: 100,
      connectionTimeout: 2500,
      authMechanism: "AMQPLAIN",
    });
  });

  it("camelCase names", () => {
    expect(parseUrl("amqp://h?heartbeat=0&frameMax=8192&channelMax=7&connectionTimeout=100&authMechanism=EXTERNAL")).toMatchObject({
      heartbeat: 0,
      frameMax: 8192,
      channelMax: 7,
      connectionTimeout: 100,
      authMechanism: "EXTERNAL",
    });
  });

  it("connection_name is percent-decoded ('+' is a space)", () => {
    expect(parseUrl("amqp://h?connection_name=order+service%2F1").connectionName).toBe("order service/1");
  });

  it("unknown parameters are ignored", () => {
    expect(parseUrl("amqp://h?cacertfile=/x&verify=verify_peer&heartbeat=3")).toEqual({ protocol: "amqp:", hostname: "h", heartbeat: 3 });
  });

  it("the options object wins over the URI", () => {
    const o = resolveConnectOptions("amqp://u:p@h:1/v?heartbeat=5&frame_max=9000", { heartbeat: 7, vhost: "other", port: 2 });
    expect(o).toMatchObject({ hostname: "h", port: 2, username: "u", password: "p", vhost: "other", heartbeat: 7, frameMax: 9000 });
  });

  it("non-numeric or negative numbers and unknown mechanisms are UsageErrors", () => {
    expect(() => parseUrl("amqp://h?heartbeat=ten")).toThrow(UsageError);
    expect(() => parseUrl("amqp://h?frame_max=-1")).toThrow(UsageError);
    expect(() => parseUrl("amqp://h?channel_max=1.5")).toThrow(UsageError);
    expect(() => parseUrl("amqp://h?auth_mechanism=GSSAPI")).toThrow(UsageError);
  });

  it("an out-of-range value is a UsageError from connect, before any I/O", async () => {
    const err = await connect("amqp://u:pw@127.0.0.1:1/?heartbeat=99999999").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(isWarrenError(err)).toBe(true);
    expect((err as Error).message).toMatch(/heartbeat/);
  });
});

describe("invalid URIs", () => {
  const secret = "S3cr3t-Pa55";
  const bad = [
    `http://user:${secret}@h/`,
    `amqp://user:${secret}@h:port/`,
    `amqp://user:${secret}%zz@h/`,
    `amqp://user:${secret}@h/%zz`,
    `amqp://user:${secret}@h/a/b`,
    `amqp://user:${secret}@h?heartbeat=x`,
    `amqp://us%zzer:${secret}@h/`,
    `amqp://user:${secret}@h:99999/`,
    `amqp:/user:${secret}@h/`,
    `amqp//user:${secret}@h/`,
    `user:${secret}@h`,
  ];
  for (const url of bad) {
    it(`${redactUrl(url)} throws a UsageError that does not echo the password`, () => {
      let err: unknown;
      try {
        resolveConnectOptions(url);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UsageError);
      expect(err).toMatchObject({ code: "USAGE_ERROR" });
      expect(isWarrenError(err)).toBe(true);
      const e = err as Error;
      expect(e.message).not.toContain(secret);
      expect(e.stack ?? "").not.toContain(secret);
      expect(JSON.stringify(e)).not.toContain(secret);
    });
  }

  it("connect() rejects (does not throw synchronously) with the same UsageError", async () => {
    const p = connect(`amqp://user:${secret}@h:port/`);
    expect(p).toBeInstanceOf(Promise);
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).not.toContain(secret);
  });
});

describe("redactUrl", () => {
  it("replaces the password with *** and keeps everything else", () => {
    expect(redactUrl("amqps://u:p%40ss@rabbit.example:5671/%2f?heartbeat=10")).toBe("amqps://u:***@rabbit.example:5671/%2f?heartbeat=10");
  });

  it("leaves URIs without a password alone", () => {
    expect(redactUrl("amqp://u@h/v")).toBe("amqp://u@h/v");
    expect(redactUrl("amqp://h/v?x=a:b@c")).toBe("amqp://h/v?x=a:b@c");
  });

  it("hides a password containing a raw '@' completely", () => {
    expect(redactUrl("amqp://u:p@ss@h/v")).toBe("amqp://u:***@h/v");
  });
});
