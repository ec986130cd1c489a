// The destination bucket over S3 (the edge or R2's own endpoint, same code): list what
// is there, read lineage, write objects (single PUT or multipart with equal parts),
// delete, and find multipart uploads left behind. Keys under the reserved ".ferry/" space
// are never listed as data.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { RESERVED_PREFIX } from "../../../s3/manifest.ts";
import { lineageFromMetadata, type Lineage } from "../../../s3/lineage.ts";
import { InputError, ChecksumMismatchError, TransferError } from "../errors.ts";
import { isTransient, s3Failure, type CountingClient } from "../s3-client.ts";
import { createHashes } from "../copy/hashing.ts";
import { withRetries } from "../copy/retry.ts";
import type { Credentials } from "../config.ts";
import { createPageLister } from "./list-page.ts";

export interface DestObject {
  key: string;
  size: number;
  /** Quoted, as S3 lists it. */
  etag: string;
  lastModified: string;
}

export interface PendingUpload {
  key: string;
  uploadId: string;
  initiated: Date | undefined;
}

export interface WriteOptions {
  metadata: Record<string, string>;
  contentType?: string | undefined;
}

export interface S3Destination {
  readonly bucket: string;
  readonly url: string;
  /** Keys under `prefix` in S3 order; `startAfter` skips every key up to and including it. */
  list(prefix: string, options?: { delimiter?: string; startAfter?: string; signal?: AbortSignal }): AsyncIterable<DestObject>;
  head(key: string, signal?: AbortSignal): Promise<{ object: DestObject; lineage: Lineage } | undefined>;
  getBytes(key: string): Promise<Uint8Array | undefined>;
  putObject(key: string, body: Uint8Array, checksums: { crc32c: string; md5: string }, options: WriteOptions, signal?: AbortSignal): Promise<string>;
  createMultipart(key: string, options: WriteOptions, signal?: AbortSignal): Promise<string>;
  uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array, crc32c: string, signal?: AbortSignal): Promise<string>;
  completeMultipart(key: string, uploadId: string, parts: Array<{ partNumber: number; etag: string; crc32c: string }>, signal?: AbortSignal): Promise<string>;
  abortMultipart(key: string, uploadId: string): Promise<void>;
  listUploads(prefix: string): Promise<PendingUpload[]>;
  /** Fails with InputError unless the key may write under `prefix`; writes nothing. */
  probeWrite(prefix: string): Promise<void>;
  deleteKeys(keys: string[]): Promise<{ deleted: string[]; failed: Array<{ key: string; message: string }> }>;
  readonly requests: Map<string, number>;
  close(): void;
}

/** A write error in the replicator's terms: a refused checksum is a mismatch (retry). */
function writeError(error: unknown, subject: string): Error {
  const { status, code } = s3Failure(error);
  if (code === "BadDigest" || code === "InvalidDigest" || code === "XAmzContentSHA256Mismatch") {
    return new ChecksumMismatchError(`${subject} (the destination refused the bytes: ${code})`, { algorithm: code, expected: "source checksum", actual: "bytes received" });
  }
  if (error instanceof Error && error.name === "AbortError") return error;
  return new TransferError(`write failed: ${subject}: ${code || (error instanceof Error ? error.message : String(error))}${status ? ` (${status})` : ""}`, { retryable: isTransient(error), cause: error });
}

/** Listing errors say what to fix: a missing bucket, a key without the permission, or a network failure. */
function accessError(error: unknown, action: "list" | "write", target: string, where: string): Error {
  const { status, code } = s3Failure(error);
  const bucket = target.replace(/^s3:\/\/([^/]+).*$/, "$1");
  if (code === "NoSuchBucket" || (status === 404 && action === "list")) return new InputError(`destination bucket does not exist: s3://${bucket} at ${where}`, { cause: error });
  if (status === 403 || status === 401) return new InputError(`the key may not ${action} ${target} at ${where} (${code || status}): it needs list, write and delete there, and write on .ferry/`, { cause: error });
  if (status === undefined) {
    const errno = (error as NodeJS.ErrnoException | null)?.code;
    const detail = typeof errno === "string" ? errno : error instanceof Error && error.message ? error.message.split("\n")[0] : code;
    return new InputError(`cannot reach the destination ${where}: ${detail}`, { cause: error });
  }
  return new TransferError(`${action} failed: ${target}: ${code} (${status})`, { retryable: isTransient(error), cause: error });
}

export interface S3DestinationOptions {
  bucket: string;
  s3: CountingClient;
  /** The same endpoint and key as `s3`: listings are read without the SDK (list-page.ts). */
  endpoint: string;
  credentials: Credentials;
  describe: string;
}

/** Attempts per LIST page (429, 5xx, network errors), as the SDK's standard retry does. */
const LIST_ATTEMPTS = 5;

