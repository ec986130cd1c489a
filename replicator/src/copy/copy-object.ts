// Copies one object: streams it from the source, hashes it on the way (CRC32C + MD5),
// compares with the source's own checksums, and writes it so that the destination checks
// too (Content-MD5 and x-amz-checksum-crc32c on a PUT, a CRC32C per part). Nothing is
// visible until it is verified: a PUT is sent only after the bytes matched, a multipart
// upload is completed only after the whole object matched, and aborted otherwise.
// Memory: one buffer per small object, and per large object at most `partsInFlight`
// parts, all drawn from the run's byte budget.
import { lineageToMetadata, type Lineage } from "../../../s3/lineage.ts";
import type { S3Destination } from "../dest/s3-destination.ts";
import { ChecksumMismatchError, SourceChangedError } from "../errors.ts";
import type { Checksums, Source, SourceObject } from "../sources/source.ts";
import { compareChecksums, crc32cBase64, createHashes, type Verification } from "./hashing.ts";
import type { Budget, RateLimit } from "./limits.ts";
import { partCount, partSizeFor } from "./part-size.ts";

export interface CopySettings {
  partSizeBytes: number;
  multipartThresholdBytes: number;
  partsInFlight: number;
}

export interface CopyContext {
  source: Source;
  dest: S3Destination;
  settings: CopySettings;
  memory: Budget;
  rate: RateLimit | undefined;
  signal: AbortSignal;
  /** Called as source bytes arrive (progress; counts re-reads too). */
  onBytes: (bytes: number) => void;
  /** Multipart uploads in progress, so a stopping run can abort them. */
  openUploads: Map<string, { key: string; uploadId: string }>;
}

export interface CopyResult {
  destKey: string;
  bytes: number;
  etag: string;
  verification: Verification;
  lineage: Lineage;
  parts: number;
}

function lineageFor(object: SourceObject, checksums: Checksums): Lineage {
  return { source: object.url, sourceVersion: object.version, sourceSize: object.size, crc32c: checksums.crc32c, md5: checksums.md5 };
}

function verify(object: SourceObject, declared: Checksums, computed: Required<Checksums>): Verification {
  const result = compareChecksums(declared, computed);
  if (!result.ok) throw new ChecksumMismatchError(object.url, result);
  return result.verification;
}

async function* metered(body: AsyncIterable<Uint8Array>, context: CopyContext): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    context.signal.throwIfAborted();
    if (context.rate) await context.rate.take(chunk.length);
    context.onBytes(chunk.length);
    yield chunk;
  }
}

async function copySingle(object: SourceObject, destKey: string, context: CopyContext): Promise<CopyResult> {
  const release = await context.memory.acquire(object.size);
  try {
    const opened = await context.source.open(object, context.signal);
    const buffer = Buffer.allocUnsafe(object.size);
    const hashes = createHashes();
    let offset = 0;
    for await (const chunk of metered(opened.body, context)) {
      if (offset + chunk.length > object.size) throw new SourceChangedError(`source is longer than listed (${object.size} bytes): ${object.url}`);
      buffer.set(chunk, offset);
      hashes.update(chunk);
      offset += chunk.length;
    }
    if (offset !== object.size) throw new SourceChangedError(`source ended after ${offset} of ${object.size} bytes: ${object.url}`);
    const computed = hashes.digest();
    const verification = verify(object, opened.declared, computed);
    const lineage = lineageFor(object, computed);
    const etag = await context.dest.putObject(destKey, buffer, computed, { metadata: lineageToMetadata(lineage), contentType: object.contentType }, context.signal);
    return { destKey, bytes: object.size, etag, verification, lineage, parts: 1 };
  } finally {
    release();
  }
}

