// ListObjectsV2 and ListObjects (v1) over R2's list, in S3's lexicographic order. The
// continuation token is R2's cursor; v1 markers and start-after resume after a key, and
// a marker that is a common prefix skips everything under it, as S3 does.
import { S3Error } from "../../../s3/errors.ts";
import { uriEncode } from "../../../s3/sigv4.ts";
import type { XmlNode } from "../../../s3/xml.ts";
import { authorize, requireBucket, type S3Call } from "./call.ts";
import { xmlResponse } from "./respond.ts";

/** Sorts after every key that starts with what precedes it (UTF-8 byte order). */
const AFTER_EVERYTHING = "\u{10FFFF}";

function maxKeys(query: URLSearchParams): number {
  const raw = query.get("max-keys");
  if (raw === null) return 1000;
  if (!/^\d+$/.test(raw)) throw new S3Error("InvalidArgument", "Provided max-keys not an integer or within integer range", { details: { ArgumentName: "max-keys", ArgumentValue: raw } });
  return Math.min(Number(raw), 1000);
}

interface ListInput {
  prefix: string;
  delimiter: string;
  limit: number;
  cursor?: string;
  startAfter?: string;
}

interface ListPage {
  objects: R2Object[];
  prefixes: string[];
  truncated: boolean;
  cursor?: string;
}

async function listPage(bucket: R2Bucket, input: ListInput): Promise<ListPage> {
  if (input.limit === 0) return { objects: [], prefixes: [], truncated: false };
  let startAfter = input.startAfter;
  if (startAfter && input.delimiter && startAfter.endsWith(input.delimiter) && startAfter.startsWith(input.prefix)) startAfter += AFTER_EVERYTHING;
  const result = await bucket.list({
    prefix: input.prefix,
    limit: input.limit,
    ...(input.delimiter ? { delimiter: input.delimiter } : {}),
    ...(input.cursor ? { cursor: input.cursor } : {}),
    ...(startAfter && !input.cursor ? { startAfter } : {}),
  });
  return {
    objects: result.objects,
    prefixes: result.delimitedPrefixes,
    truncated: result.truncated,
    ...(result.truncated ? { cursor: result.cursor } : {}),
  };
}

function encoder(query: URLSearchParams): (text: string) => string {
  const type = query.get("encoding-type");
  if (type !== null && type !== "url") throw new S3Error("InvalidArgument", "Invalid Encoding Method specified in Request", { details: { ArgumentName: "encoding-type" } });
  return type === "url" ? (text) => uriEncode(text, { keepSlash: true }) : (text) => text;
}

function contents(objects: R2Object[], encode: (t: string) => string, owner: boolean): XmlNode[] {
  return objects.map((o) => ({
    Key: encode(o.key),
    LastModified: o.uploaded.toISOString(),
    ETag: o.httpEtag,
    Size: o.size,
    ...(owner ? { Owner: { ID: "ferry", DisplayName: "ferry" } } : {}),
    StorageClass: "STANDARD",
  }));
}

function authorizeList(call: S3Call, prefix: string): void {
  authorize(call, "list", call.target.bucket, prefix);
}

export async function listObjectsV2(call: S3Call): Promise<Response> {
  const q = call.query;
  const prefix = q.get("prefix") ?? "";
  authorizeList(call, prefix);
  const bucket = requireBucket(call);
  const encode = encoder(q);
  const delimiter = q.get("delimiter") ?? "";
  const limit = maxKeys(q);
  const token = q.get("continuation-token") ?? undefined;
  const startAfter = q.get("start-after") ?? undefined;
  const page = await listPage(bucket, { prefix, delimiter, limit, ...(token ? { cursor: token } : {}), ...(startAfter ? { startAfter } : {}) });
  return xmlResponse(
    "ListBucketResult",
    {
      Name: call.target.bucket,
      Prefix: encode(prefix),
      Delimiter: delimiter ? encode(delimiter) : undefined,
      MaxKeys: limit,
      EncodingType: q.get("encoding-type") ?? undefined,
      KeyCount: page.objects.length + page.prefixes.length,
      ContinuationToken: token,
      NextContinuationToken: page.cursor,
      StartAfter: startAfter ? encode(startAfter) : undefined,
      IsTruncated: page.truncated,
      Contents: contents(page.objects, encode, q.get("fetch-owner") === "true"),
      CommonPrefixes: page.prefixes.map((p) => ({ Prefix: encode(p) })),
    },
    { headers: { "x-amz-request-id": call.requestId } },
  );
}

export async function listObjectsV1(call: S3Call): Promise<Response> {
  const q = call.query;
  const prefix = q.get("prefix") ?? "";
  authorizeList(call, prefix);
  const bucket = requireBucket(call);
  const encode = encoder(q);
  const delimiter = q.get("delimiter") ?? "";
  const limit = maxKeys(q);
  const marker = q.get("marker") ?? "";
  const page = await listPage(bucket, { prefix, delimiter, limit, ...(marker ? { startAfter: marker } : {}) });
  // S3 gives NextMarker only with a delimiter; clients use the last key otherwise.
  const last = [...page.objects.map((o) => o.key), ...page.prefixes].sort().at(-1);
  return xmlResponse(
    "ListBucketResult",
    {
      Name: call.target.bucket,
      Prefix: encode(prefix),
      Marker: encode(marker),
      NextMarker: page.truncated && delimiter && last ? encode(last) : undefined,
      MaxKeys: limit,
      Delimiter: delimiter ? encode(delimiter) : undefined,
      EncodingType: q.get("encoding-type") ?? undefined,
      IsTruncated: page.truncated,
      Contents: contents(page.objects, encode, true),
      CommonPrefixes: page.prefixes.map((p) => ({ Prefix: encode(p) })),
    },
    { headers: { "x-amz-request-id": call.requestId } },
  );
}
