/**
 * The three-node test cluster (scripts/cluster.sh) from a test file: ports, URLs, and the script itself. Test
 * files share the cluster through leases (`lease PID` / `release PID`): it is started for the first holder
 * unless it runs, and stopped after the last one, if a lease started it.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export const CLUSTER_PORTS = [5701, 5702, 5703] as const;

/** amqp:// URL of node `n` (1–3). */
export function clusterUrl(n: 1 | 2 | 3): string {
  return `amqp://guest:guest@127.0.0.1:${CLUSTER_PORTS[n - 1]}/`;
}

/** Runs `bash scripts/cluster.sh ARGS`; resolves with its standard output. */
export function cluster(args: readonly string[], timeoutMs = 150_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("bash", ["scripts/cluster.sh", ...args], { cwd: ROOT, timeout: timeoutMs, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err) reject(new Error(`scripts/cluster.sh ${args.join(" ")} failed: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}
