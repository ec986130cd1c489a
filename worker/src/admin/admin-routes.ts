// The admin API under /_ferry/admin: issue, list and revoke keys. Guarded by a bearer
// token held as a Worker secret (FERRY_ADMIN_TOKEN), compared in constant time; without
// that secret every admin request is refused. Answers are JSON, errors too.
import { Hono } from "hono";
import type { Env } from "../env.ts";
import { bucketsOf } from "../env.ts";
import type { KeyRecord } from "../keys/key-registry.ts";
import type { KeyService } from "../keys/key-service.ts";
import { ACTIONS, isAction, type Grant, type Policy } from "../keys/policy.ts";

export type AdminEnv = { Bindings: Env; Variables: { keys: KeyService } };

/** Keys may live at most ten years; an expiry is optional. */
const MAX_EXPIRY_SECONDS = 10 * 365 * 24 * 3600;

export class AdminInputError extends Error {
  override readonly name = "AdminInputError";
}

function publicView(record: KeyRecord, now: Date) {
  const expired = record.expiresAt !== null && Date.parse(record.expiresAt) <= now.getTime();
  return {
    accessKeyId: record.accessKeyId,
    name: record.name,
    grants: record.policy.grants,
    clusters: record.policy.clusters,
    createdAt: record.createdAt,
    expiresAt: record.expiresAt,
    revokedAt: record.revokedAt,
    status: record.revokedAt ? "revoked" : expired ? "expired" : "active",
  };
}

function parseGrants(value: unknown, buckets: Set<string>): Grant[] {
  if (!Array.isArray(value) || value.length === 0) throw new AdminInputError("grants must be a non-empty array of {bucket, prefix, actions}");
  return value.map((raw: unknown, i) => {
    const g = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
    if (typeof g["bucket"] !== "string" || !buckets.has(g["bucket"])) {
      throw new AdminInputError(`grants[${i}].bucket must be one of the edge's buckets: ${[...buckets].join(", ")}`);
    }
    const prefix = g["prefix"] ?? "";
    if (typeof prefix !== "string") throw new AdminInputError(`grants[${i}].prefix must be a string`);
    const actions = g["actions"];
    if (!Array.isArray(actions) || actions.length === 0 || !actions.every((a) => typeof a === "string" && isAction(a))) {
      throw new AdminInputError(`grants[${i}].actions must list some of: ${ACTIONS.join(", ")}`);
    }
    return { bucket: g["bucket"], prefix, actions: [...new Set(actions as Grant["actions"])] };
  });
}

function parseCreateKey(body: unknown, buckets: Set<string>, now: Date): { name: string; policy: Policy; expiresAt: string | null } {
  const input = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  const name = input["name"];
  if (typeof name !== "string" || !/^[\w.@:-]{1,128}$/.test(name)) throw new AdminInputError("name must be 1-128 characters of letters, digits and . _ - @ :");
  const clusters = input["clusters"] ?? [];
  if (!Array.isArray(clusters) || !clusters.every((c) => typeof c === "string" && /^[a-z0-9][a-z0-9-]{0,62}$/.test(c))) {
    throw new AdminInputError("clusters must be a list of cluster names (lower-case letters, digits and -)");
  }
  const expiresIn = input["expiresInSeconds"];
  if (expiresIn !== undefined && expiresIn !== null && (typeof expiresIn !== "number" || !Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > MAX_EXPIRY_SECONDS)) {
    throw new AdminInputError(`expiresInSeconds must be a whole number from 1 to ${MAX_EXPIRY_SECONDS}`);
  }
  return {
    name,
    policy: { grants: parseGrants(input["grants"], buckets), clusters: clusters as string[] },
    expiresAt: typeof expiresIn === "number" ? new Date(now.getTime() + expiresIn * 1000).toISOString() : null,
  };
}

/** Compares SHA-256 digests in constant time, so neither content nor length leaks. */
async function tokensEqual(given: string, expected: string): Promise<boolean> {
  const digest = async (text: string) => new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  const [a, b] = await Promise.all([digest(given), digest(expected)]);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

export function adminRoutes(): Hono<AdminEnv> {
  const admin = new Hono<AdminEnv>();
  admin.use("*", async (c, next) => {
    const token = c.env.FERRY_ADMIN_TOKEN;
    if (!token) return c.json({ error: { code: "AdminDisabled", message: "FERRY_ADMIN_TOKEN is not set on this edge: admin requests are refused" } }, 403);
    const given = /^Bearer (.+)$/i.exec(c.req.header("authorization") ?? "")?.[1];
    if (!given) return c.json({ error: { code: "Unauthorized", message: "send Authorization: Bearer <FERRY_ADMIN_TOKEN>" } }, 401);
    if (!(await tokensEqual(given, token))) return c.json({ error: { code: "Unauthorized", message: "the admin token is not valid" } }, 401);
    await next();
  });

  admin.post("/keys", async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return c.json({ error: { code: "InvalidJSON", message: "the request body must be JSON" } }, 400);
    }
    const now = new Date();
    const input = parseCreateKey(body, new Set(bucketsOf(c.env).keys()), now);
    const issued = await c.get("keys").issue({ ...input, now });
    console.log(JSON.stringify({ msg: "key issued", accessKeyId: issued.record.accessKeyId, name: input.name }));
    return c.json({ ...publicView(issued.record, now), secretAccessKey: issued.secretAccessKey }, 201);
  });

  admin.get("/keys", async (c) => {
    const now = new Date();
    return c.json({ keys: (await c.get("keys").list()).map((r) => publicView(r, now)) });
  });

  admin.delete("/keys/:id", async (c) => {
    const now = new Date();
    const record = await c.get("keys").revoke(c.req.param("id"), now);
    if (!record) return c.json({ error: { code: "NoSuchKey", message: `no key ${c.req.param("id")}` } }, 404);
    console.log(JSON.stringify({ msg: "key revoked", accessKeyId: record.accessKeyId }));
    return c.json(publicView(record, now));
  });

  admin.onError((error, c) => {
    if (error instanceof AdminInputError) return c.json({ error: { code: "InvalidInput", message: error.message } }, 400);
    console.error(JSON.stringify({ msg: "admin internal error", error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) }));
    return c.json({ error: { code: "InternalError", message: error instanceof Error ? error.message : "internal error" } }, 500);
  });
  admin.notFound((c) => c.json({ error: { code: "NotFound", message: `no admin route ${c.req.method} ${c.req.path}` } }, 404));
  return admin;
}
