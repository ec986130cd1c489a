// Which S3 operation a path-style request is, from method, path and sub-resource. An
// operation Ferry does not implement answers NotImplemented, never a 500.
import { S3Error } from "../../../s3/errors.ts";
import * as multipart from "../multipart/multipart.ts";
import * as buckets from "./buckets.ts";
import type { S3Call } from "./call.ts";
import { getObject } from "./objects-read.ts";
import { deleteObject, deleteObjects } from "./objects-delete.ts";
import { copyObject, putObject } from "./objects-write.ts";
import { listObjectsV1, listObjectsV2 } from "./listing.ts";

export interface Operation {
  name: string;
  handle(call: S3Call): Promise<Response>;
}

/** Sub-resources of S3 that Ferry answers NotImplemented to (ACLs, policies, …). */
const UNSUPPORTED = ["acl", "policy", "cors", "lifecycle", "tagging", "website", "encryption", "replication", "logging", "notification", "object-lock", "retention", "legal-hold", "restore", "select", "torrent", "accelerate", "analytics", "inventory", "metrics", "ownershipControls", "publicAccessBlock", "requestPayment", "intelligent-tiering", "attributes", "versions"];

function notImplemented(what: string): Operation {
  return {
    name: "NotImplemented",
    handle: () => Promise.reject(new S3Error("NotImplemented", `A header or query you provided implies functionality that is not implemented: ${what}`)),
  };
}

const op = (name: string, handle: (call: S3Call) => Promise<Response>): Operation => ({ name, handle });

export function routeS3(method: string, bucket: string, key: string, query: URLSearchParams, headers: Headers): Operation {
  const unsupported = UNSUPPORTED.find((name) => query.has(name));
  if (unsupported) return notImplemented(`?${unsupported}`);
  if (bucket === "") {
    if (method === "GET") return op("ListBuckets", buckets.listBuckets);
    return notImplemented(`${method} /`);
  }
  if (key === "") {
    switch (method) {
      case "HEAD": return op("HeadBucket", buckets.headBucket);
      case "GET":
        if (query.has("location")) return op("GetBucketLocation", buckets.getBucketLocation);
        if (query.has("versioning")) return op("GetBucketVersioning", buckets.getBucketVersioning);
        if (query.has("uploads")) return op("ListMultipartUploads", multipart.listMultipartUploads);
        if (query.get("list-type") === "2") return op("ListObjectsV2", listObjectsV2);
        return op("ListObjects", listObjectsV1);
      case "PUT": return op("CreateBucket", buckets.createBucket);
      case "POST":
        if (query.has("delete")) return op("DeleteObjects", deleteObjects);
        return notImplemented(`POST /${bucket}`);
      default: return notImplemented(`${method} /${bucket}`);
    }
  }
  switch (method) {
    case "GET":
      if (query.has("uploadId")) return op("ListParts", multipart.listParts);
      return op("GetObject", getObject);
    case "HEAD": return op("HeadObject", getObject);
    case "PUT":
      if (query.has("uploadId") || query.has("partNumber")) {
        if (headers.has("x-amz-copy-source")) return notImplemented("UploadPartCopy");
        return op("UploadPart", multipart.uploadPart);
      }
      if (headers.has("x-amz-copy-source")) return op("CopyObject", copyObject);
      return op("PutObject", putObject);
    case "POST":
      if (query.has("uploads")) return op("CreateMultipartUpload", multipart.createMultipartUpload);
      if (query.has("uploadId")) return op("CompleteMultipartUpload", multipart.completeMultipartUpload);
      return notImplemented(`POST /${bucket}/{key}`);
    case "DELETE":
      if (query.has("uploadId")) return op("AbortMultipartUpload", multipart.abortMultipartUpload);
      return op("DeleteObject", deleteObject);
    default: return notImplemented(`${method} /${bucket}/{key}`);
  }
}
