// The training bench's set-up against a real edge: the upload puts every file under the
// prefix, and `--manifest` publishes a dataset manifest that an agent's parser accepts and
// that lists exactly the uploaded objects with the edge's own sizes and ETags.
import { GetObjectCommand, HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publishDataSetManifest, uploadDataSet, uploadGrants } from "../bench/train/upload.ts";
import { manifestKey, parseManifest } from "../s3/manifest.ts";
import { startLocalEdge, type LocalEdge } from "./helpers/local-edge.ts";
import { tinyDataSet } from "./helpers/tiny-data-set.ts";

const BUCKET = "datasets";
const PREFIX = "train/trajectory/";

let edge: LocalEdge;
const workDir = mkdtempSync(join(tmpdir(), "ferry-train-upload-"));
beforeAll(async () => {
  edge = await startLocalEdge();
}, 120_000);
afterAll(async () => {
  await edge?.stop();
  rmSync(workDir, { recursive: true, force: true });
});

describe("bench:train set-up", () => {
  it("with the upload key bench:train makes, --manifest's publish writes the set's manifest in the replicator's format", { timeout: 120_000 }, async () => {
    const dataSet = tinyDataSet(join(workDir, "source"), { "episode_000001.hdf5": 70_001, "episode_000000.hdf5": 300_000, "part/episode_000002.hdf5": 1 });
    const writeKey = await edge.createKey(uploadGrants(BUCKET, PREFIX), { name: "bench-upload" });
    const client = new S3Client({ endpoint: edge.url, region: "auto", forcePathStyle: true, credentials: writeKey, maxAttempts: 1 });
    try {
      await uploadDataSet({ client, dataSet, bucket: BUCKET, prefix: PREFIX, log: () => undefined });
      const published = await publishDataSetManifest(client, BUCKET, PREFIX);
      expect(published).toEqual({ key: manifestKey(PREFIX), objects: 3 });

      const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: published.key }));
      const manifest = await parseManifest(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
      expect(manifest.header).toMatchObject({ bucket: BUCKET, prefix: PREFIX, objects: 3 });
      expect(manifest.entries.map((e) => e.key)).toEqual(["episode_000000.hdf5", "episode_000001.hdf5", "part/episode_000002.hdf5"].map((n) => PREFIX + n));
      for (const entry of manifest.entries) {
        const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: entry.key }));
        expect({ size: entry.size, etag: entry.etag }).toEqual({ size: head.ContentLength, etag: head.ETag });
      }
    } finally {
      client.destroy();
    }
  });
});
