// The edge Worker: Ferry's own routes live under /_ferry (never a bucket name: S3 bucket
// names cannot start with "_"); everything else is the S3 API over R2.
import { Hono } from "hono";
import { adminRoutes, type AdminEnv } from "./admin/admin-routes.ts";
import { clusterRoutes } from "./cluster/cluster-routes.ts";
import { bucketsOf, type Env } from "./env.ts";
import { KeyService, type ResolvedKey } from "./keys/key-service.ts";
import { handleS3 } from "./s3/handler.ts";

export { ClusterMembership } from "./cluster/cluster-membership.ts";
export { KeyRegistry } from "./keys/key-registry.ts";
export { UploadLedger } from "./multipart/upload-ledger.ts";

// Per-isolate cache of resolved keys: the one piece of module state, on purpose; it is
// what lets an isolate verify signatures without a Durable Object round trip each time.
const keyCache = new Map<string, { key: ResolvedKey | null; at: number }>();

const app = new Hono<AdminEnv>();
app.use("*", async (c, next) => {
  c.set("keys", new KeyService(c.env, keyCache));
  await next();
});
app.get("/_ferry/health", (c) => c.json({ ok: true, buckets: [...bucketsOf(c.env).keys()] }));
app.route("/_ferry/admin", adminRoutes());
app.route("/_ferry/clusters", clusterRoutes());
app.all("/_ferry/*", (c) => c.json({ error: { code: "NotFound", message: `no route ${c.req.method} ${c.req.path}` } }, 404));
app.all("*", (c) => handleS3(c.req.raw, c.env, c.get("keys"), c.executionCtx));

export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Response | Promise<Response> {
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
