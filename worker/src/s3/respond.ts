// Turning results and errors into S3 wire responses. Every response carries the request
// id (x-amz-request-id) that the audit log line carries too.
import { S3Error } from "../../../s3/errors.ts";
import { renderErrorDocument, renderXmlDocument, type XmlNode } from "../../../s3/xml.ts";

export function xmlResponse(root: string, body: XmlNode, init: { status?: number; headers?: HeadersInit } = {}): Response {
  const headers = new Headers(init.headers);
  headers.set("content-type", "application/xml");
  return new Response(renderXmlDocument(root, body), { status: init.status ?? 200, headers });
}

/** The S3 error document for any thrown value; unknown errors become InternalError. */
export function errorResponse(error: unknown, requestId: string, method: string): Response {
  const s3Error = error instanceof S3Error ? error : new S3Error("InternalError", "We encountered an internal error. Please try again.");
  const headers = new Headers({ "x-amz-request-id": requestId });
  // 304 and HEAD carry no body, as in S3.
  if (s3Error.status === 304 || method === "HEAD") return new Response(null, { status: s3Error.status, headers });
  headers.set("content-type", "application/xml");
  return new Response(renderErrorDocument({ code: s3Error.code, message: s3Error.message, details: s3Error.details }, requestId), { status: s3Error.status, headers });
}

export function newRequestId(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("").toUpperCase();
}
