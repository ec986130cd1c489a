// ListObjectsV2 and ListObjects (v1) over R2's list, in S3's lexicographic order. The
// continuation token is R2's cursor; v1 markers and start-after resume after a key, and
// a marker that is a common prefix skips everything under it, as S3 does.
import { parseEncodingType, parseMaxKeys, renderListObjectsV1, renderListObjectsV2, type ListResult } from "../../../s3/listing-xml.ts";
import { authorize, requireBucket, type S3Call } from "./call.ts";

/** Sorts after every key that starts with what precedes it (UTF-8 byte order). */
const AFTER_EVERYTHING = "\u{10FFFF}";

interface ListInput {
  prefix: string;
  delimiter: string;
  limit: number;
  cursor?: string;
  startAfter?: string;
}

async function listPage(bucket: R2Bucket, input: ListInput): Promise<Pick<ListResult, "objects" | "commonPrefixes" | "isTruncated"> & { cursor?: string }> {
  if (input.limit === 0) return { objects: [], commonPrefixes: [], isTruncated: false };
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
    objects: result.objects.map((o) => ({ key: o.key, size: o.size, etag: o.httpEtag, lastModified: o.uploaded })),
    commonPrefixes: result.delimitedPrefixes,
    isTruncated: result.truncated,
    ...(result.truncated ? { cursor: result.cursor } : {}),
  };
}

function respond(call: S3Call, xml: Uint8Array): Response {
  return new Response(xml, { headers: { "content-type": "application/xml", "x-amz-request-id": call.requestId } });
}

export async function listObjectsV2(call: S3Call): Promise<Response> {
  const q = call.query;
  const prefix = q.get("prefix") ?? "";
  authorize(call, "list", call.target.bucket, prefix);
  const bucket = requireBucket(call);
  const encodingType = parseEncodingType(q.get("encoding-type"));
  const delimiter = q.get("delimiter") ?? "";
  const maxKeys = parseMaxKeys(q.get("max-keys"));
  const token = q.get("continuation-token") ?? undefined;
  const startAfter = q.get("start-after") ?? undefined;
  const page = await listPage(bucket, { prefix, delimiter, limit: maxKeys, ...(token ? { cursor: token } : {}), ...(startAfter ? { startAfter } : {}) });
  return respond(
    call,
    renderListObjectsV2(
      {
        bucket: call.target.bucket,
        prefix,
        delimiter,
        maxKeys,
        ...(encodingType ? { encodingType } : {}),
        ...page,
        ...(token ? { continuationToken: token } : {}),
        ...(page.cursor ? { nextContinuationToken: page.cursor } : {}),
        ...(startAfter ? { startAfter } : {}),
      },
      { fetchOwner: q.get("fetch-owner") === "true" },
    ),
  );
}

export async function listObjectsV1(call: S3Call): Promise<Response> {
  const q = call.query;
  const prefix = q.get("prefix") ?? "";
  authorize(call, "list", call.target.bucket, prefix);
  const bucket = requireBucket(call);
  const encodingType = parseEncodingType(q.get("encoding-type"));
  const delimiter = q.get("delimiter") ?? "";
  const maxKeys = parseMaxKeys(q.get("max-keys"));
  const marker = q.get("marker") ?? "";
  const page = await listPage(bucket, { prefix, delimiter, limit: maxKeys, ...(marker ? { startAfter: marker } : {}) });
  // S3 gives NextMarker only with a delimiter; clients use the last key otherwise.
  const last = [...page.objects.map((o) => o.key), ...page.commonPrefixes].sort().at(-1);
  return respond(
    call,
    renderListObjectsV1({
      bucket: call.target.bucket,
      prefix,
      delimiter,
      maxKeys,
      ...(encodingType ? { encodingType } : {}),
      ...page,
      marker,
      ...(page.isTruncated && delimiter && last ? { nextMarker: last } : {}),
    }),
  );
}
