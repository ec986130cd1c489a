// Server side of SigV4 (header and presigned forms) and of SigV2 presigned URLs (the
// form aws CLI v1 `s3 presign` makes). Parsing checks shape and time without the secret;
// verification rebuilds the canonical request from what arrived and compares with
// crypto.subtle.verify, which is constant-time.
import type { ChunkSignatureVerifier } from "./aws-chunked.ts";
import { fromBase64, fromHex, utf8 } from "./bytes.ts";
import { S3Error } from "./errors.ts";
import {
  EMPTY_SHA256,
  MAX_PRESIGN_SECONDS,
  SIGV4_ALGORITHM,
  UNSIGNED_PAYLOAD,
  canonicalRequest,
  canonicalUriOf,
  deriveSigningKey,
  parseAmzDate,
  parseQuery,
  scopeString,
  sha256Hex,
  stringToSign,
  type Scope,
} from "./sigv4.ts";

/** Requests signed further than this from the edge's clock are refused, as S3 does. */
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;

/** What the verifier needs to know of a request; raw path and query as they arrived. */
export interface IncomingRequest {
  method: string;
  url: URL;
  headers: Headers;
}

export type SignedRequest =
  | {
      form: "header" | "presigned";
      accessKeyId: string;
      scope: Scope;
      amzDate: string;
      signedHeaders: string[];
      signature: string;
      payloadHash: string;
    }
  | { form: "presigned-v2"; accessKeyId: string; expiresEpochSeconds: number; signature: string };

/** Everything a streaming body needs to check its chunk signatures. */
export interface VerifiedSignature {
  accessKeyId: string;
  signingKey?: CryptoKey;
  seedSignature?: string;
  scope?: Scope;
  amzDate?: string;
}

function malformedHeader(message: string): S3Error {
  return new S3Error("AuthorizationHeaderMalformed", message);
}

function queryError(message: string): S3Error {
  return new S3Error("AuthorizationQueryParametersError", message);
}

function parseCredential(value: string, fail: (m: string) => S3Error): { accessKeyId: string; scope: Scope } {
  const parts = value.split("/");
  if (parts.length !== 5 || parts[4] !== "aws4_request" || !/^\d{8}$/.test(parts[1] ?? "")) {
    throw fail(`the credential is malformed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request"`);
  }
  const [accessKeyId = "", date = "", region = "", service = ""] = parts;
  if (service !== "s3") throw fail(`the credential is for service '${service}', expecting 's3'`);
  return { accessKeyId, scope: { date, region, service } };
}

function checkSkew(date: Date, now: Date): void {
  if (Math.abs(now.getTime() - date.getTime()) > MAX_CLOCK_SKEW_MS) {
    throw new S3Error("RequestTimeTooSkewed", "The difference between the request time and the current time is too large.", {
      details: { RequestTime: date.toISOString(), ServerTime: now.toISOString(), MaxAllowedSkewMilliseconds: MAX_CLOCK_SKEW_MS },
    });
  }
}