export function createS3Destination(options: S3DestinationOptions): S3Destination {
  const { bucket } = options;
  const client = options.s3.client;
  const listPage = createPageLister({ endpoint: options.endpoint, bucket, credentials: options.credentials });
  const url = (key: string) => `s3://${bucket}/${key}`;
  return {
    bucket,
    url: `s3://${bucket}/`,
    requests: options.s3.requests,
    async *list(prefix, listOptions = {}) {
      let token: string | undefined;
      do {
        let page;
        try {
          page = await withRetries(
            () => {
              // Counted per request sent, retries included, like the SDK's requests.
              options.s3.requests.set("ListObjectsV2", (options.s3.requests.get("ListObjectsV2") ?? 0) + 1);
              return listPage({ prefix, continuationToken: token, startAfter: listOptions.startAfter, delimiter: listOptions.delimiter, signal: listOptions.signal });
            },
            { attempts: LIST_ATTEMPTS, baseDelayMs: 200, ...(listOptions.signal ? { signal: listOptions.signal } : {}) },
          );
        } catch (error) {
          throw accessError(error, "list", `s3://${bucket}/${prefix}`, options.describe);
        }
        for (const o of page.objects) {
          if (!o.key || (o.key.startsWith(RESERVED_PREFIX) && !prefix.startsWith(RESERVED_PREFIX))) continue;
          yield o;
        }
        token = page.nextContinuationToken;
      } while (token);
    },
    async head(key, signal) {
      try {
        const h = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), signal ? { abortSignal: signal } : {});
        return {
          object: { key, size: h.ContentLength ?? 0, etag: h.ETag ?? "", lastModified: (h.LastModified ?? new Date(0)).toISOString() },
          lineage: lineageFromMetadata(h.Metadata ?? {}),
        };
      } catch (error) {
        if (s3Failure(error).status === 404) return undefined;
        throw error;
      }
    },
    async getBytes(key) {
      try {
        const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return (await r.Body?.transformToByteArray()) ?? new Uint8Array();
      } catch (error) {
        const { status, code } = s3Failure(error);
        if (status === 404 || code === "NoSuchKey") return undefined;
        throw error;
      }
    },
    async putObject(key, body, checksums, writeOptions, signal) {
      try {
        const r = await client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: body,
            ContentLength: body.length,
            ContentMD5: checksums.md5,
            ChecksumCRC32C: checksums.crc32c,
            Metadata: writeOptions.metadata,
            ContentType: writeOptions.contentType,
          }),
          signal ? { abortSignal: signal } : {},
        );
        return r.ETag ?? "";
      } catch (error) {
        throw writeError(error, url(key));
      }
    },
    async createMultipart(key, writeOptions, signal) {
      try {
        const r = await client.send(
          new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, Metadata: writeOptions.metadata, ContentType: writeOptions.contentType, ChecksumAlgorithm: "CRC32C" }),
          signal ? { abortSignal: signal } : {},
        );
        if (!r.UploadId) throw new TransferError(`no upload id for ${url(key)}`, { retryable: true });
        return r.UploadId;
      } catch (error) {
        throw error instanceof TransferError ? error : writeError(error, url(key));
      }
    },
    async uploadPart(key, uploadId, partNumber, body, crc32c, signal) {
      try {
        const r = await client.send(
          new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: body, ContentLength: body.length, ChecksumCRC32C: crc32c }),
          signal ? { abortSignal: signal } : {},
        );
        return r.ETag ?? "";
      } catch (error) {
        throw writeError(error, `${url(key)} part ${partNumber}`);
      }
    },
    async completeMultipart(key, uploadId, parts, signal) {
      try {
        const r = await client.send(
          new CompleteMultipartUploadCommand({
            Bucket: bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag, ChecksumCRC32C: p.crc32c })) },
          }),
          signal ? { abortSignal: signal } : {},
        );
        return r.ETag ?? "";
      } catch (error) {
        throw writeError(error, url(key));
      }
    },
    async abortMultipart(key, uploadId) {
      try {
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
      } catch (error) {
        const { status } = s3Failure(error);
        if (status !== 404) throw writeError(error, `${url(key)} abort ${uploadId}`);
        // Already gone: completed or aborted elsewhere, which is what we wanted.
      }
    },
    async listUploads(prefix) {
      const uploads: PendingUpload[] = [];
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      for (;;) {
        let page;
        try {
          page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
        } catch (error) {
          // Needs write permission on the prefix: before any write, this doubles as the probe.
          throw accessError(error, "write", `s3://${bucket}/${prefix}`, options.describe);
        }
        for (const u of page.Uploads ?? []) if (u.Key && u.UploadId) uploads.push({ key: u.Key, uploadId: u.UploadId, initiated: u.Initiated });
        if (!page.IsTruncated) return uploads;
        keyMarker = page.NextKeyMarker;
        uploadIdMarker = page.NextUploadIdMarker;
      }
    },
    async probeWrite(prefix) {
      try {
        await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, MaxUploads: 1 }));
      } catch (error) {
        throw accessError(error, "write", `s3://${bucket}/${prefix}`, options.describe);
      }
    },
    async deleteKeys(keys) {
      const deleted: string[] = [];
      const failed: Array<{ key: string; message: string }> = [];
      for (let i = 0; i < keys.length; i += 1000) {
        const batch = keys.slice(i, i + 1000);
        try {
          const r = await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: false } }));
          for (const d of r.Deleted ?? []) if (d.Key) deleted.push(d.Key);
          for (const e of r.Errors ?? []) failed.push({ key: e.Key ?? "", message: `${e.Code ?? "Error"}: ${e.Message ?? ""}` });
        } catch (error) {
          for (const key of batch) failed.push({ key, message: writeError(error, url(key)).message });
        }
      }
      return { deleted, failed };
    },
    close() {
      client.destroy();
    },
  };
}

/** Writes a small file of Ferry's own (index, manifest) in one verified, atomic PUT. */
export async function putSmallFile(dest: S3Destination, key: string, bytes: Uint8Array, contentType: string): Promise<string> {
  const hashes = createHashes();
  hashes.update(bytes);
  return dest.putObject(key, bytes, hashes.digest(), { metadata: {}, contentType });
}
