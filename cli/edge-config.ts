// Where the CLI finds the edge and its credentials: FERRY_EDGE_URL (default the local
// edge), the admin token from FERRY_ADMIN_TOKEN or ./.dev.vars, and the caller's key from
// FERRY_ACCESS_KEY_ID / FERRY_SECRET_ACCESS_KEY, falling back to the AWS_* variables.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CliError } from "./cli-error.ts";

export const DEFAULT_EDGE_URL = "http://127.0.0.1:8787";

export function edgeUrl(env: NodeJS.ProcessEnv = process.env): URL {
  const raw = env["FERRY_EDGE_URL"] ?? DEFAULT_EDGE_URL;
  try {
    const url = new URL(raw);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new TypeError("not http(s)");
    return url;
  } catch {
    throw new CliError(`FERRY_EDGE_URL is not an http(s) URL: ${raw}`);
  }
}

export function adminToken(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): string {
  const fromEnv = env["FERRY_ADMIN_TOKEN"];
  if (fromEnv) return fromEnv;
  const devVars = join(cwd, ".dev.vars");
  if (existsSync(devVars)) {
    const m = /^\s*FERRY_ADMIN_TOKEN\s*=\s*"?([^"\n]+)"?\s*$/m.exec(readFileSync(devVars, "utf8"));
    if (m?.[1]) return m[1];
  }
  throw new CliError("no admin token: set FERRY_ADMIN_TOKEN (or run in the checkout where `npm run edge` wrote .dev.vars)");
}

export function callerCredentials(env: NodeJS.ProcessEnv = process.env): { accessKeyId: string; secretAccessKey: string } {
  const accessKeyId = env["FERRY_ACCESS_KEY_ID"] ?? env["AWS_ACCESS_KEY_ID"];
  const secretAccessKey = env["FERRY_SECRET_ACCESS_KEY"] ?? env["AWS_SECRET_ACCESS_KEY"];
  if (!accessKeyId || !secretAccessKey) {
    throw new CliError("no key: set FERRY_ACCESS_KEY_ID and FERRY_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)");
  }
  return { accessKeyId, secretAccessKey };
}

/** Parses `30d`, `24h`, `90m`, `3600s` or a bare number of seconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+)\s*([smhdw]?)$/.exec(text.trim());
  if (!m) throw new CliError(`${flag} must be a duration like 90m, 24h, 7d or 3600 (seconds), got "${text}"`, { exitCode: 2 });
  const unit = { "": 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2] ?? ""] ?? 1;
  return Number(m[1]) * unit;
}
