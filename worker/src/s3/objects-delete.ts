// DeleteObject and DeleteObjects. Deleting a missing key succeeds, as in S3; in a batch,
// keys the caller may not delete are reported one by one, the rest are deleted.
import { parseDeleteObjects } from "../../../s3/xml.ts";
import { allows } from "../keys/policy.ts";
import { authorize, requireBucket, type S3Call } from "./call.ts";
import { xmlResponse } from "./respond.ts";

export async function deleteObject(call: S3Call): Promise<Response> {
  const { bucket: bucketName, key } = call.target;
  authorize(call, "delete", bucketName, key);
  await requireBucket(call).delete(key);
  return new Response(null, { status: 204, headers: { "x-amz-request-id": call.requestId } });
}

export async function deleteObjects(call: S3Call): Promise<Response> {
  const bucketName = call.target.bucket;
  const bucket = requireBucket(call);
  const request = parseDeleteObjects(await call.request.text());
  const allowed = request.keys.filter((key) => allows(call.principal.policy, "delete", bucketName, key));
  const denied = request.keys.filter((key) => !allows(call.principal.policy, "delete", bucketName, key));
  if (allowed.length) await bucket.delete(allowed);
  return xmlResponse(
    "DeleteResult",
    {
      Deleted: request.quiet ? undefined : allowed.map((key) => ({ Key: key })),
      Error: denied.map((key) => ({ Key: key, Code: "AccessDenied", Message: "Access Denied" })),
    },
    { headers: { "x-amz-request-id": call.requestId } },
  );
}
