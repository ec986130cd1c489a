// What every S3 operation handler receives: the request, who signed it, where it points,
// and the audit record it fills in. Also the two checks every handler may need.
import { S3Error } from "../../../s3/errors.ts";
import type { SignedRequest, VerifiedSignature } from "../../../s3/sigv4-verify.ts";
import type { Env } from "../env.ts";
import { allows, type Action, type Policy } from "../keys/policy.ts";
import type { Target } from "./target.ts";

export interface Principal {
  accessKeyId: string;
  name: string;
  policy: Policy;
}

export interface AuditRecord {
  requestId: string;
  operation: string;
  accessKeyId?: string;
  bucket?: string;
  key?: string;
  status?: number;
  bytesIn?: number;
  bytesOut?: number;
  errorCode?: string;
}

export interface S3Call {
  request: Request;
  url: URL;
  query: URLSearchParams;
  env: Env;
  buckets: Map<string, R2Bucket>;
  target: Target;
  principal: Principal;
  signed: SignedRequest;
  verified: VerifiedSignature;
  requestId: string;
  now: Date;
  audit: AuditRecord;
  /** Work that may finish after the response (e.g. ledger cleanup). */
  waitUntil(promise: Promise<unknown>): void;
}

export function requireBucket(call: S3Call, name: string = call.target.bucket): R2Bucket {
  const bucket = call.buckets.get(name);
  if (!bucket) throw new S3Error("NoSuchBucket", "The specified bucket does not exist", { details: { BucketName: name } });
  return bucket;
}

export function authorize(call: S3Call, action: Action, bucket: string, key: string): void {
  // A bucket the edge does not have is NoSuchBucket for everyone, as in S3 (no key can hold a grant on it).
  requireBucket(call, bucket);
  if (!allows(call.principal.policy, action, bucket, key)) {
    throw new S3Error("AccessDenied", `Access Denied: key ${call.principal.accessKeyId} may not ${action} ${bucket}/${key}`);
  }
}
