// What the copier needs from a source (GCS, S3, a local folder): list every object under
// the prefix, re-stat one, and open one version for reading. Listing never reads bodies.
// Checksums are base64 of the big-endian digest, the form GCS and S3 headers use.

export interface Checksums {
  /** Base64 CRC32C of the whole object. */
  crc32c?: string | undefined;
  /** Base64 MD5 of the whole object. */
  md5?: string | undefined;
}

export interface SourceObject extends Checksums {
  /** Key relative to the source prefix ("a/b.h5"); the destination key is DEST prefix + this. */
  key: string;
  /** Full source URL, recorded as ferry-source. */
  url: string;
  size: number;
  /** GCS generation, S3 ETag, or a file's size and mtime; recorded as ferry-source-version. */
  version: string;
  contentType?: string | undefined;
}

export interface OpenedObject {
  /** Checksums the source declares for this version (listing and response headers together). */
  declared: Checksums;
  body: AsyncIterable<Uint8Array>;
}

export interface Source {
  /** The source URL as given, normalised (gs://bucket/prefix/). */
  readonly url: string;
  /** Where one-time egress is billed, for the report ("gcs", "s3", "none" for local files). */
  readonly egress: "gcs" | "s3" | "none";
  /** Fails with InputError when the bucket or folder does not exist or cannot be read. */
  check(): Promise<void>;
  /** Every object under the prefix, in any order. */
  list(signal: AbortSignal): AsyncIterable<SourceObject>;
  /** The current version of one key, or undefined if it is gone. */
  stat(key: string, signal: AbortSignal): Promise<SourceObject | undefined>;
  /** Opens exactly the listed version; throws SourceChangedError if it is no longer current. */
  open(object: SourceObject, signal: AbortSignal): Promise<OpenedObject>;
  /** Optional cheap pre-pass for checksums the listing lacks (local files only). */
  checksums?(object: SourceObject, signal: AbortSignal): Promise<Checksums>;
  close(): Promise<void>;
}

/** Base64 MD5 from an S3 ETag when it is a plain MD5 (single-part, unencrypted). */
export function md5FromEtag(etag: string | undefined): string | undefined {
  const hex = etag?.replace(/"/g, "") ?? "";
  if (!/^[0-9a-f]{32}$/i.test(hex)) return undefined;
  return Buffer.from(hex, "hex").toString("base64");
}
