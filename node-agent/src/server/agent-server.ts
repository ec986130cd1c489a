// The agent's HTTP listener: Ferry's own routes under /_ferry (status, warm jobs) and
// /metrics, everything else to the S3 endpoint. Admin answers are JSON.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { WarmJobs } from "../warm/warm-jobs.ts";
import type { RequestMetrics } from "./request-metrics.ts";
import type { S3Endpoint } from "./s3-endpoint.ts";

export interface AgentServerOptions {
  s3: S3Endpoint;
  metrics: RequestMetrics;
  warm: WarmJobs;
  status: () => Record<string, unknown>;
  /** Cluster warms when the agent is in a pool (`ferry warm --cluster`). */
  poolWarm?: () => { start(bucket: string, prefix: string, pin: boolean): unknown; get(id: string): unknown } | undefined;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader("content-type", "application/json");
  res.setHeader("content-length", Buffer.byteLength(text));
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error("body too large");
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function admin(req: IncomingMessage, res: ServerResponse, path: string, options: AgentServerOptions): Promise<void> {
  if (path === "/metrics" && req.method === "GET") {
    const text = await options.metrics.render();
    res.setHeader("content-type", options.metrics.registry.contentType);
    res.end(text);
    return;
  }
  if (path === "/_ferry/status" && req.method === "GET") return json(res, 200, options.status());
  if (path === "/_ferry/warm" && req.method === "GET") return json(res, 200, { jobs: options.warm.list() });
  if (path === "/_ferry/warm" && req.method === "POST") {
    let body: Record<string, unknown>;
    try {
      body = (await readJson(req)) as Record<string, unknown>;
    } catch {
      return json(res, 400, { error: { code: "InvalidJSON", message: "the body must be JSON: {bucket, prefix, pin}" } });
    }
    if (typeof body["bucket"] !== "string" || !body["bucket"] || (body["prefix"] !== undefined && typeof body["prefix"] !== "string")) {
      return json(res, 400, { error: { code: "InvalidInput", message: "bucket (string) is required; prefix must be a string" } });
    }
    const job = await options.warm.start({ bucket: body["bucket"], prefix: typeof body["prefix"] === "string" ? body["prefix"] : "", pin: body["pin"] === true });
    return json(res, 202, job);
  }
  if (path.startsWith("/_ferry/pool/warm")) return poolWarm(req, res, path, options);
  const warmId = /^\/_ferry\/warm\/([\w-]+)$/.exec(path)?.[1];
  if (warmId && req.method === "GET") {
    const job = options.warm.get(warmId);
    return job ? json(res, 200, job) : json(res, 404, { error: { code: "NotFound", message: `no warm job ${warmId}` } });
  }
  return json(res, 404, { error: { code: "NotFound", message: `no route ${req.method ?? ""} ${path}` } });
}

async function poolWarm(req: IncomingMessage, res: ServerResponse, path: string, options: AgentServerOptions): Promise<void> {
  const warm = options.poolWarm?.();
  if (!warm) return json(res, 409, { error: { code: "NotPooled", message: "this agent is not in a pool: start it with --cluster or --peers" } });
  if (path === "/_ferry/pool/warm" && req.method === "POST") {
    let body: Record<string, unknown>;
    try {
      body = (await readJson(req)) as Record<string, unknown>;
    } catch {
      return json(res, 400, { error: { code: "InvalidJSON", message: "the body must be JSON: {bucket, prefix, pin}" } });
    }
    if (typeof body["bucket"] !== "string" || !body["bucket"] || (body["prefix"] !== undefined && typeof body["prefix"] !== "string") || (body["pin"] !== undefined && typeof body["pin"] !== "boolean")) {
      return json(res, 400, { error: { code: "InvalidInput", message: "bucket (string) is required; prefix must be a string; pin a boolean" } });
    }
    return json(res, 202, warm.start(body["bucket"], typeof body["prefix"] === "string" ? body["prefix"] : "", body["pin"] === true));
  }
  const id = /^\/_ferry\/pool\/warm\/([\w-]+)$/.exec(path)?.[1];
  const job = id && req.method === "GET" ? warm.get(id) : undefined;
  return job ? json(res, 200, job) : json(res, 404, { error: { code: "NotFound", message: `no pool warm ${req.method ?? ""} ${path}` } });
}

export function createAgentServer(options: AgentServerOptions): Server {
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (path === "/metrics" || path.startsWith("/_ferry/")) {
      admin(req, res, path, options).catch((error: unknown) => json(res, 500, { error: { code: "InternalError", message: error instanceof Error ? error.message : String(error) } }));
      return;
    }
    options.s3.handle(req, res);
  });
  return server;
}
