// A cold read through the agent costs one origin request, not HEAD + GET: headForRead()
// fetches the metadata with the first block, which the read path then serves from memory
// and stores. Over a 30 ms origin (another cloud) that halves a small file's cold latency.
import { randomBytes } from "node:crypto";
import { afterEach, expect, test } from "vitest";
import { tempDirs } from "../cache/cache-test-support.ts";
import { DiskBlockCache } from "../cache/disk-block-cache.ts";
import { createLogger } from "../log.ts";
import { ArrivingBytes } from "../origin/arriving-bytes.ts";
import type { ObjectInfo, ObjectOrigin } from "../origin/object-origin.ts";
import { ObjectReader } from "../read/object-reader.ts";
import { MetadataCache } from "./metadata-cache.ts";

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

const BLOCK = 64 * 1024;

test("a cold read of a small object makes one origin request, and a second read none", async () => {
  const object = randomBytes(BLOCK - 100);
  const info: ObjectInfo = { bucket: "datasets", key: "ep.h5", size: object.length, etag: "e1", lastModified: new Date(0), contentType: "application/octet-stream", metadata: {} };
  const calls: string[] = [];
  const origin: ObjectOrigin = {
    listBuckets: async () => ["datasets"],
    head: async () => (calls.push("head"), info),
    revalidate: async () => "unchanged",
    readRange: async (_b, _k, _e, offset, length) => (calls.push("range"), Uint8Array.from(object.subarray(offset, offset + length))),
    list: async () => { throw new Error("not listed in this test"); },
    getSmall: async () => undefined,
    headWithFirstBlock: async (_b, _k, size) => (calls.push("first"), { info, first: ArrivingBytes.of(Uint8Array.from(object.subarray(0, size))) }),
  };
  const logger = createLogger({ component: "test", level: "error", write: () => undefined });
  const cache = await DiskBlockCache.open({ dir: await dirs.make(), blockSizeBytes: BLOCK, quotaBytes: 1 << 30, minFreeRatio: 0 });
  const reader = new ObjectReader({ cache, origin, logger });
  const metadata = new MetadataCache({ origin, logger, ttlSeconds: "indefinite" });
  metadata.landFirstBlocksWith(BLOCK, (i, data) => reader.landFirstBlock(i, data));

  for (let pass = 0; pass < 2; pass++) {
    const got = await metadata.headForRead("datasets", "ep.h5");
    expect(got?.etag).toBe("e1");
    const parts: Buffer[] = [];
    for await (const lease of reader.read(info, 0, info.size)) {
      parts.push(Buffer.from(lease.data));
      lease.release();
    }
    expect(Buffer.concat(parts).equals(object)).toBe(true);
  }
  expect(calls).toEqual(["first"]);
  await new Promise((r) => setTimeout(r, 50));
  expect(cache.has({ bucket: "datasets", key: "ep.h5", etag: "e1", index: 0 })).toBe(true);
  await cache.close();
});

test("a cold read does not wait for the manifest probes: they load behind it", async () => {
  const object = randomBytes(1000);
  const info: ObjectInfo = { bucket: "datasets", key: "runs/r1/ep.h5", size: object.length, etag: "e1", lastModified: new Date(0), contentType: "application/octet-stream", metadata: {} };
  const probes: string[] = [];
  let answerProbes: () => void = () => undefined;
  const probesAnswered = new Promise<void>((resolve) => (answerProbes = resolve));
  const origin: ObjectOrigin = {
    listBuckets: async () => ["datasets"],
    head: async () => info,
    revalidate: async () => "unchanged",
    readRange: async (_b, _k, _e, offset, length) => Uint8Array.from(object.subarray(offset, offset + length)),
    list: async () => { throw new Error("not listed in this test"); },
    // A far origin's manifest probes: answered (none found) only when the test says so.
    getSmall: async (_b, key) => {
      probes.push(key);
      await probesAnswered;
      return undefined;
    },
    headWithFirstBlock: async (_b, _k, size) => ({ info, first: ArrivingBytes.of(Uint8Array.from(object.subarray(0, size))) }),
  };
  const logger = createLogger({ component: "test", level: "error", write: () => undefined });
  const metadata = new MetadataCache({ origin, logger, ttlSeconds: "indefinite" });
  const landed: string[] = [];
  metadata.landFirstBlocksWith(BLOCK, (i) => landed.push(i.key));
  // Resolves while every probe is still unanswered: before, it waited for them one by one.
  expect((await metadata.headForRead("datasets", "runs/r1/ep.h5"))?.etag).toBe("e1");
  expect(landed).toEqual(["runs/r1/ep.h5"]);
  expect(probes.length).toBeGreaterThan(0);
  answerProbes();
  await new Promise((r) => setTimeout(r, 10));
  // Once known absent, a later cold read asks nothing about manifests again.
  const before = probes.length;
  await metadata.headForRead("datasets", "runs/r1/ep2.h5");
  expect(probes.length).toBe(before);
});
