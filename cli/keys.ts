// `ferry keys create|list|revoke`: the edge's admin API from the command line.
import { parseArgs } from "node:util";
import { CliError, UsageError } from "./cli-error.ts";
import { parseGrant, type Grant } from "../worker/src/keys/policy.ts";
import { adminToken, edgeUrl, parseDuration } from "./edge-config.ts";

const USAGE = `usage:
  ferry keys create --name NAME --grant ACTIONS:BUCKET[/PREFIX] [--grant …] [--cluster NAME …] [--expires 30d] [--json]
  ferry keys list [--json]
  ferry keys revoke ACCESS_KEY_ID
ACTIONS is a comma list of read, list, write, delete (or all), e.g. --grant read,list:datasets/robots/`;

interface KeyView {
  accessKeyId: string;
  name: string;
  grants: Array<{ bucket: string; prefix: string; actions: string[] }>;
  clusters: string[];
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  status: string;
  secretAccessKey?: string;
}

async function admin(method: string, path: string, body?: unknown): Promise<unknown> {
  const url = new URL(`/_ferry/admin${path}`, edgeUrl());
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${adminToken()}`, ...(body ? { "content-type": "application/json" } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
  } catch (error) {
    throw new CliError(`cannot reach the edge at ${url.origin}: ${error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error)}`);
  }
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CliError(`the edge answered ${response.status} with something that is not JSON`);
  }
  if (!response.ok) {
    const error = (json as { error?: { code?: string; message?: string } }).error;
    throw new CliError(`edge refused: ${error?.code ?? response.status}: ${error?.message ?? text}`);
  }
  return json;
}

function parseGrantFlag(text: string): Grant {
  try {
    return parseGrant(text);
  } catch (error) {
    throw new UsageError(`--${error instanceof Error ? error.message : String(error)}`);
  }
}

function describe(key: KeyView): string {
  const grants = key.grants.map((g) => `${g.actions.join(",")}:${g.bucket}/${g.prefix}`).join(" ");
  return `${key.accessKeyId}  ${key.status.padEnd(7)}  ${key.name}  ${grants}${key.clusters.length ? `  clusters=${key.clusters.join(",")}` : ""}${key.expiresAt ? `  expires=${key.expiresAt}` : ""}`;
}

async function create(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { name: { type: "string" }, grant: { type: "string", multiple: true }, cluster: { type: "string", multiple: true }, expires: { type: "string" }, json: { type: "boolean", default: false } },
    strict: true,
  });
  if (!values.name) throw new UsageError("keys create needs --name NAME");
  if (!values.grant?.length) throw new UsageError("keys create needs at least one --grant ACTIONS:BUCKET[/PREFIX]");
  const key = (await admin("POST", "/keys", {
    name: values.name,
    grants: values.grant.map(parseGrantFlag),
    clusters: values.cluster ?? [],
    ...(values.expires ? { expiresInSeconds: parseDuration(values.expires, "--expires") } : {}),
  })) as KeyView;
  if (values.json) {
    process.stdout.write(JSON.stringify({ accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey, name: key.name, grants: key.grants, clusters: key.clusters, expiresAt: key.expiresAt }) + "\n");
    return;
  }
  process.stdout.write(`${describe(key)}\n\nexport FERRY_ACCESS_KEY_ID=${key.accessKeyId}\nexport FERRY_SECRET_ACCESS_KEY=${key.secretAccessKey}\n\nThe secret is shown only now; store it somewhere safe.\n`);
}

async function list(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { json: { type: "boolean", default: false } }, strict: true });
  const { keys } = (await admin("GET", "/keys")) as { keys: KeyView[] };
  if (values.json) process.stdout.write(JSON.stringify(keys) + "\n");
  else process.stdout.write(keys.length ? keys.map(describe).join("\n") + "\n" : "no keys\n");
}

async function revoke(argv: string[]): Promise<void> {
  const { positionals } = parseArgs({ args: argv, options: {}, allowPositionals: true, strict: true });
  const [id] = positionals;
  if (!id || positionals.length !== 1) throw new UsageError("usage: ferry keys revoke ACCESS_KEY_ID");
  const key = (await admin("DELETE", `/keys/${encodeURIComponent(id)}`)) as KeyView;
  process.stdout.write(`revoked ${key.accessKeyId} (${key.name}); edges stop accepting it within 60 s\n`);
}

export async function run(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === "create") return create(rest);
  if (sub === "list") return list(rest);
  if (sub === "revoke") return revoke(rest);
  if (sub === "--help" || sub === "-h") {
    process.stdout.write(USAGE + "\n");
    return;
  }
  throw new UsageError(USAGE);
}
