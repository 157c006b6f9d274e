/**
 * The fuzzer's command line: `npm run fuzz -- [--runs N] [--seed S] [--target frames|tables|methods]…
 * [--time-limit MS] [--input I] [--replay FILE.hex]`.
 *
 * Prints one line per target (`frames: N inputs, max X ms per input, 0 crashes`), a detail line, and a
 * summary; writes every crashing input to fuzz/crashes/<target>-<seed>-<index>.hex and exits 1 if there was
 * any. `--seed` defaults to the clock and is always printed, so any run can be repeated; `--input I` re-runs
 * input I alone; `--replay FILE` judges a saved input (its target is taken from the file name).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { bytesOfHex, hexOf } from "./corpus.ts";
import { runClientTarget } from "./client-target.ts";
import { fuzzMachine } from "./machine-target.ts";
import { checkInput, runTarget, TARGETS, type TargetStats } from "./targets.ts";

/**
 * The codec targets, the machine fed arbitrary broker bytes after a handshake (fuzz/machine-target.ts), and
 * the whole client against a hostile broker over loopback TCP (fuzz/client-target.ts).
 */
const ALL_TARGETS = [...TARGETS, "machine", "client"] as const;
/** A client run is a TCP connection (~10 ms): it gets a third of --runs, so CI's 3000 stay near 10 s. */
const CLIENT_RUNS_DIVISOR = 3;
type AnyTarget = (typeof ALL_TARGETS)[number];

interface Args {
  runs: number;
  seed: number;
  targets: AnyTarget[];
  timeLimitMs: number;
  input: number | undefined;
  replay: string | undefined;
}

function usage(message: string): never {
  console.error(`fuzz: ${message}`);
  console.error("usage: npm run fuzz -- [--runs N] [--seed S] [--target frames|tables|methods]... [--time-limit MS] [--input I] [--replay FILE.hex]");
  process.exit(2);
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { runs: 10000, seed: Date.now() >>> 0, targets: [], timeLimitMs: 20, input: undefined, replay: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) usage(`${a} needs a value`);
      return v;
    };
    const int = (v: string) => {
      if (!/^\d+$/.test(v)) usage(`${a} takes a non-negative integer, not ${v}`);
      return Number(v);
    };
    if (a === "--runs") args.runs = int(value());
    else if (a === "--seed") args.seed = int(value()) >>> 0;
    else if (a === "--target") {
      const t = value();
      if (!(ALL_TARGETS as readonly string[]).includes(t)) usage(`unknown target ${t}`);
      args.targets.push(t as AnyTarget);
    } else if (a === "--time-limit") args.timeLimitMs = int(value());
    else if (a === "--input") args.input = int(value());
    else if (a === "--replay") args.replay = value();
    else usage(`unknown argument ${a}`);
  }
  if (args.targets.length === 0) args.targets = [...ALL_TARGETS];
  return args;
}

const crashDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "crashes");

function replay(file: string): number {
  const base = path.basename(file);
  const target = TARGETS.find((t) => base.startsWith(`${t}-`));
  if (!target) usage(`cannot tell the target from the file name ${base} (expected <target>-<seed>-<index>.hex)`);
  const failures = checkInput(target, bytesOfHex(readFileSync(file, "utf8")));
  for (const f of failures) console.log(`${target}: ${f.kind}: ${f.message}`);
  console.log(`${base}: ${failures.length === 0 ? "handled (DecodeError or accepted, all invariants hold)" : `${failures.length} failures`}`);
  return failures.length === 0 ? 0 : 1;
}

function detail(s: TargetStats): string {
  const codes = Object.entries(s.codes)
    .sort((a, b) => b[1] - a[1])
    .map(([c, n]) => `${c} ${n}`)
    .join(", ");
  return `  ${s.target}: ${s.accepted} accepted, ${s.rejected} rejected (${codes || "none"}); ${s.extremes} fixed extreme cases`;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.replay) return replay(args.replay);
  console.log(`fuzz: seed ${args.seed}, ${args.runs} inputs per target, time limit ${args.timeLimitMs} ms per input (re-run with --seed ${args.seed})`);
  const started = performance.now();
  let inputs = 0;
  let crashes = 0;
  let maxMs = 0;
  for (const target of args.targets) {
    if (target === "client") {
      const runs = Math.max(1, Math.ceil(args.runs / CLIENT_RUNS_DIVISOR));
      if (args.input === undefined) console.log(`client: ${runs} runs (--runs / ${CLIENT_RUNS_DIVISOR}) against a hostile broker on 127.0.0.1`);
      const c = await runClientTarget(runs, args.seed, args.input);
      inputs += c.runs;
      crashes += c.failed;
      continue;
    }
    if (target === "machine") {
      const m = fuzzMachine(args.runs, args.seed);
      inputs += m.runs;
      crashes += m.crashes.length;
      maxMs = Math.max(maxMs, m.maxMs);
      console.log(`machine: ${m.runs} inputs, max ${m.maxMs.toFixed(2)} ms per input, ${m.crashes.length} crashes`);
      for (const c of m.crashes) console.log(`  CRASH ${c.error}\n    ${c.input.slice(0, 400)}`);
      continue;
    }
    const stats = runTarget(target, args.runs, args.seed, { timeLimitMs: args.timeLimitMs, ...(args.input !== undefined ? { only: args.input } : {}) });
    inputs += stats.inputs + stats.extremes;
    crashes += stats.crashes.length;
    maxMs = Math.max(maxMs, stats.maxMs);
    console.log(`${target}: ${stats.inputs} inputs, max ${stats.maxMs.toFixed(2)} ms per input, ${stats.crashes.length} crashes`);
    console.log(detail(stats));
    for (const c of stats.crashes) {
      const name = `${c.target}-${c.seed}-${c.index < 0 ? "extreme" : c.index}.hex`;
      mkdirSync(crashDir, { recursive: true });
      const file = path.join(crashDir, name);
      writeFileSync(file, hexOf(c.input) + "\n");
      const hex = hexOf(c.input);
      console.log(`  CRASH ${c.kind}: ${c.message}`);
      console.log(`    input #${c.index} (${c.input.length} bytes) saved to ${path.relative(process.cwd(), file)}`);
      console.log(`    hex: ${hex.length > 400 ? `${hex.slice(0, 400)}… (${c.input.length} bytes)` : hex}`);
    }
  }
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`fuzz: ${args.targets.length} targets, ${inputs} inputs, max ${maxMs.toFixed(2)} ms per input, ${crashes} crashes in ${secs} s (seed ${args.seed})`);
  return crashes === 0 ? 0 : 1;
}

main().then((code) => (process.exitCode = code));
