#!/usr/bin/env node
// Entry point of the `ferry` CLI. Ferry's sources are TypeScript run directly by a Node
// that strips types (>= 22.18). On an older Node (Node 20 is common on GPU hosts) this
// file re-runs itself with the Node that the `node` devDependency put in node_modules.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
// libuv's default of 4 threads allows 4 disk reads in flight: the agent reads pieces of
// cached blocks from NVMe in the thread pool, and an NVMe drive needs tens in flight to
// reach its speed. Set before anything starts the pool (it is sized once, on first use).
process.env.UV_THREADPOOL_SIZE ??= "64";
const [major, minor] = process.versions.node.split(".").map(Number);
const stripsTypes = major > 22 || (major === 22 && minor >= 18);
// V8 flags the agent runs with. Each chunk a socket reads is a fresh ArrayBuffer outside V8's
// heap, and by default V8 runs a full mark-compact whenever such memory has grown by some tens
// of MiB, though scavenges already free these short-lived buffers: a cold read paid for a full
// GC about every 32 MiB (`--trace-gc` during bench:cold's S3 pass: 12 mark-compacts per 381
// MiB, 1 with this flag; bench:cold's agent CPU per MiB and agent-s3 ratio are in the README).
// V8 reads it only when the heap is set up, so it must be on the command line: the agent
// re-executes itself with it (same process).
const AGENT_V8_FLAGS = ["--external-memory-accounted-in-global-limit"];
const v8Flags = process.argv[2] === "agent" ? AGENT_V8_FLAGS : [];

if (stripsTypes && v8Flags.some((flag) => !process.execArgv.includes(flag)) && typeof process.execve === "function") {
  // execve keeps the pid: a supervisor's signals (and a test's kill -9) still reach the agent.
  try {
    process.execve(process.execPath, [process.execPath, ...v8Flags, ...process.execArgv, ...process.argv.slice(1)], process.env);
  } catch {
    // Not replaced (say, an exec refused by a sandbox): the agent runs as it is, without the flags.
  }
}
if (stripsTypes) {
  // Compiled (and type-stripped) modules are cached on disk between runs: a replicate run
  // starts in about half the time (measured 0.69 → 0.37 s to its first request), which counts
  // for short scheduled runs. NODE_COMPILE_CACHE still picks the folder; NODE_DISABLE_COMPILE_CACHE=1 turns it off.
  (await import("node:module")).enableCompileCache?.();
  await import(join(root, "cli", "main.ts"));
} else {
  const bundled = join(root, "node_modules", "node", "bin", "node");
  if (!existsSync(bundled)) {
    process.stderr.write(
      `ferry: needs Node.js >= 22.18 (this is ${process.versions.node}); run \`npm ci\` in ${root} to get one\n`,
    );
    process.exit(1);
  }
  const child = spawn(bundled, [...v8Flags, join(root, "cli", "main.ts"), ...process.argv.slice(2)], {
    stdio: "inherit",
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(signal, () => child.kill(signal));
  }
  child.on("exit", (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}
