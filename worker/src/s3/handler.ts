// The S3 request pipeline: request id → target → authentication → operation (which
// authorises against the key's policy) → response, with one audit line per request.
// Signatures and secrets never reach the log; errors become S3 XML here and only here.
import { S3Error } from "../../../s3/errors.ts";
import { authenticate } from "../auth/authenticate.ts";
import { bucketsOf, type Env } from "../env.ts";
import type { KeyService } from "../keys/key-service.ts";
import type { AuditRecord } from "./call.ts";
import { errorResponse, newRequestId } from "./respond.ts";
import { routeS3 } from "./router.ts";
import { parseTarget } from "./target.ts";

/** Larger request header sections are refused before any work (S3 allows 8 KiB). */
export const MAX_HEADER_BYTES = 8 * 1024;

function headerBytes(headers: Headers): number {
  let total = 0;
  for (const [name, value] of headers) total += name.length + value.length + 4;
  return total;
}

export function logAudit(record: AuditRecord, startedMs: number): void {
  console.log(JSON.stringify({ msg: "s3 request", ...record, durationMs: Date.now() - startedMs }));
}

export async function handleS3(request: Request, env: Env, keys: KeyService, ctx: { waitUntil(promise: Promise<unknown>): void }): Promise<Response> {
  const started = Date.now();
  const now = new Date();
  const requestId = newRequestId();
  const audit: AuditRecord = { requestId, operation: "unknown" };
  let response: Response;
  try {
    if (headerBytes(request.headers) > MAX_HEADER_BYTES) {
      throw new S3Error("RequestHeaderSectionTooLarge", `Your request header section exceeds the maximum allowed size of ${MAX_HEADER_BYTES} bytes`);
    }
    const url = new URL(request.url);
    const target = parseTarget(url);
    audit.bucket = target.bucket || undefined;
    audit.key = target.key || undefined;
    const operation = routeS3(request.method, target.bucket, target.key, url.searchParams, request.headers);
    audit.operation = operation.name;
    const auth = await authenticate(request, url, keys, now);
    audit.accessKeyId = auth.principal.accessKeyId;
    response = await operation.handle({
      request,
      url,
      query: url.searchParams,
      env,
      buckets: bucketsOf(env),
      target,
      ...auth,
      requestId,
      now,
      audit,
      waitUntil: (p) => ctx.waitUntil(p),
    });
  } catch (error) {
    if (!(error instanceof S3Error)) console.error(JSON.stringify({ msg: "s3 internal error", requestId, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) }));
    else audit.errorCode = error.code;
    response = errorResponse(error, requestId, request.method);
  }
  audit.status = response.status;
  logAudit(audit, started);
  return withoutRecompression(response);
}

/**
 * S3 serves stored bytes as stored. Cloudflare (and miniflare) gzip responses of "text"
 * content types for clients that accept it, which drops Content-Length on object reads
 * and hands clients that set Accept-Encoding themselves (rclone) a gzipped error document.
 * A response that already names its encoding is left alone by that layer.
 */
function withoutRecompression(response: Response): Response {
  if (!response.headers.has("content-encoding")) response.headers.set("content-encoding", "identity");
  if (!response.headers.has("cache-control")) response.headers.set("cache-control", "no-transform");
  return response;
}
