// Multipart upload over R2's binding: Create, UploadPart, Complete, Abort, ListParts and
// ListMultipartUploads. The ledger (one Durable Object per bucket) knows open uploads
// and their parts; Complete checks order, ETags and sizes before R2 assembles anything.
import { S3Error } from "../../../s3/errors.ts";
import { unquoteEtag } from "../../../s3/conditionals.ts";
import { parseCompleteMultipartUpload } from "../../../s3/xml.ts";
import { checksumHeaderName } from "../../../s3/checksums.ts";
import { authorize, requireBucket, type S3Call } from "../s3/call.ts";
import { httpMetadataFromHeaders, userMetadataFromHeaders } from "../s3/metadata.ts";
import { openUploadBody, writeFromBody } from "../s3/request-body.ts";
import { xmlResponse } from "../s3/respond.ts";
import { checkWritableKey } from "../s3/target.ts";
import type { UploadRow } from "./upload-ledger.ts";

/** S3's minimum size of every part but the last. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
export const MAX_PART_BYTES = 5 * 1024 ** 3;
export const MAX_PARTS = 10_000;

function ledger(call: S3Call) {
  return call.env.UPLOAD_LEDGER.get(call.env.UPLOAD_LEDGER.idFromName(call.target.bucket));
}

function noSuchUpload(uploadId: string): S3Error {
  return new S3Error("NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.", { details: { UploadId: uploadId } });
}

async function openUpload(call: S3Call): Promise<UploadRow> {
  const uploadId = call.query.get("uploadId") ?? "";
  const upload = uploadId ? await ledger(call).get(uploadId) : null;
  if (!upload || upload.key !== call.target.key) throw noSuchUpload(uploadId);
  return upload;
}

export async function createMultipartUpload(call: S3Call): Promise<Response> {
  const { bucket: bucketName, key } = call.target;
  authorize(call, "write", bucketName, key);
  const bucket = requireBucket(call);
  checkWritableKey(key);
  const upload = await bucket.createMultipartUpload(key, {
    httpMetadata: httpMetadataFromHeaders(call.request.headers),
    customMetadata: userMetadataFromHeaders(call.request.headers),
  });
  await ledger(call).begin({ uploadId: upload.uploadId, key, initiatedAt: call.now.toISOString(), accessKeyId: call.principal.accessKeyId });
  return xmlResponse("InitiateMultipartUploadResult", { Bucket: bucketName, Key: key, UploadId: upload.uploadId }, { headers: { "x-amz-request-id": call.requestId } });
}

function partNumberOf(call: S3Call): number {
  const raw = call.query.get("partNumber") ?? "";
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > MAX_PARTS) throw new S3Error("InvalidArgument", `Part number must be an integer between 1 and ${MAX_PARTS}, inclusive`, { details: { ArgumentName: "partNumber", ArgumentValue: raw } });
  return n;
}

export async function uploadPart(call: S3Call): Promise<Response> {
  const { bucket: bucketName, key } = call.target;
  authorize(call, "write", bucketName, key);
  const bucket = requireBucket(call);
  const partNumber = partNumberOf(call);
  const upload = await openUpload(call);
  const body = openUploadBody(call.request, call.signed, call.verified);
  if (body.length > MAX_PART_BYTES) throw new S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.", { details: { MaxSizeAllowed: MAX_PART_BYTES } });
  const r2upload = bucket.resumeMultipartUpload(key, upload.uploadId);
  const part = await writeFromBody(body, (stream) => r2upload.uploadPart(partNumber, stream));
  const checksum = body.checksum();
  await ledger(call).recordPart(upload.uploadId, { partNumber, etag: part.etag, size: body.length, uploadedAt: call.now.toISOString(), checksum: checksum ? `${checksum.algorithm}:${checksum.value}` : null });
  call.audit.bytesIn = body.length;
  const headers = new Headers({ etag: `"${part.etag}"`, "x-amz-request-id": call.requestId });
  if (checksum) headers.set(checksumHeaderName(checksum.algorithm), checksum.value);
  return new Response(null, { status: 200, headers });
}

export async function completeMultipartUpload(call: S3Call): Promise<Response> {
  const { bucket: bucketName, key } = call.target;
  authorize(call, "write", bucketName, key);
  const bucket = requireBucket(call);
  const upload = await openUpload(call);
  const requested = parseCompleteMultipartUpload(await call.request.text());
  for (let i = 1; i < requested.length; i++) {
    if ((requested[i]?.partNumber ?? 0) <= (requested[i - 1]?.partNumber ?? 0)) {
      throw new S3Error("InvalidPartOrder", "The list of parts was not in ascending order. Parts must be ordered by part number.", { details: { UploadId: upload.uploadId } });
    }
  }
  const stored = new Map((await ledger(call).parts(upload.uploadId, 0, MAX_PARTS)).parts.map((p) => [p.partNumber, p]));
  requested.forEach((part, index) => {
    const known = stored.get(part.partNumber);
    if (!known || unquoteEtag(part.etag) !== unquoteEtag(known.etag)) {
      throw new S3Error("InvalidPart", "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not have matched the part's entity tag.", { details: { UploadId: upload.uploadId, PartNumber: part.partNumber } });
    }
    if (index < requested.length - 1 && known.size < MIN_PART_BYTES) {
      throw new S3Error("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.", { details: { PartNumber: part.partNumber, ProposedSize: known.size, MinSizeAllowed: MIN_PART_BYTES } });
    }
  });
  const r2upload = bucket.resumeMultipartUpload(key, upload.uploadId);
  let object: R2Object;
  try {
    object = await r2upload.complete(requested.map((p) => ({ partNumber: p.partNumber, etag: unquoteEtag(stored.get(p.partNumber)?.etag ?? "") })));
  } catch (error) {
    // R2 refuses parts of unequal size (all but the last must match): say so in S3's terms.
    throw new S3Error("InvalidPart", `R2 could not assemble the parts: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  await ledger(call).finish(upload.uploadId);
  return xmlResponse(
    "CompleteMultipartUploadResult",
    { Location: `${call.url.origin}/${bucketName}/${encodeURIComponent(key)}`, Bucket: bucketName, Key: key, ETag: object.httpEtag },
    { headers: { "x-amz-request-id": call.requestId } },
  );
}

export async function abortMultipartUpload(call: S3Call): Promise<Response> {
  const { bucket: bucketName, key } = call.target;
  authorize(call, "write", bucketName, key);
  const bucket = requireBucket(call);
  const upload = await openUpload(call);
  await bucket.resumeMultipartUpload(key, upload.uploadId).abort();
  await ledger(call).finish(upload.uploadId);
  return new Response(null, { status: 204, headers: { "x-amz-request-id": call.requestId } });
}

function boundedInt(call: S3Call, name: string, fallback: number, max: number): number {
  const raw = call.query.get(name);
  if (raw === null) return fallback;
  if (!/^\d+$/.test(raw)) throw new S3Error("InvalidArgument", `${name} must be a non-negative integer`, { details: { ArgumentName: name, ArgumentValue: raw } });
  return Math.min(Number(raw), max);
}

export async function listParts(call: S3Call): Promise<Response> {
  const { bucket: bucketName, key } = call.target;
  authorize(call, "write", bucketName, key);
  requireBucket(call);
  const upload = await openUpload(call);
  const marker = boundedInt(call, "part-number-marker", 0, MAX_PARTS);
  const max = boundedInt(call, "max-parts", 1000, 1000);
  const page = await ledger(call).parts(upload.uploadId, marker, max);
  return xmlResponse(
    "ListPartsResult",
    {
      Bucket: bucketName,
      Key: key,
      UploadId: upload.uploadId,
      PartNumberMarker: marker,
      NextPartNumberMarker: page.parts.at(-1)?.partNumber ?? marker,
      MaxParts: max,
      IsTruncated: page.truncated,
      Part: page.parts.map((p) => ({ PartNumber: p.partNumber, LastModified: p.uploadedAt, ETag: `"${p.etag}"`, Size: p.size })),
      StorageClass: "STANDARD",
    },
    { headers: { "x-amz-request-id": call.requestId } },
  );
}

export async function listMultipartUploads(call: S3Call): Promise<Response> {
  const bucketName = call.target.bucket;
  const prefix = call.query.get("prefix") ?? "";
  authorize(call, "write", bucketName, prefix);
  requireBucket(call);
  const keyMarker = call.query.get("key-marker") ?? "";
  const uploadIdMarker = call.query.get("upload-id-marker") ?? "";
  const max = boundedInt(call, "max-uploads", 1000, 1000);
  const page = await ledger(call).list({ prefix, keyMarker, uploadIdMarker, max });
  const last = page.uploads.at(-1);
  return xmlResponse(
    "ListMultipartUploadsResult",
    {
      Bucket: bucketName,
      KeyMarker: keyMarker,
      UploadIdMarker: uploadIdMarker,
      NextKeyMarker: page.truncated ? last?.key : undefined,
      NextUploadIdMarker: page.truncated ? last?.uploadId : undefined,
      Prefix: prefix,
      MaxUploads: max,
      IsTruncated: page.truncated,
      Upload: page.uploads.map((u) => ({ Key: u.key, UploadId: u.uploadId, Initiated: u.initiatedAt, StorageClass: "STANDARD" })),
    },
    { headers: { "x-amz-request-id": call.requestId } },
  );
}
