// `ferry agent`: runs the node agent in the foreground until SIGTERM/SIGINT. Settings come
// from flags, FERRY_* variables and one JSON config file (--config), in that order.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ConfigError, resolveConfig, SETTING_NAMES, type RawSettings, type SettingName } from "../node-agent/src/config.ts";
import { startAgent } from "../node-agent/src/main.ts";
import { CliError, UsageError } from "./cli-error.ts";

const USAGE = `usage: ferry agent --edge URL --cache-dir DIR [--cache-size 500GiB] [--min-free 5%]
                   [--listen 127.0.0.1:8788] [--mount DIR] [--mount-driver auto|kernel|libfuse]
                   [--mount-mode passthrough|page-cache] [--passthrough-budget 10%|SIZE]
                   [--memory-cache 256MiB] [--metadata-ttl 60|indefinite]
                   [--block-size 4MiB] [--local-key ID:SECRET] [--config agent.json]
                   [--cluster NAME | --peers HOST:PORT,…] [--peer-listen HOST:PORT]
                   [--peer-advertise HOST:PORT] [--heartbeat 3s] [--peer-timeout 10s]
                   [--near-cache 10%|SIZE] [--replicas 1] [--handoff] [--handoff-deadline 30s]
The node's key comes from FERRY_ACCESS_KEY_ID / FERRY_SECRET_ACCESS_KEY; with --peers,
the shared peer secret from FERRY_CLUSTER_SECRET.`;

const FLAG_SETTINGS = SETTING_NAMES.filter((n) => n !== "access-key-id" && n !== "secret-access-key" && n !== "cluster-secret");

function readConfigFile(path: string | undefined): RawSettings {
  if (!path) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new UsageError(`--config ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new UsageError(`--config ${path}: must be a JSON object of settings`);
  const out: RawSettings = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (!(SETTING_NAMES as string[]).includes(name)) throw new UsageError(`--config ${path}: unknown setting "${name}" (known: ${SETTING_NAMES.join(", ")})`);
    out[name as SettingName] = String(value);
  }
  return out;
}

export async function run(argv: string[]): Promise<void> {
  // --handoff is a switch on the command line (a true/false string in env and file).
  const options: Record<string, { type: "string" | "boolean" }> = Object.fromEntries(FLAG_SETTINGS.map((n) => [n, { type: n === "handoff" ? ("boolean" as const) : ("string" as const) }]));
  const { values } = parseArgs({ args: argv, options: { ...options, config: { type: "string" }, help: { type: "boolean" } }, strict: true });
  const given = values as Record<string, string | boolean | undefined>;
  if (given["help"]) {
    process.stdout.write(USAGE + "\n");
    return;
  }
  const flags: RawSettings = {};
  for (const name of FLAG_SETTINGS) {
    const value = given[name];
    if (typeof value === "string") flags[name] = value;
    else if (value === true) flags[name] = "true";
  }
  let config;
  try {
    config = resolveConfig({ flags, env: process.env, file: readConfigFile(typeof given["config"] === "string" ? given["config"] : undefined) });
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
  let agent;
  try {
    // The FUSE binding loads only when a mount is asked for.
    const mount = config.mount ? (await import("../node-agent/src/server/mount-view.ts")).mountView : undefined;
    agent = await startAgent(config, mount ? { mount } : {});
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new CliError(`agent failed to start: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  process.stdout.write(`ferry agent serving S3 on ${agent.url}${config.mount ? ` and files under ${config.mount}` : ""}\n`);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      agent.stop().then(resolve, (error: unknown) => {
        agent.logger.error("stop failed", { error: String(error) });
        resolve();
      });
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
}
