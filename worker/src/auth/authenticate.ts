// Who signed this request: parse the signature (no secret needed), resolve the key,
// refuse revoked or expired keys, then verify the signature with the key's secret.
import { S3Error } from "../../../s3/errors.ts";
import { parseSignedRequest, verifySignedRequest, type SignedRequest, type VerifiedSignature } from "../../../s3/sigv4-verify.ts";
import type { KeyService } from "../keys/key-service.ts";
import type { Principal } from "../s3/call.ts";

export interface Authenticated {
  principal: Principal;
  signed: SignedRequest;
  verified: VerifiedSignature;
}

/**
 * The headers as the client signed them. Cloudflare rewrites an incoming Accept-Encoding
 * (to "br, gzip") and keeps the client's value in `cf.clientAcceptEncoding`; clients such
 * as rclone and the Go SDKs sign that header, so verify against the original value.
 */
function headersAsSent(request: Request): Headers {
  const original = (request.cf as { clientAcceptEncoding?: unknown } | undefined)?.clientAcceptEncoding;
  if (typeof original !== "string" || original === "" || request.headers.get("accept-encoding") === original) return request.headers;
  const headers = new Headers(request.headers);
  headers.set("accept-encoding", original);
  return headers;
}

export async function authenticate(request: Request, url: URL, keys: KeyService, now: Date): Promise<Authenticated> {
  const incoming = { method: request.method, url, headers: headersAsSent(request) };
  const signed = parseSignedRequest(incoming, now);
  const key = await keys.resolve(signed.accessKeyId, now);
  if (!key || key.revokedAt) {
    throw new S3Error("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.", { details: { AWSAccessKeyId: signed.accessKeyId } });
  }
  if (key.expiresAt && Date.parse(key.expiresAt) <= now.getTime()) {
    throw new S3Error("InvalidAccessKeyId", "The access key has expired.", { details: { AWSAccessKeyId: signed.accessKeyId } });
  }
  const verified = await verifySignedRequest(incoming, signed, key.secretAccessKey);
  return { principal: { accessKeyId: key.accessKeyId, name: key.name, policy: key.policy }, signed, verified };
}
