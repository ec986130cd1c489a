// One way to build an S3 client for the edge, R2's own endpoint or any S3 source: path
// style, the SDK's standard retry (backoff with jitter on 429, 5xx and network errors),
// no checksums of its own (the copier sends CRC32C and MD5 it computed), and a count of
// requests by operation so a run can report what it cost the destination.
import { S3Client } from "@aws-sdk/client-s3";
import type { Credentials } from "./config.ts";

export interface CountingClient {
  client: S3Client;
  /** Requests sent, by SDK command name (retries included). */
  requests: Map<string, number>;
}

export function createS3Client(options: { endpoint: string | undefined; region: string; credentials: Credentials | undefined; maxAttempts?: number }): CountingClient {
  const client = new S3Client({
    ...(options.endpoint ? { endpoint: options.endpoint, forcePathStyle: true } : {}),
    region: options.region,
    ...(options.credentials ? { credentials: options.credentials } : {}),
    maxAttempts: options.maxAttempts ?? 5,
    retryMode: "standard",
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  const requests = new Map<string, number>();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = String(context.commandName ?? "unknown").replace(/Command$/, "");
      requests.set(name, (requests.get(name) ?? 0) + 1);
      return next(args);
    },
    { step: "finalizeRequest", name: "ferryCountRequests", priority: "low" },
  );
  return { client, requests };
}

/** The HTTP status and S3 error code an SDK error carries, if any. */
export function s3Failure(error: unknown): { status: number | undefined; code: string } {
  const e = error as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } } | null;
  return { status: e?.$metadata?.httpStatusCode, code: e?.Code ?? e?.name ?? "" };
}

/** True for errors another attempt may fix: throttling, 5xx, timeouts, dropped connections. */
export function isTransient(error: unknown): boolean {
  const { status, code } = s3Failure(error);
  if (status !== undefined) return status === 429 || status >= 500 || status === 408;
  const errno = (error as NodeJS.ErrnoException | null)?.code ?? "";
  return /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EAI_AGAIN|ENOTFOUND|UND_ERR_.*|ERR_STREAM_PREMATURE_CLOSE)$/.test(errno) || /TimeoutError|RequestTimeout|NetworkingError|socket hang up/i.test(code);
}
