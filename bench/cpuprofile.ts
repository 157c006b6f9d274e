/**
 * Reads a V8 CPU profile (`node --cpu-prof`, or the inspector's Profiler.stop as client-worker.mjs writes
 * it) and ranks functions by self time, with locations in dist/ mapped back to src/ through tsc's source
 * maps. Also usable alone:
 *
 *   npx tsx bench/cpuprofile.ts FILE.cpuprofile [--top 30] [--messages N]   # bottom-up: self time
 *   npx tsx bench/cpuprofile.ts FILE.cpuprofile --tree 1 [--messages N]     # top-down, nodes ≥ 1 %
 *
 * Self time of a function is the samples whose top frame is that function, summed over every call site
 * (V8's "bottom-up" view). "total" is the samples with the function anywhere on the stack, counted once
 * per sample even when it recurses.
 *
 * Every sample counts as one sampling interval (the median gap between samples), not as its own gap: on a
 * loaded machine the process is sometimes descheduled for milliseconds, and weighting by the gap would
 * charge that wait to whichever function happened to be running when it was preempted.
 */
import { readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number; // 0-based
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionCost {
  name: string;
  /** file:line (1-based), mapped to src/ when a source map says where it came from. */
  where: string;
  selfUs: number;
  totalUs: number;
}

// ---------------------------------------------------------------------------------------------------------
// Source maps (only what tsc writes: one source per file, VLQ mappings)

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Per generated line: its segments as [generated column, source index, source line], in column order. */
function decodeMappings(mappings: string): number[][][] {
  const out: number[][][] = [];
  let source = 0;
  let srcLine = 0;
  let srcCol = 0;
  for (const line of mappings.split(";")) {
    const segments: number[][] = [];
    let genCol = 0;
    if (line !== "") {
      for (const seg of line.split(",")) {
        const fields: number[] = [];
        let value = 0;
        let shift = 0;
        for (const ch of seg) {
          const digit = B64.indexOf(ch);
          value += (digit & 31) << shift;
          if (digit & 32) shift += 5;
          else {
            fields.push(value & 1 ? -(value >>> 1) : value >>> 1);
            value = 0;
            shift = 0;
          }
        }
        genCol += fields[0]!;
        if (fields.length >= 4) {
          source += fields[1]!;
          srcLine += fields[2]!;
          srcCol += fields[3]!;
          segments.push([genCol, source, srcLine]);
        }
      }
    }
    out.push(segments);
  }
  return out;
}

type Mapper = (line: number, column: number) => string | undefined;
const mapCache = new Map<string, Mapper | null>();

function mapper(file: string): Mapper | null {
  if (mapCache.has(file)) return mapCache.get(file)!;
  let m: Mapper | null = null;
  const mapFile = `${file}.map`;
  if (existsSync(mapFile)) {
    const raw = JSON.parse(readFileSync(mapFile, "utf8")) as { sources: string[]; mappings: string };
    const lines = decodeMappings(raw.mappings);
    const dir = path.dirname(file);
    const name = (seg: number[]) => `${path.relative(process.cwd(), path.resolve(dir, raw.sources[seg[1]!]!))}:${seg[2]! + 1}`;
    m = (line, column) => {
      // the last segment at or before the column; else the nearest mapped line above
      const segs = lines[line] ?? [];
      let best: number[] | undefined;
      for (const seg of segs) if (seg[0]! <= column) best = seg;
      if (best ?? segs[0]) return name((best ?? segs[0])!);
      for (let l = line - 1; l >= 0 && l > line - 5; l--) {
        const above = lines[l]!;
        if (above.length > 0) return name(above[above.length - 1]!);
      }
      return undefined;
    };
  }
  mapCache.set(file, m);
  return m;
}

function locate(cf: CallFrame): string {
  if (!cf.url) return "";
  let file = cf.url;
  if (file.startsWith("file://")) file = fileURLToPath(file);
  if (file.startsWith("node:") || !path.isAbsolute(file)) return `${file}:${cf.lineNumber + 1}`;
  const mapped = mapper(file)?.(cf.lineNumber, cf.columnNumber);
  if (mapped) return mapped;
  const rel = path.relative(process.cwd(), file);
  return `${rel.replace(/^node_modules\//, "")}:${cf.lineNumber + 1}`;
}

// ---------------------------------------------------------------------------------------------------------
// Aggregation

/** The median gap between samples: what one sample stands for. */
function interval(profile: CpuProfile): number {
  const d = profile.timeDeltas.slice(1).sort((a, b) => a - b);
  return d[d.length >> 1] ?? 1000;
}

export function summarize(profile: CpuProfile): { totalUs: number; functions: FunctionCost[] } {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const key = (n: ProfileNode) => `${n.callFrame.functionName || "(anonymous)"}\u0000${locate(n.callFrame)}`;
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let totalUs = 0;
  const dt = interval(profile);
  for (let i = 0; i < profile.samples.length; i++) {
    totalUs += dt;
    let node = byId.get(profile.samples[i]!);
    if (!node) continue;
    const k = key(node);
    self.set(k, (self.get(k) ?? 0) + dt);
    const seen = new Set<string>();
    while (node) {
      const kk = key(node);
      if (!seen.has(kk)) {
        seen.add(kk);
        total.set(kk, (total.get(kk) ?? 0) + dt);
      }
      const p = parent.get(node.id);
      node = p === undefined ? undefined : byId.get(p);
    }
  }
  const functions: FunctionCost[] = [];
  for (const [k, t] of total) {
    const [name, where] = k.split("\u0000") as [string, string];
    functions.push({ name, where, selfUs: self.get(k) ?? 0, totalUs: t });
  }
  functions.sort((a, b) => b.selfUs - a.selfUs);
  return { totalUs, functions };
}

/** A plain-text table of the top functions by self time; `perMessage` adds µs per message columns. */
export function formatTop(profile: CpuProfile, top = 25, messages?: number): string {
  const { totalUs, functions } = summarize(profile);
  const rows = functions.filter((f) => f.name !== "(root)").slice(0, top);
  const lines = [
    `  ${(totalUs / 1000).toFixed(0)} ms of samples (every ${interval(profile)} µs)` + (messages ? ` over ${messages} messages (${(totalUs / messages).toFixed(2)} µs/msg incl. idle)` : ""),
    `  ${"self%".padStart(6)} ${"total%".padStart(7)}${messages ? ` ${"self µs/msg".padStart(11)}` : ""}  function — location`,
  ];
  for (const f of rows) {
    const pct = (x: number) => ((100 * x) / totalUs).toFixed(1).padStart(5) + "%";
    lines.push(
      `  ${pct(f.selfUs)} ${pct(f.totalUs).padStart(7)}${messages ? ` ${(f.selfUs / messages).toFixed(3).padStart(11)}` : ""}  ${f.name || "(anonymous)"} — ${f.where}`,
    );
  }
  return lines.join("\n");
}

/** Inclusive time of functions whose name or location matches, for "how much of the total is X". */
export function inclusive(profile: CpuProfile, match: RegExp): FunctionCost[] {
  return summarize(profile).functions.filter((f) => match.test(f.name) || match.test(f.where)).sort((a, b) => b.totalUs - a.totalUs);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const file = process.argv[2];
  if (!file) {
    console.error("usage: tsx bench/cpuprofile.ts FILE.cpuprofile [--top N] [--messages N] [--tree MIN_PCT]");
    process.exit(2);
  }
  const arg = (n: string) => {
    const i = process.argv.indexOf(`--${n}`);
    return i >= 0 ? Number(process.argv[i + 1]) : undefined;
  };
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const tree = arg("tree");
  console.log(tree !== undefined ? formatTree(profile, tree, arg("messages")) : formatTop(profile, arg("top") ?? 30, arg("messages")));
}

/**
 * The call tree top-down, merged by function, showing nodes with at least `minPct` of the non-idle time:
 * where the time under a function goes.
 */
export function formatTree(profile: CpuProfile, minPct = 1, messages?: number): string {
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const selfById = new Map<number, number>();
  let busy = 0;
  const dt = interval(profile);
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfById.set(id, (selfById.get(id) ?? 0) + dt);
    if (byId.get(id)?.callFrame.functionName !== "(idle)") busy += dt;
  }
  const totalOf = new Map<number, number>();
  const total = (id: number): number => {
    const cached = totalOf.get(id);
    if (cached !== undefined) return cached;
    const n = byId.get(id)!;
    let t = selfById.get(id) ?? 0;
    for (const c of n.children ?? []) t += total(c);
    totalOf.set(id, t);
    return t;
  };
  const lines = [`  busy ${(busy / 1000).toFixed(0)} ms${messages ? ` = ${(busy / messages).toFixed(2)} µs/msg` : ""} (idle excluded); total% of busy, self%`];
  const walk = (ids: number[], depth: number) => {
    // merge siblings that are the same function
    const groups = new Map<string, number[]>();
    for (const id of ids) {
      const n = byId.get(id)!;
      if (n.callFrame.functionName === "(idle)") continue;
      const k = `${n.callFrame.functionName || "(anonymous)"} — ${locate(n.callFrame)}`;
      groups.set(k, [...(groups.get(k) ?? []), id]);
    }
    const merged = [...groups].map(([k, g]) => ({ k, g, t: g.reduce((s, id) => s + total(id), 0), s: g.reduce((s, id) => s + (selfById.get(id) ?? 0), 0) }));
    merged.sort((a, b) => b.t - a.t);
    for (const m of merged) {
      if ((100 * m.t) / busy < minPct) continue;
      lines.push(`  ${"  ".repeat(depth)}${((100 * m.t) / busy).toFixed(1)}% ${((100 * m.s) / busy).toFixed(1)}%  ${m.k}`);
      walk(m.g.flatMap((id) => byId.get(id)!.children ?? []), depth + 1);
    }
  };
  const root = profile.nodes.find((n) => n.callFrame.functionName === "(root)") ?? profile.nodes[0]!;
  walk(root.children ?? [], 0);
  return lines.join("\n");
}