function parseHeaderForm(authorization: string, request: IncomingRequest, now: Date): SignedRequest {
  if (!authorization.startsWith(`${SIGV4_ALGORITHM} `)) {
    if (authorization.startsWith("AWS ")) throw new S3Error("InvalidRequest", "Signature Version 2 is not supported in the Authorization header; use Signature Version 4");
    throw malformedHeader("unsupported authorization type; only AWS4-HMAC-SHA256 is accepted");
  }
  const fields = new Map<string, string>();
  for (const part of authorization.slice(SIGV4_ALGORITHM.length + 1).split(",")) {
    const eq = part.indexOf("=");
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const credential = fields.get("Credential");
  const signedHeaders = fields.get("SignedHeaders");
  const signature = fields.get("Signature");
  if (!credential || !signedHeaders || !signature) throw malformedHeader("the authorization header needs Credential, SignedHeaders and Signature");
  const { accessKeyId, scope } = parseCredential(credential, malformedHeader);
  const amzDateValue = request.headers.get("x-amz-date") ?? "";
  const date = parseAmzDate(amzDateValue);
  if (!date) throw new S3Error("AccessDenied", "AWS authentication requires a valid x-amz-date header");
  if (amzDateValue.slice(0, 8) !== scope.date) throw malformedHeader(`the credential date ${scope.date} does not match x-amz-date ${amzDateValue}`);
  checkSkew(date, now);
  const payloadHash = request.headers.get("x-amz-content-sha256");
  if (!payloadHash) throw new S3Error("InvalidRequest", "missing required header for this request: x-amz-content-sha256");
  const names = signedHeaders.split(";");
  if (!names.includes("host")) throw malformedHeader("SignedHeaders must include host");
  return { form: "header", accessKeyId, scope, amzDate: amzDateValue, signedHeaders: names, signature, payloadHash };
}

function parsePresignedForm(query: URLSearchParams, now: Date): SignedRequest {
  if (query.get("X-Amz-Algorithm") !== SIGV4_ALGORITHM) throw queryError("X-Amz-Algorithm only supports AWS4-HMAC-SHA256");
  const credential = query.get("X-Amz-Credential");
  const amzDateValue = query.get("X-Amz-Date");
  const expires = query.get("X-Amz-Expires");
  const signedHeaders = query.get("X-Amz-SignedHeaders");
  const signature = query.get("X-Amz-Signature");
  if (!credential || !amzDateValue || !expires || !signedHeaders || !signature) {
    throw queryError("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.");
  }
  const { accessKeyId, scope } = parseCredential(credential, queryError);
  const date = parseAmzDate(amzDateValue);
  if (!date) throw queryError("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"");
  if (!/^\d+$/.test(expires)) throw queryError("X-Amz-Expires should be a number");
  const expiresSeconds = Number(expires);
  if (expiresSeconds > MAX_PRESIGN_SECONDS) throw queryError(`X-Amz-Expires must be less than a week (in seconds) that is; ${MAX_PRESIGN_SECONDS}`);
  if (date.getTime() - now.getTime() > MAX_CLOCK_SKEW_MS) throw new S3Error("AccessDenied", "Request is not valid yet");
  if (now.getTime() > date.getTime() + expiresSeconds * 1000) throw new S3Error("AccessDenied", "Request has expired", { details: { Expires: new Date(date.getTime() + expiresSeconds * 1000).toISOString() } });
  const payloadHash = query.get("X-Amz-Content-Sha256") ?? UNSIGNED_PAYLOAD;
  return { form: "presigned", accessKeyId, scope, amzDate: amzDateValue, signedHeaders: signedHeaders.split(";"), signature, payloadHash };
}

function parsePresignedV2Form(query: URLSearchParams, now: Date): SignedRequest {
  const accessKeyId = query.get("AWSAccessKeyId") ?? "";
  const expires = query.get("Expires") ?? "";
  const signature = query.get("Signature") ?? "";
  if (!accessKeyId || !/^\d+$/.test(expires) || !signature) throw queryError("Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters");
  const expiresEpochSeconds = Number(expires);
  if (expiresEpochSeconds * 1000 - now.getTime() > MAX_PRESIGN_SECONDS * 1000 + MAX_CLOCK_SKEW_MS) {
    throw queryError(`a presigned URL may be valid for at most ${MAX_PRESIGN_SECONDS} seconds`);
  }
  if (now.getTime() > expiresEpochSeconds * 1000) throw new S3Error("AccessDenied", "Request has expired");
  return { form: "presigned-v2", accessKeyId, expiresEpochSeconds, signature };
}

/**
 * Reads who claims to have signed a request and checks everything that needs no secret:
 * shape, scope, clock skew and expiry. Unsigned requests are refused (AccessDenied).
 */
export function parseSignedRequest(request: IncomingRequest, now: Date = new Date()): SignedRequest {
  const authorization = request.headers.get("authorization");
  if (authorization) return parseHeaderForm(authorization, request, now);
  const query = request.url.searchParams;
  if (query.has("X-Amz-Algorithm") || query.has("X-Amz-Signature")) return parsePresignedForm(query, now);
  if (query.has("AWSAccessKeyId") || query.has("Signature")) return parsePresignedV2Form(query, now);
  throw new S3Error("AccessDenied", "Anonymous access is not allowed; sign the request with a Ferry key");
}

function signatureMismatch(): S3Error {
  return new S3Error("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.");
}

async function hmacMatches(key: CryptoKey, signatureHex: string, text: string): Promise<boolean> {
  if (!/^[0-9a-f]{64}$/.test(signatureHex)) return false;
  return crypto.subtle.verify("HMAC", key, fromHex(signatureHex), utf8(text));
}

function canonicalQueryPairs(url: URL, form: "header" | "presigned"): Array<[string, string]> {
  try {
    const pairs = parseQuery(url.search.slice(1));
    return form === "presigned" ? pairs.filter(([name]) => name !== "X-Amz-Signature") : pairs;
  } catch (error) {
    throw new S3Error("InvalidArgument", "the query string is not valid percent-encoding", { cause: error });
  }
}

async function verifyV4(request: IncomingRequest, signed: Extract<SignedRequest, { form: "header" | "presigned" }>, secret: string): Promise<VerifiedSignature> {
  const headers = new Map<string, string>();
  for (const name of signed.signedHeaders) headers.set(name, request.headers.get(name) ?? "");
  const query = canonicalQueryPairs(request.url, signed.form);
  const key = await deriveSigningKey(secret, signed.scope);
  // Clients canonicalise the decoded key; a few sign the path exactly as sent. Try both.
  let candidates: string[];
  try {
    candidates = [...new Set([canonicalUriOf(request.url.pathname), request.url.pathname])];
  } catch {
    candidates = [request.url.pathname];
  }
  for (const canonicalUri of candidates) {
    const canonical = canonicalRequest({
      method: request.method,
      canonicalUri,
      query,
      headers,
      signedHeaders: signed.signedHeaders,
      payloadHash: signed.payloadHash,
    });
    const text = stringToSign(signed.amzDate, signed.scope, await sha256Hex(canonical));
    if (await hmacMatches(key, signed.signature, text)) {
      return { accessKeyId: signed.accessKeyId, signingKey: key, seedSignature: signed.signature, scope: signed.scope, amzDate: signed.amzDate };
    }
  }
  throw signatureMismatch();
}

/** Sub-resources that SigV2 signs as part of the resource, sorted. */
const V2_SUBRESOURCES = [
  "acl", "delete", "lifecycle", "location", "logging", "notification", "partNumber", "policy", "requestPayment",
  "response-cache-control", "response-content-disposition", "response-content-encoding", "response-content-language",
  "response-content-type", "response-expires", "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning", "versions", "website",
];

async function verifyV2(request: IncomingRequest, signed: Extract<SignedRequest, { form: "presigned-v2" }>, secret: string): Promise<VerifiedSignature> {
  const query = request.url.searchParams;
  const sub = V2_SUBRESOURCES.filter((name) => query.has(name)).map((name) => (query.get(name) ? `${name}=${query.get(name)}` : name));
  const amzHeaders = [...request.headers.entries()]
    .filter(([name]) => name.startsWith("x-amz-"))
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, value]) => `${name}:${value.trim()}\n`)
    .join("");
  const resource = request.url.pathname + (sub.length ? `?${sub.join("&")}` : "");
  const text = [request.method, request.headers.get("content-md5") ?? "", request.headers.get("content-type") ?? "", String(signed.expiresEpochSeconds), amzHeaders + resource].join("\n");
  const key = await crypto.subtle.importKey("raw", utf8(secret), { name: "HMAC", hash: "SHA-1" }, false, ["verify"]);
  let given: Uint8Array<ArrayBuffer>;
  try {
    given = fromBase64(signed.signature);
  } catch {
    throw signatureMismatch();
  }
  if (!(await crypto.subtle.verify("HMAC", key, given, utf8(text)))) throw signatureMismatch();
  return { accessKeyId: signed.accessKeyId };
}

