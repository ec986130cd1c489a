// Runs the edge under `wrangler dev` (local R2, Durable Objects) as a child process group,
// waits until it answers, and stops it with the whole group so no workerd is orphaned.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const projectRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface EdgeOptions {
  port: number;
  /** Where local R2 and Durable Object state persists. */
  persistDir: string;
  /** Secrets passed as vars (tests); omit to let wrangler read .dev.vars. */
  vars?: Record<string, string>;
  /** Receives wrangler's output lines; default: discarded. */
  onOutput?: (line: string) => void;
  startTimeoutMs?: number;
}

export interface EdgeProcess {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function startEdge(options: EdgeOptions): Promise<EdgeProcess> {
  mkdirSync(options.persistDir, { recursive: true });
  const args = [
    join(projectRoot, "node_modules", "wrangler", "bin", "wrangler.js"),
    "dev",
    "--config", join(projectRoot, "wrangler.toml"),
    "--ip", "127.0.0.1",
    "--port", String(options.port),
    "--inspector-port", "0",
    "--persist-to", options.persistDir,
    "--show-interactive-dev-session=false",
    "--log-level", "log",
  ];
  for (const [name, value] of Object.entries(options.vars ?? {})) args.push("--var", `${name}:${value}`);
  const child = spawn(process.execPath, args, {
    cwd: projectRoot,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", WRANGLER_SEND_ERROR_REPORTS: "false", NO_UPDATE_NOTIFIER: "1", FORCE_COLOR: "0" },
  });
  const output: string[] = [];
  const onData = (data: Buffer) => {
    for (const line of data.toString("utf8").split("\n")) {
      if (!line.trim()) continue;
      output.push(line);
      if (output.length > 200) output.shift();
      options.onOutput?.(line);
    }
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${options.port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-(child.pid ?? 0), "SIGTERM");
    } catch {
      // Already gone.
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-(child.pid ?? 0), "SIGKILL");
      } catch {
        // Already gone.
      }
    }, 5000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}:\n${output.join("\n")}`);
    try {
      const response = await fetch(`${url}/_ferry/health`);
      if (response.ok) return { url, child, stop };
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  await stop();
  throw new Error(`wrangler dev did not answer on ${url} within the timeout:\n${output.join("\n")}`);
}
