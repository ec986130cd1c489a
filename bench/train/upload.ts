// Fills the edge with a data set: every SampleFile under the data set's root goes to
// `bucket/prefix+name` (multipart for big files, a few files at a time), then a listing
// checks that every key is there with its size. Straight to the edge, not through the
// shaper: the upload is set-up, not a measured path.
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { createReadStream } from "node:fs";
import { join } from "node:path";
import { encodeManifest, manifestKey, RESERVED_PREFIX, type ManifestEntry } from "../../s3/manifest.ts";
import type { DataSet } from "./types.ts";

const MiB = 2 ** 20;

export interface UploadOptions {
  client: S3Client;
  dataSet: DataSet;
  bucket: string;
  prefix: string;
  log: (line: string) => void;
  /** Files in flight at once; default 4 (local R2 is CPU-bound here, more does not help). */
  concurrency?: number;
}

/** The upload key's grants: the data set's prefix, and the manifest `--manifest` publishes for it. */
export function uploadGrants(bucket: string, prefix: string): string[] {
  return [`all:${bucket}/${prefix}`, `all:${bucket}/${RESERVED_PREFIX}manifests/${prefix}`];
}

export async function uploadDataSet(options: UploadOptions): Promise<{ seconds: number }> {
  const { client, dataSet, bucket, prefix, log } = options;
  const started = performance.now();
  const queue = [...dataSet.files];
  let doneFiles = 0;
  let doneBytes = 0;
  let lastLog = started;
  const progress = (force: boolean) => {
    const now = performance.now();
    if (!force && now - lastLog < 5000) return;
    lastLog = now;
    const seconds = (now - started) / 1000;
    log(`upload: ${doneFiles}/${dataSet.files.length} files, ${(doneBytes / MiB).toFixed(0)}/${(dataSet.totalBytes / MiB).toFixed(0)} MiB, ${(doneBytes / MiB / Math.max(seconds, 0.001)).toFixed(1)} MiB/s`);
  };
  const worker = async () => {
    for (let file = queue.shift(); file; file = queue.shift()) {
      // R2 wants equal-sized parts (all but the last): lib-storage's fixed partSize gives that.
      // One part in flight per file (4 in all): `wrangler dev` is CPU-bound on this 2-core
      // machine, and more parts in flight only contend. Measured once each for quick unet3d
      // (559 MiB, no flexible checksum: paths.ts), load average 2–6: queueSize 1 21.4 and
      // 21.7 s, queueSize 2 33.5 and 38.7 s, 32 MiB parts × 4 51 s, 8 MiB parts 28 s, 2 files
      // at a time 26 s.
      const upload = new Upload({
        client,
        params: { Bucket: bucket, Key: prefix + file.name, Body: createReadStream(join(dataSet.root, file.name)), ContentLength: file.bytes },
        partSize: 16 * MiB,
        queueSize: 1,
      });
      await upload.done();
      doneFiles++;
      doneBytes += file.bytes;
      progress(false);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, () => worker()));
  progress(true);
  await checkListing(client, dataSet, bucket, prefix);
  return { seconds: (performance.now() - started) / 1000 };
}

/** Every object under the prefix, in key order, as a manifest entry. */
async function listEntries(client: S3Client, bucket: string, prefix: string): Promise<ManifestEntry[]> {
  const entries: ManifestEntry[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) entries.push({ key: o.Key ?? "", size: o.Size ?? -1, etag: o.ETag ?? "", lastModified: (o.LastModified ?? new Date(0)).toISOString() });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return entries;
}

/** Every file is listed under the prefix with its size: a failed upload is caught here, not mid-benchmark. */
async function checkListing(client: S3Client, dataSet: DataSet, bucket: string, prefix: string): Promise<void> {
  const sizes = new Map((await listEntries(client, bucket, prefix)).map((e) => [e.key, e.size]));
  for (const file of dataSet.files) {
    const size = sizes.get(prefix + file.name);
    if (size !== file.bytes) throw new Error(`upload check failed: ${bucket}/${prefix}${file.name} has ${size ?? "no object"}, expected ${file.bytes} bytes`);
  }
}

/**
 * Publishes the prefix's dataset manifest in the format `ferry replicate` writes (without
 * source checksums: the bench uploads from local files), so agents load the set's metadata
 * with one GET instead of a HEAD per file, as they do on a replicated dataset.
 */
export async function publishDataSetManifest(client: S3Client, bucket: string, prefix: string): Promise<{ key: string; objects: number }> {
  const entries = await listEntries(client, bucket, prefix);
  const key = manifestKey(prefix);
  const body = await encodeManifest({ bucket, prefix, entries });
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: "application/x-ndjson" }));
  return { key, objects: entries.length };
}
