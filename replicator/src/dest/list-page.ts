// One ListObjectsV2 page, requested and read without the S3 SDK: on a no-op rerun over
// 100,000 objects the SDK's XML deserializer was the largest CPU cost of the whole run
// (30-50 ms per 1,000-key page here; this scanner takes about 1 ms). Signed with the
// shared SigV4 signer; errors carry the same status and code fields as the SDK's, so
// s3Failure, isTransient and the callers' error mapping treat both alike.
import { RequestSigner, UNSIGNED_PAYLOAD } from "../../../s3/sigv4.ts";
import type { Credentials } from "../config.ts";

export interface ListedKey {
  key: string;
  size: number;
  etag: string;
  lastModified: string;
}

export interface ListPage {
  objects: ListedKey[];
  nextContinuationToken: string | undefined;
}

/** An S3 error response, shaped like the SDK's errors (name = code, $metadata.httpStatusCode). */
export class ListRequestError extends Error {
  readonly Code: string;
  readonly $metadata: { httpStatusCode: number };
  constructor(code: string, status: number, message: string) {
    super(`list failed: ${code} (${status}): ${message}`);
    this.name = code;
    this.Code = code;
    this.$metadata = { httpStatusCode: status };
  }
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

export function decodeXmlText(text: string): string {
  if (!text.includes("&")) return text;
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (_m, e: string) =>
    e.startsWith("#x") ? String.fromCodePoint(parseInt(e.slice(2), 16)) : e.startsWith("#") ? String.fromCodePoint(parseInt(e.slice(1), 10)) : (ENTITIES[e] ?? ""),
  );
}

function element(xml: string, name: string, from = 0, to = xml.length): string | undefined {
  const open = xml.indexOf(`<${name}>`, from);
  if (open < 0 || open >= to) return undefined;
  const start = open + name.length + 2;
  const end = xml.indexOf(`</${name}>`, start);
  return end < 0 || end > to ? undefined : decodeXmlText(xml.slice(start, end));
}

/** Reads a ListBucketResult (without encoding-type=url): each <Contents>, and the next token. */
export function scanListObjectsV2(xml: string): ListPage {
  if (!xml.includes("<ListBucketResult")) throw new ListRequestError("InternalError", 500, "the listing is not a ListBucketResult");
  const objects: ListedKey[] = [];
  let tail = 0;
  for (let at = xml.indexOf("<Contents>"); at >= 0; at = xml.indexOf("<Contents>", tail)) {
    const end = xml.indexOf("</Contents>", at);
    if (end < 0) throw new ListRequestError("InternalError", 500, "the listing ends inside <Contents>");
    objects.push({
      key: element(xml, "Key", at, end) ?? "",
      size: Number(element(xml, "Size", at, end) ?? 0),
      etag: element(xml, "ETag", at, end) ?? "",
      lastModified: new Date(element(xml, "LastModified", at, end) ?? 0).toISOString(),
    });
    tail = end + 11;
  }
  const truncated = element(xml, "IsTruncated")?.trim() === "true";
  return { objects, nextContinuationToken: truncated ? element(xml, "NextContinuationToken") : undefined };
}

export interface ListPageRequest {
  prefix: string;
  continuationToken?: string | undefined;
  startAfter?: string | undefined;
  delimiter?: string | undefined;
  signal?: AbortSignal | undefined;
}

/** A lister for one bucket at one endpoint (path style). */
export function createPageLister(options: { endpoint: string; bucket: string; credentials: Credentials; region?: string }): (request: ListPageRequest) => Promise<ListPage> {
  const signer = new RequestSigner(options.credentials, { region: options.region ?? "auto" });
  const base = options.endpoint.replace(/\/+$/, "");
  return async (request) => {
    const url = new URL(`${base}/${encodeURIComponent(options.bucket)}`);
    url.searchParams.set("list-type", "2");
    url.searchParams.set("max-keys", "1000");
    url.searchParams.set("prefix", request.prefix);
    if (request.continuationToken) url.searchParams.set("continuation-token", request.continuationToken);
    else if (request.startAfter) url.searchParams.set("start-after", request.startAfter);
    if (request.delimiter) url.searchParams.set("delimiter", request.delimiter);
    // URLSearchParams writes spaces as "+"; SigV4's canonical query wants %20.
    url.search = url.search.replace(/\+/g, "%20");
    const headers = await signer.sign({ method: "GET", url, payloadHash: UNSIGNED_PAYLOAD });
    delete headers["host"];
    let response: Response;
    try {
      response = await fetch(url, { headers, ...(request.signal ? { signal: request.signal } : {}) });
    } catch (error) {
      // fetch wraps socket errors; the cause carries the errno (ECONNREFUSED, …) callers map.
      const cause = (error as { cause?: unknown }).cause;
      throw cause instanceof Error ? cause : error;
    }
    const text = await response.text();
    if (response.status !== 200) {
      const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? (response.status === 404 ? "NotFound" : `HTTP${response.status}`);
      throw new ListRequestError(code, response.status, decodeXmlText(/<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? ""));
    }
    return scanListObjectsV2(text);
  };
}
