// PutObject and CopyObject (within and across edge buckets; metadata COPY or REPLACE).
import { checkPreconditions } from "../../../s3/conditionals.ts";
import { checksumHeaderName } from "../../../s3/checksums.ts";
import { S3Error } from "../../../s3/errors.ts";
import { authorize, requireBucket, type S3Call } from "./call.ts";
import { httpMetadataFromHeaders, userMetadataFromHeaders } from "./metadata.ts";
import { openUploadBody, writeFromBody } from "./request-body.ts";
import { xmlResponse } from "./respond.ts";
import { checkWritableKey } from "./target.ts";

/** R2's (and S3's) limit for a single PUT. */
export const MAX_SINGLE_PUT_BYTES = 5 * 1024 ** 3;

export async function putObject(call: S3Call): Promise<Response> {
  const { bucket: bucketName, key } = call.target;
  authorize(call, "write", bucketName, key);
  const bucket = requireBucket(call);
  checkWritableKey(key);
  const httpMetadata = httpMetadataFromHeaders(call.request.headers);
  const customMetadata = userMetadataFromHeaders(call.request.headers);
  const body = openUploadBody(call.request, call.signed, call.verified);
  if (body.length > MAX_SINGLE_PUT_BYTES) throw new S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.", { details: { MaxSizeAllowed: MAX_SINGLE_PUT_BYTES } });
  const object = await writeFromBody(body, (stream) => bucket.put(key, stream, { httpMetadata, customMetadata }));
  call.audit.bytesIn = body.length;
  const headers = new Headers({ etag: object.httpEtag, "x-amz-request-id": call.requestId });
  const checksum = body.checksum();
  if (checksum) headers.set(checksumHeaderName(checksum.algorithm), checksum.value);
  return new Response(null, { status: 200, headers });
}

/** `x-amz-copy-source: bucket/key` or `/bucket/key`, URL-encoded. */
export function parseCopySource(header: string): { bucket: string; key: string } {
  if (header.includes("?versionId=")) throw new S3Error("NotImplemented", "Copying a specific version is not supported: Ferry buckets are not versioned");
  let decoded: string;
  try {
    decoded = decodeURIComponent(header.replace(/^\//, ""));
  } catch (error) {
    throw new S3Error("InvalidArgument", "Invalid copy source encoding", { details: { ArgumentName: "x-amz-copy-source" }, cause: error });
  }
  const slash = decoded.indexOf("/");
  if (slash < 1 || slash === decoded.length - 1) throw new S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey", { details: { ArgumentName: "x-amz-copy-source" } });
  return { bucket: decoded.slice(0, slash), key: decoded.slice(slash + 1) };
}

function copySourceConditions(headers: Headers) {
  return {
    ifMatch: headers.get("x-amz-copy-source-if-match"),
    ifNoneMatch: headers.get("x-amz-copy-source-if-none-match"),
    ifModifiedSince: headers.get("x-amz-copy-source-if-modified-since"),
    ifUnmodifiedSince: headers.get("x-amz-copy-source-if-unmodified-since"),
  };
}

export async function copyObject(call: S3Call): Promise<Response> {
  const { bucket: destName, key: destKey } = call.target;
  const source = parseCopySource(call.request.headers.get("x-amz-copy-source") ?? "");
  authorize(call, "write", destName, destKey);
  authorize(call, "read", source.bucket, source.key);
  const dest = requireBucket(call);
  const from = requireBucket(call, source.bucket);
  checkWritableKey(destKey);
  const directive = (call.request.headers.get("x-amz-metadata-directive") ?? "COPY").toUpperCase();
  if (directive !== "COPY" && directive !== "REPLACE") throw new S3Error("InvalidArgument", "Unknown metadata directive.", { details: { ArgumentName: "x-amz-metadata-directive" } });
  if (directive === "COPY" && source.bucket === destName && source.key === destKey) {
    throw new S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata.");
  }
  const object = await from.get(source.key);
  if (!object) throw new S3Error("NoSuchKey", "The specified key does not exist.", { details: { Key: source.key } });
  try {
    checkPreconditions(copySourceConditions(call.request.headers), { etag: object.etag, lastModified: object.uploaded }, { forRead: false });
  } catch (error) {
    await object.body.cancel();
    throw error;
  }
  const options: R2PutOptions =
    directive === "REPLACE"
      ? { httpMetadata: httpMetadataFromHeaders(call.request.headers), customMetadata: userMetadataFromHeaders(call.request.headers) }
      : { httpMetadata: object.httpMetadata ?? {}, customMetadata: object.customMetadata ?? {} };
  const fixed = new FixedLengthStream(object.size);
  const piping = object.body.pipeTo(fixed.writable);
  const [written] = await Promise.all([dest.put(destKey, fixed.readable, options), piping]);
  call.audit.bytesIn = object.size;
  return xmlResponse("CopyObjectResult", { LastModified: written.uploaded.toISOString(), ETag: written.httpEtag }, { headers: { "x-amz-request-id": call.requestId } });
}
