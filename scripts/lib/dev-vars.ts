// The local edge's secrets, kept in .dev.vars (git-ignored) beside wrangler.toml, the file
// `wrangler dev` reads. Random on first run; never a built-in default.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";

export interface DevSecrets {
  FERRY_ADMIN_TOKEN: string;
  FERRY_KEY_ENCRYPTION_KEY: string;
}

export function readDevVars(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  const vars: Record<string, string> = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const m = /^\s*([A-Z0-9_]+)\s*=\s*"?([^"]*)"?\s*$/.exec(line);
    if (m?.[1] && m[2] !== undefined) vars[m[1]] = m[2];
  }
  return vars;
}

/** Reads the secrets, adding any that are missing (mode 0600). */
export function ensureDevSecrets(path: string): DevSecrets {
  const vars = readDevVars(path);
  const secrets: DevSecrets = {
    FERRY_ADMIN_TOKEN: vars["FERRY_ADMIN_TOKEN"] ?? randomBytes(24).toString("base64url"),
    FERRY_KEY_ENCRYPTION_KEY: vars["FERRY_KEY_ENCRYPTION_KEY"] ?? randomBytes(32).toString("base64"),
  };
  if (vars["FERRY_ADMIN_TOKEN"] === undefined || vars["FERRY_KEY_ENCRYPTION_KEY"] === undefined) {
    const merged = { ...vars, ...secrets };
    writeFileSync(path, Object.entries(merged).map(([k, v]) => `${k}="${v}"`).join("\n") + "\n", { mode: 0o600 });
  }
  return secrets;
}
