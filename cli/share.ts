// `ferry share s3://bucket/key [--expires 24h] [--put]`: a presigned URL made locally with
// the caller's key (standard SigV4 query form: curl, browsers and any HTTP client use it).
import { parseArgs } from "node:util";
import { MAX_PRESIGN_SECONDS, presignUrl } from "../s3/sigv4.ts";
import { UsageError } from "./cli-error.ts";
import { callerCredentials, edgeUrl, parseDuration } from "./edge-config.ts";

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { expires: { type: "string", default: "24h" }, put: { type: "boolean", default: false } },
    allowPositionals: true,
    strict: true,
  });
  const [target] = positionals;
  const m = target ? /^s3:\/\/([^/]+)\/(.+)$/.exec(target) : null;
  if (!m || positionals.length !== 1) throw new UsageError("usage: ferry share s3://BUCKET/KEY [--expires 24h] [--put]");
  const expiresSeconds = parseDuration(values.expires, "--expires");
  if (expiresSeconds < 1 || expiresSeconds > MAX_PRESIGN_SECONDS) throw new UsageError(`--expires must be between 1s and 7d (${MAX_PRESIGN_SECONDS} seconds), as in S3`);
  const [, bucket = "", key = ""] = m;
  const base = edgeUrl();
  const path = `/${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
  const url = await presignUrl({ method: values.put ? "PUT" : "GET", url: new URL(path, base), credentials: callerCredentials(), expiresSeconds });
  process.stdout.write(`${url.toString()}\n`);
}