async function copyMultipart(object: SourceObject, destKey: string, context: CopyContext): Promise<CopyResult> {
  const { settings, dest } = context;
  const partBytes = partSizeFor(object.size, settings.partSizeBytes);
  const totalParts = partCount(object.size, partBytes);
  // Lineage goes in at Create, so checksums must be known before the first byte moves:
  // from the listing or the response, or (local files) from a cheap pre-pass.
  let pre: Checksums = {};
  if (!object.crc32c && !object.md5 && context.source.checksums) pre = await context.source.checksums(object, context.signal);
  const opened = await context.source.open(object, context.signal);
  const declared: Checksums = { crc32c: opened.declared.crc32c ?? pre.crc32c, md5: opened.declared.md5 ?? pre.md5 };
  const uploadId = await dest.createMultipart(destKey, { metadata: lineageToMetadata(lineageFor(object, declared)), contentType: object.contentType }, context.signal);
  const uploadToken = `${destKey}\n${uploadId}`;
  context.openUploads.set(uploadToken, { key: destKey, uploadId });
  const parts: Array<{ partNumber: number; etag: string; crc32c: string }> = [];
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  try {
    const hashes = createHashes();
    let offset = 0;
    let partNumber = 0;
    let part: Buffer | undefined;
    let partFill = 0;
    let releasePart: (() => void) | undefined;
    const send = (buffer: Buffer, number: number, release: () => void) => {
      const crc32c = crc32cBase64(buffer);
      const task = dest
        .uploadPart(destKey, uploadId, number, buffer, crc32c, context.signal)
        .then((etag) => {
          parts.push({ partNumber: number, etag, crc32c });
        })
        .catch((error: unknown) => {
          failure ??= error;
        })
        .finally(() => {
          release();
          inFlight.delete(task);
        });
      inFlight.add(task);
    };
    for await (const chunk of metered(opened.body, context)) {
      if (failure) throw failure;
      if (offset + chunk.length > object.size) throw new SourceChangedError(`source is longer than listed (${object.size} bytes): ${object.url}`);
      hashes.update(chunk);
      let at = 0;
      while (at < chunk.length) {
        if (!part) {
          while (inFlight.size >= settings.partsInFlight) await Promise.race(inFlight);
          if (failure) throw failure;
          const size = Math.min(partBytes, object.size - offset - at);
          releasePart = await context.memory.acquire(size);
          part = Buffer.allocUnsafe(size);
          partFill = 0;
        }
        const n = Math.min(part.length - partFill, chunk.length - at);
        part.set(chunk.subarray(at, at + n), partFill);
        partFill += n;
        at += n;
        if (partFill === part.length) {
          send(part, ++partNumber, releasePart ?? (() => {}));
          part = undefined;
          releasePart = undefined;
        }
      }
      offset += chunk.length;
    }
    releasePart?.();
    await Promise.all(inFlight);
    if (failure) throw failure;
    if (offset !== object.size || partNumber !== totalParts) throw new SourceChangedError(`source ended after ${offset} of ${object.size} bytes: ${object.url}`);
    const computed = hashes.digest();
    const verification = verify(object, declared, computed);
    parts.sort((a, b) => a.partNumber - b.partNumber);
    const etag = await dest.completeMultipart(destKey, uploadId, parts, context.signal);
    context.openUploads.delete(uploadToken);
    // The object's metadata holds what was declared at Create; the index and manifest also
    // get the checksums computed here, which the destination checked part by part.
    return { destKey, bytes: object.size, etag, verification, lineage: lineageFor(object, { crc32c: declared.crc32c ?? computed.crc32c, md5: declared.md5 ?? computed.md5 }), parts: totalParts };
  } catch (error) {
    await Promise.allSettled(inFlight);
    try {
      await dest.abortMultipart(destKey, uploadId);
      context.openUploads.delete(uploadToken);
    } catch {
      // Left for the next run's stale-upload sweep; the original error is what matters.
    }
    throw error;
  }
}

export function copyObject(object: SourceObject, destKey: string, context: CopyContext): Promise<CopyResult> {
  return object.size > context.settings.multipartThresholdBytes ? copyMultipart(object, destKey, context) : copySingle(object, destKey, context);
}
