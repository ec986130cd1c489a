// A real edge for tests: `wrangler dev` on a free loopback port with its own state dir
// and random secrets, plus helpers to issue keys through the admin API.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEdge, type EdgeProcess } from "../../scripts/lib/edge-process.ts";

export interface TestKey {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface LocalEdge {
  url: string;
  adminToken: string;
  process: EdgeProcess;
  /** Issues a key; grants like "read,list:datasets/robots/". */
  createKey(grants: string[], options?: { name?: string; expiresInSeconds?: number; clusters?: string[] }): Promise<TestKey>;
  revokeKey(accessKeyId: string): Promise<void>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function grantObject(text: string): { bucket: string; prefix: string; actions: string[] } {
  const [actions = "", target = ""] = text.split(/:(.*)/s);
  const slash = target.indexOf("/");
  return {
    bucket: slash < 0 ? target : target.slice(0, slash),
    prefix: slash < 0 ? "" : target.slice(slash + 1),
    actions: actions === "all" ? ["read", "list", "write", "delete"] : actions.split(","),
  };
}

export async function startLocalEdge(): Promise<LocalEdge> {
  const stateDir = mkdtempSync(join(tmpdir(), "ferry-edge-"));
  const adminToken = randomBytes(18).toString("base64url");
  const vars = { FERRY_ADMIN_TOKEN: adminToken, FERRY_KEY_ENCRYPTION_KEY: randomBytes(32).toString("base64") };
  const process = await startEdge({ port: await freePort(), persistDir: stateDir, vars, startTimeoutMs: 90_000 });
  const admin = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const response = await fetch(`${process.url}/_ferry/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json: unknown = await response.json();
    if (!response.ok) throw new Error(`admin ${method} ${path} failed: ${response.status} ${JSON.stringify(json)}`);
    return json;
  };
  return {
    url: process.url,
    adminToken,
    process,
    async createKey(grants, options = {}) {
      const key = (await admin("POST", "/keys", { name: options.name ?? "test", grants: grants.map(grantObject), ...(options.expiresInSeconds ? { expiresInSeconds: options.expiresInSeconds } : {}), clusters: options.clusters ?? [] })) as TestKey;
      return { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey };
    },
    async revokeKey(accessKeyId) {
      await admin("DELETE", `/keys/${accessKeyId}`);
    },
    async stop() {
      await process.stop();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
