/**
 * The layers stay honest: the codec and the machine are sans-IO and runtime-neutral, so they may mention no
 * runtime API, no clock and no timer; dependencies point one way (codec ← machine ← client ← adapters).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = new URL("../src/", import.meta.url).pathname;

function files(dir: string): string[] {
  let out: string[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync(join(root, dir));
  } catch {
    return out;
  }
  for (const name of entries) {
    const rel = join(dir, name);
    if (statSync(join(root, rel)).isDirectory()) out = out.concat(files(rel));
    else if (name.endsWith(".ts")) out.push(rel);
  }
  return out;
}

/** Code without comments, so a comment may name what the code must not use. */
function code(rel: string): string {
  return readFileSync(join(root, rel), "utf8")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/(^|[^:])\/\/.*$/gm, "$1");
}

const FORBIDDEN = /node:|\bBuffer\b|\bDeno\b|\bBun\b|\bsetTimeout\b|\bsetInterval\b|\bDate\.now\b|\bperformance\b|\bprocess\./;

describe("layering", () => {
  for (const layer of ["codec", "machine"]) {
    it(`src/${layer} mentions no runtime API, clock or timer`, () => {
      const offenders = files(layer).filter((f) => FORBIDDEN.test(code(f)));
      expect(offenders).toEqual([]);
    });
  }

  it("src/codec imports nothing outside src/codec", () => {
    for (const f of files("codec")) {
      for (const m of code(f).matchAll(/from\s+["']([^"']+)["']/g)) {
        expect(m[1], `${f} imports ${m[1]}`).toMatch(/^\.\.?\//);
        expect(join(f, "..", m[1]!).startsWith("codec")).toBe(true);
      }
    }
  });

  it("src/machine imports only the codec and itself", () => {
    for (const f of files("machine")) {
      for (const m of code(f).matchAll(/from\s+["']([^"']+)["']/g)) {
        const target = join(f, "..", m[1]!);
        expect(target.startsWith("codec") || target.startsWith("machine"), `${f} imports ${m[1]}`).toBe(true);
      }
    }
  });

  it("src/client imports no adapter, relay or runtime API (it stays transport-agnostic)", () => {
    for (const f of files("client")) {
      for (const m of code(f).matchAll(/from\s+["']([^"']+)["']/g)) {
        const target = join(f, "..", m[1]!);
        expect(["codec", "machine", "client"].some((layer) => target.startsWith(layer)), `${f} imports ${m[1]}`).toBe(true);
      }
    }
  });

  it("the check itself catches an offender", () => {
    expect(FORBIDDEN.test("import { x } from 'node:net'")).toBe(true);
    expect(FORBIDDEN.test("const t = setTimeout(f, 1)")).toBe(true);
    expect(FORBIDDEN.test("const n = Date.now()")).toBe(true);
  });
});

describe("package", () => {
  it("has no runtime dependencies", () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    expect(pkg.dependencies ?? {}).toEqual({});
  });

  it("exports warren/codec from the built files", async () => {
    const codec = await import("warren/codec");
    expect(typeof codec.FrameDecoder).toBe("function");
    expect(typeof codec.encodeContent).toBe("function");
    expect(codec.METHODS.length).toBe(64);
  });
});
