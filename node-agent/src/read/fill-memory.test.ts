// Fills reuse pooled memory (BufferPool), so a buffer must never go back to the pool while a
// lease lent from it is still held: a real ObjectReader and DiskBlockCache (temp dir), with an
// in-memory origin that streams through the pool. Held leases keep their bytes while many
// other fills come and go; released ones let the pool reuse their memory.
import { randomBytes } from "node:crypto";
import { afterEach, expect, test } from "vitest";
import { tempDirs } from "../cache/cache-test-support.ts";
import { DiskBlockCache } from "../cache/disk-block-cache.ts";
import { createLogger } from "../log.ts";
import { ArrivingBytes } from "../origin/arriving-bytes.ts";
import { BufferPool } from "../origin/buffer-pool.ts";
import type { ObjectInfo, ObjectOrigin } from "../origin/object-origin.ts";
import { ObjectReader } from "./object-reader.ts";

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

const BLOCK = 64 * 1024;

function objects(count: number): Map<string, Buffer> {
  return new Map(Array.from({ length: count }, (_, i) => [`f${i}.bin`, randomBytes(BLOCK - 100 * i)]));
}

async function setup(files: Map<string, Buffer>) {
  const pool = new BufferPool(BLOCK, 4);
  const origin: ObjectOrigin = {
    listBuckets: async () => ["datasets"],
    head: async () => undefined,
    revalidate: async () => "unchanged",
    readRange: async (_b, key, _e, offset, length) => Uint8Array.from(files.get(key)!.subarray(offset, offset + length)),
    streamRange: (_b, key, _e, offset, length) => {
      const bytes = new ArrivingBytes(length, pool.take(length));
      // Two pieces, a turn apart: readers join while it streams.
      const data = files.get(key)!.subarray(offset, offset + length);
      setImmediate(() => {
        bytes.push(data.subarray(0, length >> 1));
        setImmediate(() => bytes.push(data.subarray(length >> 1)));
      });
      return bytes;
    },
    list: async () => { throw new Error("not listed in this test"); },
    getSmall: async () => undefined,
  };
  const cache = await DiskBlockCache.open({ dir: await dirs.make(), blockSizeBytes: BLOCK, quotaBytes: 1 << 30, minFreeRatio: 0 });
  const logger = createLogger({ component: "test", level: "error", write: () => undefined });
  const reader = new ObjectReader({ cache, origin, logger, readAheadBlocks: 0 });
  const info = (key: string): ObjectInfo => ({ bucket: "datasets", key, size: files.get(key)!.length, etag: "e1", lastModified: new Date(0), contentType: "application/octet-stream", metadata: {} });
  return { pool, cache, reader, info };
}

test("a held lease keeps its bytes while other fills reuse the pool's memory", async () => {
  const files = objects(33);
  const { pool, cache, reader, info } = await setup(files);
  // Held: a whole block, a streamed piece, and a piece from read().
  const whole = await reader.block(info("f0.bin"), 0);
  const piece = (await reader.streamPiece(info("f1.bin"), 0, 100, 5000))!;
  const stream = reader.read(info("f2.bin"), 0, files.get("f2.bin")!.length);
  const streamed = (await stream.next()).value!;
  // Many more fills, six at a time, each batch released together: their memory goes round the
  // whole pool (a pool hands out its most recently freed buffer first).
  for (let i = 3; i < 33; i += 6) {
    const keys = Array.from({ length: 6 }, (_, j) => `f${i + j}.bin`);
    const leases = await Promise.all(keys.map((key) => reader.block(info(key), 0)));
    keys.forEach((key, j) => expect(Buffer.from(leases[j]!.data).equals(files.get(key)!)).toBe(true));
    for (const lease of leases) lease.release();
    await new Promise((r) => setTimeout(r, 20)); // lets cache writes end, and their holds with them
  }
  expect(pool.stats().reused).toBeGreaterThan(10);
  expect(Buffer.from(whole.data).equals(files.get("f0.bin")!)).toBe(true);
  expect(Buffer.from(piece.data).equals(files.get("f1.bin")!.subarray(100, 5000))).toBe(true);
  expect(Buffer.from(streamed.data).equals(files.get("f2.bin")!.subarray(0, streamed.data.length))).toBe(true);
  whole.release();
  piece.release();
  streamed.release();
  await stream.return(undefined);
  await cache.close();
});

test("memory is reused only once every holder let go: the fill, its cache write and each lease", async () => {
  const files = objects(2);
  const { pool, cache, reader, info } = await setup(files);
  const lease = await reader.block(info("f0.bin"), 0);
  await new Promise((r) => setTimeout(r, 20)); // the cache write has ended
  expect(pool.stats().free).toBe(0); // the lease still holds it
  lease.release();
  await new Promise((r) => setImmediate(r));
  expect(pool.stats().free).toBe(1);
  // The next fill takes that buffer: reuse, not a new allocation.
  (await reader.block(info("f1.bin"), 0)).release();
  expect(pool.stats()).toMatchObject({ taken: 2, reused: 1 });
  await cache.close();
});
