// Bucket-level calls clients make before they do real work. Buckets are R2 bindings,
// fixed at deploy time, so creating or deleting one is refused.
import { S3Error } from "../../../s3/errors.ts";
import { renderListBuckets } from "../../../s3/listing-xml.ts";
import { touchesBucket } from "../keys/policy.ts";
import { requireBucket, type S3Call } from "./call.ts";
import { xmlResponse } from "./respond.ts";

/** R2 has no regions in the S3 sense; clients accept this constant. */
const CREATION_DATE = "2024-01-01T00:00:00.000Z";

function requireAnyGrant(call: S3Call): void {
  requireBucket(call);
  if (!touchesBucket(call.principal.policy, call.target.bucket)) {
    throw new S3Error("AccessDenied", `Access Denied: key ${call.principal.accessKeyId} has no grant on bucket ${call.target.bucket}`);
  }
}

export async function listBuckets(call: S3Call): Promise<Response> {
  const visible = [...call.buckets.keys()].filter((name) => touchesBucket(call.principal.policy, name));
  const xml = renderListBuckets(visible, { id: call.principal.accessKeyId, name: call.principal.name }, CREATION_DATE);
  return new Response(xml, { headers: { "content-type": "application/xml", "x-amz-request-id": call.requestId } });
}

export async function headBucket(call: S3Call): Promise<Response> {
  requireAnyGrant(call);
  requireBucket(call);
  return new Response(null, { status: 200, headers: { "x-amz-request-id": call.requestId, "x-amz-bucket-region": "auto" } });
}

export async function getBucketLocation(call: S3Call): Promise<Response> {
  requireAnyGrant(call);
  requireBucket(call);
  return xmlResponse("LocationConstraint", {}, { headers: { "x-amz-request-id": call.requestId } });
}

export async function getBucketVersioning(call: S3Call): Promise<Response> {
  requireAnyGrant(call);
  requireBucket(call);
  return xmlResponse("VersioningConfiguration", {}, { headers: { "x-amz-request-id": call.requestId } });
}

export async function createBucket(call: S3Call): Promise<Response> {
  if (call.buckets.has(call.target.bucket) && touchesBucket(call.principal.policy, call.target.bucket)) {
    throw new S3Error("BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it.", { details: { BucketName: call.target.bucket } });
  }
  throw new S3Error("NotImplemented", "Buckets are R2 bindings of the edge: add one to wrangler.toml and deploy");
}