/** Checks the signature with the key's secret; throws SignatureDoesNotMatch. */
export async function verifySignedRequest(request: IncomingRequest, signed: SignedRequest, secret: string): Promise<VerifiedSignature> {
  return signed.form === "presigned-v2" ? verifyV2(request, signed, secret) : verifyV4(request, signed, secret);
}

/**
 * Checks the signature chain of an `aws-chunked` body (STREAMING-AWS4-HMAC-SHA256-PAYLOAD):
 * each chunk signs the previous signature, so chunks cannot be dropped, reordered or swapped.
 */
export function chunkSignatureVerifier(verified: VerifiedSignature): ChunkSignatureVerifier {
  const { signingKey, scope, amzDate } = verified;
  if (!signingKey || !scope || !amzDate || !verified.seedSignature) throw new S3Error("InvalidRequest", "signed chunks need a SigV4-signed request");
  let previous = verified.seedSignature;
  return {
    async verifyChunk(signature, data) {
      const text = ["AWS4-HMAC-SHA256-PAYLOAD", amzDate, scopeString(scope), previous, EMPTY_SHA256, await sha256Hex(data)].join("\n");
      const ok = await hmacMatches(signingKey, signature, text);
      if (ok) previous = signature;
      return ok;
    },
    async verifyTrailer(signature, canonicalTrailers) {
      const text = ["AWS4-HMAC-SHA256-TRAILER", amzDate, scopeString(scope), previous, await sha256Hex(canonicalTrailers)].join("\n");
      return hmacMatches(signingKey, signature, text);
    },
  };
}
