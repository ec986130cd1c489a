// GetObject and HeadObject: single ranges (206 / 416), conditionals (304 / 412) and
// response-content-* overrides. Unconditional whole-object GETs cost one R2 call;
// ranged or conditional ones read metadata first and pin the ETag for the body read.
import { checkPreconditions, preconditionsFromHeaders } from "../../../s3/conditionals.ts";
import { S3Error } from "../../../s3/errors.ts";
import { manifestPrefixOf } from "../../../s3/manifest.ts";
import { allows } from "../keys/policy.ts";
import { contentRange, parseRangeHeader, resolveRange, type ByteRange } from "../../../s3/range.ts";
import { authorize, requireBucket, type S3Call } from "./call.ts";
import { applyResponseOverrides, objectHeaders } from "./metadata.ts";

function noSuchKey(key: string): S3Error {
  return new S3Error("NoSuchKey", "The specified key does not exist.", { details: { Key: key } });
}

function hasBody(object: R2Object | R2ObjectBody): object is R2ObjectBody {
  return "body" in object;
}

function hasConditions(headers: Headers): boolean {
  return ["if-match", "if-none-match", "if-modified-since", "if-unmodified-since"].some((h) => headers.has(h));
}

function respond(call: S3Call, object: R2Object, body: ReadableStream | null, range: ByteRange | undefined): Response {
  const headers = objectHeaders(object);
  applyResponseOverrides(headers, call.query);
  headers.set("x-amz-request-id", call.requestId);
  const length = range ? range.length : object.size;
  headers.set("content-length", String(length));
  if (range) headers.set("content-range", contentRange(range, object.size));
  call.audit.bytesOut = call.request.method === "HEAD" ? 0 : length;
  return new Response(call.request.method === "HEAD" ? null : body, { status: range ? 206 : 200, headers, encodeBody: "manual" });
}

export async function getObject(call: S3Call): Promise<Response> {
  const { bucket: bucketName, key } = call.target;
  // A dataset manifest is a listing: whoever may list the dataset may read its manifest.
  const datasetPrefix = manifestPrefixOf(key);
  if (datasetPrefix === undefined || !allows(call.principal.policy, "list", bucketName, datasetPrefix)) authorize(call, "read", bucketName, key);
  const bucket = requireBucket(call);
  const rangeRequest = parseRangeHeader(call.request.headers.get("range"));
  const head = call.request.method === "HEAD";
  if (!rangeRequest && !hasConditions(call.request.headers)) {
    const object = head ? await bucket.head(key) : await bucket.get(key);
    if (!object) throw noSuchKey(key);
    return respond(call, object, hasBody(object) ? object.body : null, undefined);
  }
  // The object may change between the two calls; the ETag pin turns that into a retry.
  for (let attempt = 0; attempt < 3; attempt++) {
    const meta = await bucket.head(key);
    if (!meta) throw noSuchKey(key);
    checkPreconditions(preconditionsFromHeaders(call.request.headers), { etag: meta.etag, lastModified: meta.uploaded });
    const range = rangeRequest ? resolveRange(rangeRequest, meta.size) : undefined;
    if (head) return respond(call, meta, null, range);
    const object = await bucket.get(key, { ...(range ? { range } : {}), onlyIf: { etagMatches: meta.etag } });
    if (object && hasBody(object)) return respond(call, object, object.body, range);
  }
  throw new S3Error("SlowDown", "The object kept changing while it was read; retry");
}
