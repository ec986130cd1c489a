// The seam between the agent and where objects come from (the edge today, a peer agent
// in the pool later). Errors form one small hierarchy, so the read path branches on class.
import type { ListResult } from "../../../s3/listing-xml.ts";
import type { ArrivingBytes } from "./arriving-bytes.ts";

export interface ObjectInfo {
  bucket: string;
  key: string;
  size: number;
  /** ETag without quotes. */
  etag: string;
  lastModified: Date;
  contentType: string;
  /** User metadata (x-amz-meta-* without the prefix). */
  metadata: Record<string, string>;
}

export interface SmallObject {
  bytes: Uint8Array;
  /** ETag without quotes. */
  etag: string;
}

export interface ListParams {
  prefix: string;
  delimiter: string;
  maxKeys: number;
  continuationToken?: string;
  startAfter?: string;
}

export interface ObjectOrigin {
  listBuckets(): Promise<string[]>;
  /** undefined when the object does not exist. */
  head(bucket: string, key: string): Promise<ObjectInfo | undefined>;
  /** Revalidates: "unchanged" when the origin still has this ETag. */
  revalidate(bucket: string, key: string, etag: string): Promise<ObjectInfo | "unchanged" | undefined>;
  /** Exactly [offset, offset + length) of the version with this ETag; OriginChangedError if it is gone. */
  readRange(bucket: string, key: string, etag: string, offset: number, length: number): Promise<Uint8Array>;
  /**
   * readRange, streamed: its parts can be read as they arrive (a cold READ is answered
   * when its 128 KiB are in, not the whole block). Its memory may be pooled: the caller
   * calls recycle() once the range is over and nobody reads it. Optional: without it,
   * ranges are read whole.
   */
  streamRange?(bucket: string, key: string, etag: string, offset: number, length: number): ArrivingBytes;
  list(bucket: string, params: ListParams): Promise<ListResult>;
  /**
   * A whole small object (manifests) with its ETag, or undefined when absent. With
   * `knownEtag`, "unchanged" when the origin still has that version (no body sent).
   */
  getSmall(bucket: string, key: string, knownEtag?: string): Promise<SmallObject | "unchanged" | undefined>;
  /**
   * Metadata and the first `blockSizeBytes` of an object in one request (a ranged GET), or
   * undefined when it does not exist: a cold read then costs one round trip, not HEAD + GET.
   * It resolves with the metadata; the block streams in behind it (pooled memory, as streamRange).
   * Optional: a pool leaves it out, since its blocks must come from their owners.
   */
  headWithFirstBlock?(bucket: string, key: string, blockSizeBytes: number): Promise<{ info: ObjectInfo; first: ArrivingBytes } | undefined>;
}

export class OriginError extends Error {
  override readonly name: string = "OriginError";
  /** The S3 error code the origin answered with, if any. */
  readonly code: string | undefined;
  readonly status: number | undefined;

  constructor(message: string, options: { code?: string; status?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.code = options.code;
    this.status = options.status;
  }
}

/** The origin cannot be reached or keeps failing (network, 5xx, timeouts). */
export class OriginUnavailableError extends OriginError {
  override readonly name = "OriginUnavailableError";
}

/** The object no longer has the ETag the reader pinned (it changed or was deleted). */
export class OriginChangedError extends OriginError {
  override readonly name = "OriginChangedError";
}

/** The origin refused (403) or rejected the request (other 4xx). */
export class OriginRefusedError extends OriginError {
  override readonly name = "OriginRefusedError";
}
