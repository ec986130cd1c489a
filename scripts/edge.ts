// `npm run edge [-- --port N] [--state-dir DIR]`: the edge under wrangler dev on 127.0.0.1 with local R2 and
// Durable Objects persisted in .wrangler/state, secrets in .dev.vars (made on first run).
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ensureDevSecrets } from "./lib/dev-vars.ts";
import { type EdgeProcess, projectRoot, startEdge } from "./lib/edge-process.ts";

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
// Handlers go in before wrangler starts: the edge can answer before startEdge() returns, and a
// signal in that window must still stop wrangler and workerd, not kill this process alone
// (seen in CI as an exit by SIGINT instead of 0). A signal during start stops right after it.
let stopping = false;
let edge: EdgeProcess | undefined;
const stop = (): void => {
  if (edge) void edge.stop().then(() => process.exit(0));
};
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    stopping = true;
    stop();
  });
}
edge = await startEdge({
  port,
  persistDir: values["state-dir"],
  onOutput: (line) => process.stdout.write(`${line}\n`),
});
if (stopping) stop();
else process.stdout.write(`ferry edge listening on ${edge.url} (admin token in .dev.vars)\n`);
// wrangler exiting on its own (not because we stopped it) is a failure worth its code.
edge.child.once("exit", (code) => {
  if (!stopping) process.exit(code ?? 1);
});
