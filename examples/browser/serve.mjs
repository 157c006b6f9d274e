// Serves the browser example without a bundler, and starts a relay next to it.
//
//   npm run build                       # compiles src/ to dist/ (ES modules, .ts imports rewritten to .js)
//   node examples/browser/serve.mjs     # http://127.0.0.1:8080/ and a relay on ws://127.0.0.1:15670/
//
// Options: --port 8080, --relay-port 15670, --upstream 127.0.0.1:5672, --no-relay (run `npx warren-relay`
// yourself). Everything binds to 127.0.0.1 only. The relay admits only this page's origin.
//
// `startStaticServer` is also what test/browser/browser.test.ts uses, with its own build directory.
import { createReadStream, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

/** The file under `root` that `rel` names, or undefined when it would leave `root` or does not exist. */
function fileUnder(root, rel) {
  const base = resolve(root);
  const path = resolve(base, "." + sep + rel);
  if (path !== base && !path.startsWith(base + sep)) return undefined;
  try {
    return statSync(path).isFile() ? path : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A static server for the example: "/" is examples/browser, "/dist/" is the compiled library (`dist`).
 * Resolves with { server, port, url, close() }.
 */
export async function startStaticServer({ dist, port = 0, host = "127.0.0.1", root = HERE } = {}) {
  const server = createServer((req, res) => {
    const { pathname } = new URL(req.url ?? "/", "http://localhost");
    let rel;
    try {
      rel = decodeURIComponent(pathname);
    } catch {
      rel = "";
    }
    const file = rel.startsWith("/dist/") ? fileUnder(dist, rel.slice("/dist/".length)) : fileUnder(root, rel === "/" ? "index.html" : rel.slice(1));
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { Allow: "GET, HEAD" }).end();
      return;
    }
    if (!file || !(extname(file) in TYPES)) {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
      return;
    }
    res.writeHead(200, { "Content-Type": TYPES[extname(file)], "Cache-Control": "no-store" });
    if (req.method === "HEAD") res.end();
    else createReadStream(file).pipe(res);
  });
  await new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, host, ok);
  });
  const actual = server.address().port;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${actual}/`;
  return {
    server,
    port: actual,
    url,
    close: () => new Promise((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    }),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "8080" },
      "relay-port": { type: "string", default: "15670" },
      upstream: { type: "string", default: "127.0.0.1:5672" },
      "no-relay": { type: "boolean", default: false },
    },
  });
  const dist = join(HERE, "..", "..", "dist");
  if (!fileUnder(dist, "adapters/websocket.js")) {
    console.error("dist/adapters/websocket.js is missing: run `npm run build` first.");
    process.exit(1);
  }
  const site = await startStaticServer({ dist, port: Number(values.port) });
  let relayUrl = `ws://127.0.0.1:${values["relay-port"]}/`;
  if (!values["no-relay"]) {
    const { Relay } = await import("../../dist/relay/relay.js");
    const relay = new Relay({ upstreams: [values.upstream], origins: [site.url.replace(/\/$/, "")], log: (l) => console.error(`relay: ${l}`) });
    relayUrl = (await relay.listen(Number(values["relay-port"]), "127.0.0.1")).url;
  }
  console.log(`Open ${site.url}?relay=${encodeURIComponent(relayUrl)}`);
}
