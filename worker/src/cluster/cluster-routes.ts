// The cluster routes under /_ferry/clusters/NAME: join/heartbeat (POST …/members), leave
// (DELETE …/members/ID) and the cluster's view (GET). Every call is SigV4-signed with a
// node key whose policy lists the cluster; JSON bodies are signed by their SHA-256, so a
// heartbeat cannot be altered in flight. The peer credential is only ever returned here.
import { Hono, type Context } from "hono";
import { S3Error } from "../../../s3/errors.ts";
import { sha256Hex } from "../../../s3/sigv4.ts";
import type { AdminEnv } from "../admin/admin-routes.ts";
import { authenticate } from "../auth/authenticate.ts";
import type { MemberInput, MemberView } from "./cluster-membership.ts";

const CLUSTER_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const MIN_TTL_MS = 1_000;
const MAX_TTL_MS = 10 * 60_000;

class ClusterInputError extends Error {
  override readonly name = "ClusterInputError";
}

type Ctx = Context<AdminEnv>;

function errorJson(c: Ctx, status: number, code: string, message: string): Response {
  return c.json({ error: { code, message } }, status as 400);
}

/** Authenticates the caller and checks the cluster is in its key's policy. */
async function member(c: Ctx, body: string): Promise<string> {
  const name = c.req.param("name") ?? "";
  if (!CLUSTER_NAME.test(name)) throw new ClusterInputError(`cluster name "${name}" must be lower-case letters, digits, ".", "_" or "-"`);
  const { principal, signed } = await authenticate(c.req.raw, new URL(c.req.url), c.get("keys"), new Date());
  if (!principal.policy.clusters.includes(name)) throw new S3Error("AccessDenied", `key ${principal.accessKeyId} may not join cluster ${name}`);
  if (signed.form !== "header" || (body !== "" && signed.payloadHash !== (await sha256Hex(body)))) {
    throw new S3Error("AccessDenied", "cluster calls must be signed in the Authorization header over the body's SHA-256");
  }
  return name;
}

function membership(c: Ctx, name: string) {
  return c.env.CLUSTER_MEMBERSHIP.get(c.env.CLUSTER_MEMBERSHIP.idFromName(name));
}

function parseMember(value: unknown): MemberInput {
  const v = (typeof value === "object" && value !== null ? value : {}) as Record<string, unknown>;
  const peer = v["peer"];
  if (typeof peer !== "string" || !/^[^\s/]+:\d{1,5}$/.test(peer)) throw new ClusterInputError("peer must be HOST:PORT");
  const capacity = v["capacityBytes"];
  if (typeof capacity !== "number" || !Number.isSafeInteger(capacity) || capacity < 0) throw new ClusterInputError("capacityBytes must be a whole number ≥ 0");
  const ttl = v["ttlMs"];
  if (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl < MIN_TTL_MS || ttl > MAX_TTL_MS) throw new ClusterInputError(`ttlMs must be from ${MIN_TTL_MS} to ${MAX_TTL_MS}`);
  const figures: Record<string, number> = {};
  const raw = v["figures"];
  if (raw !== undefined && (typeof raw !== "object" || raw === null)) throw new ClusterInputError("figures must be an object of numbers");
  for (const [k, n] of Object.entries((raw ?? {}) as Record<string, unknown>).slice(0, 64)) if (typeof n === "number" && Number.isFinite(n)) figures[k] = n;
  return { id: peer, peer, capacityBytes: capacity, ttlMs: Math.round(ttl), figures };
}

/** Cluster totals: origin amplification is bytes fetched from R2 ÷ distinct bytes read. */
export function clusterView(name: string, members: MemberView[]) {
  const sum = (k: string) => members.reduce((s, m) => s + (m.figures[k] ?? 0), 0);
  const totals = { edgeBytes: sum("edgeBytes"), peerBytes: sum("peerBytes"), localBytes: sum("localBytes"), distinctBytes: sum("distinctBytes"), fallbackBlocks: sum("fallbackBlocks") };
  return { cluster: name, members, totals, originAmplification: totals.distinctBytes ? totals.edgeBytes / totals.distinctBytes : null };
}

async function guarded(c: Ctx, body: string, handler: (name: string) => Promise<Response>): Promise<Response> {
  try {
    return await handler(await member(c, body));
  } catch (error) {
    if (error instanceof S3Error) return errorJson(c, error.status, error.code, error.message);
    if (error instanceof ClusterInputError) return errorJson(c, 400, "InvalidInput", error.message);
    throw error;
  }
}

export function clusterRoutes() {
  const app = new Hono<AdminEnv>();
  app.post("/:name/members", async (c) => {
    const body = await c.req.text();
    return guarded(c, body, async (name) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        throw new ClusterInputError("the body must be JSON: {peer, capacityBytes, ttlMs, figures}");
      }
      const input = parseMember(parsed);
      const { members, credential } = await membership(c, name).heartbeat(input, Date.now());
      return c.json({ cluster: name, memberId: input.id, credential, members: members.map(({ id, peer, capacityBytes }) => ({ id, peer, capacityBytes })) });
    });
  });
  app.delete("/:name/members/:id", (c) =>
    guarded(c, "", async (name) => c.json({ cluster: name, left: await membership(c, name).leave(c.req.param("id")) })),
  );
  app.get("/:name", (c) => guarded(c, "", async (name) => c.json(clusterView(name, await membership(c, name).members(Date.now())))));
  return app;
}
