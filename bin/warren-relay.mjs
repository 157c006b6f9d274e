#!/usr/bin/env node
// warren-relay: the WebSocket-to-TCP bridge that lets browsers reach RabbitMQ (see src/relay/relay.ts).
// Runs the compiled relay from dist/ (`npm run build`); it needs nothing but Node itself.
import { main } from "../dist/relay/cli.js";

main(process.argv.slice(2)).then((result) => {
  if (typeof result === "number") process.exitCode = result;
}, (e) => {
  console.error(`warren-relay: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
