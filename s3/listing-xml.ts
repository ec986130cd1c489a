// Listing documents (ListObjectsV2, ListObjects v1, ListAllMyBuckets), rendered by the
// edge and the agent and parsed by the agent, so both ends agree on one shape.
import { XMLParser } from "fast-xml-parser";
import { S3Error } from "./errors.ts";
import { uriEncode } from "./sigv4.ts";
import { renderXmlDocument, type XmlNode } from "./xml.ts";

export interface ListedObject {
  key: string;
  size: number;
  /** Quoted, as S3 lists it. */
  etag: string;
  lastModified: Date;
}

export interface ListResult {
  bucket: string;
  prefix: string;
  delimiter: string;
  maxKeys: number;
  encodingType?: "url";
  objects: ListedObject[];
  commonPrefixes: string[];
  isTruncated: boolean;
  /** v2 */
  continuationToken?: string;
  nextContinuationToken?: string;
  startAfter?: string;
  /** v1 */
  marker?: string;
  nextMarker?: string;
}

function encoderFor(result: ListResult): (text: string) => string {
  return result.encodingType === "url" ? (text) => uriEncode(text, { keepSlash: true }) : (text) => text;
}

function contents(result: ListResult, encode: (t: string) => string, owner: boolean): XmlNode[] {
  return result.objects.map((o) => ({
    Key: encode(o.key),
    LastModified: o.lastModified.toISOString(),
    ETag: o.etag,
    Size: o.size,
    ...(owner ? { Owner: { ID: "ferry", DisplayName: "ferry" } } : {}),
    StorageClass: "STANDARD",
  }));
}

export function renderListObjectsV2(result: ListResult, options: { fetchOwner?: boolean } = {}): string {
  const encode = encoderFor(result);
  return renderXmlDocument("ListBucketResult", {
    Name: result.bucket,
    Prefix: encode(result.prefix),
    Delimiter: result.delimiter ? encode(result.delimiter) : undefined,
    MaxKeys: result.maxKeys,
    EncodingType: result.encodingType,
    KeyCount: result.objects.length + result.commonPrefixes.length,
    ContinuationToken: result.continuationToken,
    NextContinuationToken: result.nextContinuationToken,
    StartAfter: result.startAfter ? encode(result.startAfter) : undefined,
    IsTruncated: result.isTruncated,
    Contents: contents(result, encode, options.fetchOwner ?? false),
    CommonPrefixes: result.commonPrefixes.map((p) => ({ Prefix: encode(p) })),
  });
}

export function renderListObjectsV1(result: ListResult): string {
  const encode = encoderFor(result);
  return renderXmlDocument("ListBucketResult", {
    Name: result.bucket,
    Prefix: encode(result.prefix),
    Marker: encode(result.marker ?? ""),
    NextMarker: result.nextMarker ? encode(result.nextMarker) : undefined,
    MaxKeys: result.maxKeys,
    Delimiter: result.delimiter ? encode(result.delimiter) : undefined,
    EncodingType: result.encodingType,
    IsTruncated: result.isTruncated,
    Contents: contents(result, encode, true),
    CommonPrefixes: result.commonPrefixes.map((p) => ({ Prefix: encode(p) })),
  });
}

export function renderListBuckets(buckets: string[], owner: { id: string; name: string }, creationDate: string): string {
  return renderXmlDocument("ListAllMyBucketsResult", {
    Owner: { ID: owner.id, DisplayName: owner.name },
    Buckets: { Bucket: buckets.map((name) => ({ Name: name, CreationDate: creationDate })) },
  });
}

/** `max-keys` as S3 reads it: default 1000, capped at 1000, InvalidArgument otherwise. */
export function parseMaxKeys(raw: string | null): number {
  if (raw === null) return 1000;
  if (!/^\d+$/.test(raw)) throw new S3Error("InvalidArgument", "Provided max-keys not an integer or within integer range", { details: { ArgumentName: "max-keys", ArgumentValue: raw } });
  return Math.min(Number(raw), 1000);
}

export function parseEncodingType(raw: string | null): "url" | undefined {
  if (raw === null) return undefined;
  if (raw !== "url") throw new S3Error("InvalidArgument", "Invalid Encoding Method specified in Request", { details: { ArgumentName: "encoding-type" } });
  return "url";
}

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: false,
  htmlEntities: true,
  isArray: (name) => name === "Contents" || name === "CommonPrefixes" || name === "Bucket",
});

function str(value: unknown): string {
  return typeof value === "string" ? value : typeof value === "number" ? String(value) : "";
}

/** Parses a ListObjectsV2 response (without encoding-type=url). */
export function parseListObjectsV2(xml: string): ListResult {
  const doc = parser.parse(xml) as { ListBucketResult?: Record<string, unknown> };
  const r = doc.ListBucketResult;
  if (!r) throw new S3Error("InternalError", "the origin's listing is not a ListBucketResult");
  const objects = ((r["Contents"] as Array<Record<string, unknown>> | undefined) ?? []).map((c) => ({
    key: str(c["Key"]),
    size: Number(str(c["Size"])),
    etag: str(c["ETag"]).trim(),
    lastModified: new Date(str(c["LastModified"])),
  }));
  const prefixes = ((r["CommonPrefixes"] as Array<Record<string, unknown>> | undefined) ?? []).map((p) => str(p["Prefix"]));
  const next = str(r["NextContinuationToken"]);
  return {
    bucket: str(r["Name"]),
    prefix: str(r["Prefix"]),
    delimiter: str(r["Delimiter"]),
    maxKeys: Number(str(r["MaxKeys"]) || 1000),
    objects,
    commonPrefixes: prefixes,
    isTruncated: str(r["IsTruncated"]).trim() === "true",
    ...(next ? { nextContinuationToken: next } : {}),
  };
}

export function parseListBuckets(xml: string): string[] {
  const doc = parser.parse(xml) as { ListAllMyBucketsResult?: { Buckets?: { Bucket?: Array<Record<string, unknown>> } } };
  return (doc.ListAllMyBucketsResult?.Buckets?.Bucket ?? []).map((b) => str(b["Name"]));
}

/** The Code and Message of an S3 error document, when it is one. */
export function parseErrorDocument(xml: string): { code: string; message: string } | undefined {
  try {
    const doc = parser.parse(xml) as { Error?: Record<string, unknown> };
    return doc.Error ? { code: str(doc.Error["Code"]), message: str(doc.Error["Message"]) } : undefined;
  } catch {
    return undefined;
  }
}
