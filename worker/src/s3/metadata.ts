// Object metadata between S3 headers and R2: system headers ↔ httpMetadata,
// x-amz-meta-* ↔ customMetadata (S3's 2 KiB limit on user metadata applies).
import { S3Error } from "../../../s3/errors.ts";

export const MAX_USER_METADATA_BYTES = 2048;

export function httpMetadataFromHeaders(headers: Headers): R2HTTPMetadata {
  const encoding = (headers.get("content-encoding") ?? "")
    .split(",")
    .map((token) => token.trim())
    .filter((token) => token !== "" && token.toLowerCase() !== "aws-chunked")
    .join(", ");
  const expires = headers.get("expires");
  const meta: R2HTTPMetadata = {};
  const type = headers.get("content-type");
  if (type) meta.contentType = type;
  if (encoding) meta.contentEncoding = encoding;
  const disposition = headers.get("content-disposition");
  if (disposition) meta.contentDisposition = disposition;
  const language = headers.get("content-language");
  if (language) meta.contentLanguage = language;
  const cacheControl = headers.get("cache-control");
  if (cacheControl) meta.cacheControl = cacheControl;
  if (expires && !Number.isNaN(Date.parse(expires))) meta.cacheExpiry = new Date(expires);
  return meta;
}

export function userMetadataFromHeaders(headers: Headers): Record<string, string> {
  const meta: Record<string, string> = {};
  let bytes = 0;
  for (const [name, value] of headers) {
    if (!name.startsWith("x-amz-meta-")) continue;
    const key = name.slice("x-amz-meta-".length);
    meta[key] = value;
    bytes += key.length + value.length;
  }
  if (bytes > MAX_USER_METADATA_BYTES) {
    throw new S3Error("MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size", { details: { MaxSizeAllowed: MAX_USER_METADATA_BYTES } });
  }
  return meta;
}

/** The headers S3 sends for an object on GET and HEAD. */
export function objectHeaders(object: R2Object): Headers {
  const headers = new Headers();
  headers.set("etag", object.httpEtag);
  headers.set("last-modified", object.uploaded.toUTCString());
  headers.set("accept-ranges", "bytes");
  const http = object.httpMetadata ?? {};
  headers.set("content-type", http.contentType ?? "binary/octet-stream");
  if (http.contentEncoding) headers.set("content-encoding", http.contentEncoding);
  if (http.contentDisposition) headers.set("content-disposition", http.contentDisposition);
  if (http.contentLanguage) headers.set("content-language", http.contentLanguage);
  if (http.cacheControl) headers.set("cache-control", http.cacheControl);
  if (http.cacheExpiry) headers.set("expires", http.cacheExpiry.toUTCString());
  for (const [name, value] of Object.entries(object.customMetadata ?? {})) headers.set(`x-amz-meta-${name}`, value);
  return headers;
}

const RESPONSE_OVERRIDES: Record<string, string> = {
  "response-content-type": "content-type",
  "response-content-language": "content-language",
  "response-expires": "expires",
  "response-cache-control": "cache-control",
  "response-content-disposition": "content-disposition",
  "response-content-encoding": "content-encoding",
};

/** Applies `response-content-*` query overrides (signed requests only, as in S3). */
export function applyResponseOverrides(headers: Headers, query: URLSearchParams): void {
  for (const [param, header] of Object.entries(RESPONSE_OVERRIDES)) {
    const value = query.get(param);
    if (value !== null) headers.set(header, value);
  }
}
