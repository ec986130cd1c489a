// A real `ferry agent` process for tests: started through the CLI, waited for until its
// status route answers, stopped with SIGTERM or killed with SIGKILL.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { projectRoot } from "../../scripts/lib/edge-process.ts";
import { freePort, type TestKey } from "./local-edge.ts";

export interface AgentProcess {
  url: string;
  port: number;
  child: ChildProcess;
  output(): string;
  status(): Promise<Record<string, unknown>>;
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
}

export interface AgentProcessOptions {
  edgeUrl: string;
  key: TestKey;
  cacheDir: string;
  port?: number;
  args?: string[];
  env?: Record<string, string>;
  /** Resolve as soon as the process runs (for start-up failure tests). */
  waitReady?: boolean;
}

export async function startAgentProcess(options: AgentProcessOptions): Promise<AgentProcess> {
  const port = options.port ?? (await freePort());
  const child = spawn(
    process.execPath,
    [join(projectRoot, "bin", "ferry.js"), "agent", "--edge", options.edgeUrl, "--cache-dir", options.cacheDir, "--listen", `127.0.0.1:${port}`, ...(options.args ?? [])],
    {
      cwd: projectRoot,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, FERRY_ACCESS_KEY_ID: options.key.accessKeyId, FERRY_SECRET_ACCESS_KEY: options.key.secretAccessKey, ...options.env },
    },
  );
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const agent: AgentProcess = {
    url,
    port,
    child,
    output: () => output,
    async status() {
      return (await (await fetch(`${url}/_ferry/status`)).json()) as Record<string, unknown>;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      return exited;
    },
    async kill9() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
  if (options.waitReady === false) return agent;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`agent exited with ${child.exitCode}:\n${output}`);
    // The CLI prints this once everything (listener and mount) is up.
    if (output.includes("ferry agent serving")) return agent;
    await new Promise((r) => setTimeout(r, 100));
  }
  await agent.kill9();
  throw new Error(`agent did not answer on ${url}:\n${output}`);
}
