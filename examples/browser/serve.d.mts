// Types for serve.mjs (used by test/browser/browser.test.ts).
import type { Server } from "node:http";

export interface StaticServer {
  readonly server: Server;
  readonly port: number;
  /** "http://127.0.0.1:PORT/" */
  readonly url: string;
  close(): Promise<void>;
}

/** Serves examples/browser at "/" and the compiled library directory `dist` at "/dist/". */
export function startStaticServer(options: { dist: string; port?: number; host?: string; root?: string }): Promise<StaticServer>;
