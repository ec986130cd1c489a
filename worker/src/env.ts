// The edge's bindings, and the S3 buckets they define. A bucket is any R2 binding named
// BUCKET_<NAME>; its S3 name is <name> lower-cased, with "_" read as "-".
import type { ClusterMembership } from "./cluster/cluster-membership.ts";
import type { KeyRegistry } from "./keys/key-registry.ts";
import type { UploadLedger } from "./multipart/upload-ledger.ts";

export interface Env {
  KEY_REGISTRY: DurableObjectNamespace<KeyRegistry>;
  UPLOAD_LEDGER: DurableObjectNamespace<UploadLedger>;
  /** One pool membership object per cluster name. */
  CLUSTER_MEMBERSHIP: DurableObjectNamespace<ClusterMembership>;
  /** Bearer token for /_ferry/admin; when unset every admin request is refused. */
  FERRY_ADMIN_TOKEN?: string;
  /** 32 random bytes, base64: encrypts key secrets at rest (AES-256-GCM). */
  FERRY_KEY_ENCRYPTION_KEY?: string;
  [binding: string]: unknown;
}

const BUCKET_BINDING = /^BUCKET_([A-Z0-9_]+)$/;

function isR2Bucket(value: unknown): value is R2Bucket {
  return typeof value === "object" && value !== null && "head" in value && "createMultipartUpload" in value;
}

/** S3 bucket name → R2 binding, sorted by name. */
export function bucketsOf(env: Env): Map<string, R2Bucket> {
  const buckets = new Map<string, R2Bucket>();
  for (const name of Object.keys(env).sort()) {
    const m = BUCKET_BINDING.exec(name);
    const binding = env[name];
    if (m?.[1] && isR2Bucket(binding)) buckets.set(m[1].toLowerCase().replace(/_/g, "-"), binding);
  }
  return buckets;
}
