// Any S3 endpoint as a source (s3://bucket/prefix): AWS, R2, another Ferry edge. The
// version is the ETag; reads pin it with If-Match. Declared checksums come from a plain
// MD5 ETag, full-object x-amz-checksum-crc32c, or ferry-* lineage left by an earlier copy.
import { GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { lineageFromMetadata } from "../../../s3/lineage.ts";
import type { BucketLocation } from "../locations.ts";
import { InputError, SourceChangedError, TransferError } from "../errors.ts";
import { isTransient, s3Failure, type CountingClient } from "../s3-client.ts";
import { md5FromEtag, type Checksums, type OpenedObject, type Source, type SourceObject } from "./source.ts";

export function createS3Source(location: BucketLocation, s3: CountingClient): Source {
  const { bucket, prefix } = location;
  const client = s3.client;
  const toObject = (key: string, size: number, etag: string): SourceObject => ({
    key: key.slice(prefix.length),
    url: `s3://${bucket}/${key}`,
    size,
    version: etag,
    md5: md5FromEtag(etag),
  });
  return {
    url: location.url,
    egress: "s3",
    async check() {
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }));
      } catch (error) {
        const { status, code } = s3Failure(error);
        if (status === 404 || code === "NoSuchBucket" || code === "NotFound") throw new InputError(`source bucket does not exist: s3://${bucket}`, { cause: error });
        if (status === 403) throw new InputError(`source key may not read s3://${bucket} (access denied): check FERRY_SOURCE_ACCESS_KEY_ID`, { cause: error });
        throw new InputError(`cannot reach source s3://${bucket}: ${code || String(error)}`, { cause: error });
      }
    },
    async *list(signal) {
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token, MaxKeys: 1000 }), { abortSignal: signal });
        for (const o of page.Contents ?? []) {
          if (o.Key === undefined || o.Key.endsWith("/")) continue; // folder markers hold no data
          yield toObject(o.Key, o.Size ?? 0, o.ETag ?? "");
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    },
    async stat(key, signal) {
      try {
        const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: prefix + key }), { abortSignal: signal });
        return toObject(prefix + key, head.ContentLength ?? 0, head.ETag ?? "");
      } catch (error) {
        if (s3Failure(error).status === 404) return undefined;
        throw error;
      }
    },
    async open(object, signal): Promise<OpenedObject> {
      let response;
      try {
        response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: prefix + object.key, IfMatch: object.version || undefined, ChecksumMode: "ENABLED" }), { abortSignal: signal });
      } catch (error) {
        const { status } = s3Failure(error);
        if (status === 412 || status === 404) throw new SourceChangedError(`source changed since it was listed: ${object.url}`, { cause: error });
        throw new TransferError(`read failed: ${object.url}: ${s3Failure(error).code || String(error)}`, { retryable: isTransient(error), cause: error });
      }
      const lineage = lineageFromMetadata(response.Metadata ?? {});
      const fullCrc = response.ChecksumCRC32C && !response.ChecksumCRC32C.includes("-") ? response.ChecksumCRC32C : undefined;
      const declared: Checksums = { crc32c: fullCrc ?? lineage.crc32c, md5: object.md5 ?? lineage.md5 };
      const body = response.Body as AsyncIterable<Uint8Array> | undefined;
      if (!body) throw new TransferError(`read returned no body: ${object.url}`, { retryable: true });
      return { declared, body };
    },
    async close() {
      client.destroy();
    },
  };
}
