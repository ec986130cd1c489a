// `npm run edge [-- --port N] [--state-dir DIR]`: the edge under wrangler dev on 127.0.0.1 with local R2 and
// Durable Objects persisted in .wrangler/state, secrets in .dev.vars (made on first run).
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ensureDevSecrets } from "./lib/dev-vars.ts";
import { projectRoot, startEdge } from "./lib/edge-process.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8787" },
    "state-dir": { type: "string", default: join(projectRoot, ".wrangler", "state") },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write(`edge: --port must be a TCP port number, got ${values.port}\n`);
  process.exit(2);
}
ensureDevSecrets(join(projectRoot, ".dev.vars"));
const edge = await startEdge({
  port,
  persistDir: values["state-dir"],
  onOutput: (line) => process.stdout.write(`${line}\n`),
});
process.stdout.write(`ferry edge listening on ${edge.url} (admin token in .dev.vars)\n`);
let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    stopping = true;
    void edge.stop().then(() => process.exit(0));
  });
}
// wrangler exiting on its own (not because we stopped it) is a failure worth its code.
edge.child.once("exit", (code) => {
  if (!stopping) process.exit(code ?? 1);
});
