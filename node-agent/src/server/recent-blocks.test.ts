// RecentBlocks over a real ObjectReader and DiskBlockCache (temp dir) with an in-memory
// origin: kernel-sized reads at odd offsets return exactly the object's bytes, concurrent
// reads of one block read it once, and blocks shared by overlapping copies are never
// released (reused) while one of them still copies out of it.
import { randomBytes } from "node:crypto";
import { afterEach, expect, test } from "vitest";
import { tempDirs } from "../cache/cache-test-support.ts";
import { DiskBlockCache } from "../cache/disk-block-cache.ts";
import { createLogger } from "../log.ts";
import type { ObjectInfo, ObjectOrigin } from "../origin/object-origin.ts";
import { ObjectReader } from "../read/object-reader.ts";
import { RecentBlocks } from "./recent-blocks.ts";

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

const BLOCK = 64 * 1024;

/** An in-memory origin holding one object; `reads` records the offset of every ranged read. */
function memoryOrigin(object: Buffer, key: string): { info: ObjectInfo; reads: number[]; origin: ObjectOrigin } {
  const info: ObjectInfo = { bucket: "datasets", key, size: object.length, etag: "e1", lastModified: new Date(0), contentType: "application/octet-stream", metadata: {} };
  const reads: number[] = [];
  const origin: ObjectOrigin = {
    listBuckets: async () => ["datasets"],
    head: async () => info,
    revalidate: async () => "unchanged",
    readRange: async (_b, _k, _e, offset, length) => {
      reads.push(offset);
      return Uint8Array.from(object.subarray(offset, offset + length));
    },
    list: async () => { throw new Error("not listed in this test"); },
    getSmall: async () => undefined,
  };
  return { info, reads, origin };
}

async function setup(object: Buffer) {
  const { info, reads, origin } = memoryOrigin(object, "f.bin");
  const cache = await DiskBlockCache.open({ dir: await dirs.make(), blockSizeBytes: BLOCK, quotaBytes: 1 << 30, minFreeRatio: 0 });
  const logger = createLogger({ component: "test", level: "error", write: () => undefined });
  const reader = new ObjectReader({ cache, origin, logger, readAheadBlocks: 0 });
  return { info, reads, cache, recent: new RecentBlocks({ reader, maxBlocks: 2 }) };
}

test("kernel-sized reads at odd offsets, cold then warm, are byte-exact", async () => {
  const object = randomBytes(5 * BLOCK + 1234);
  const { info, reads, cache, recent } = await setup(object);
  for (const pass of [0, 1]) {
    const spans: Array<[number, number]> = [];
    for (let at = 7 * pass; at < object.length; at += 30_000) spans.push([at, Math.min(40_000, object.length - at)]);
    const got = await Promise.all(spans.map(async ([at, len]) => {
      const into = Buffer.alloc(len);
      expect(await recent.copy(info, at, len, into)).toBe(len);
      return into;
    }));
    spans.forEach(([at, len], i) => expect(got[i]?.equals(object.subarray(at, at + len))).toBe(true));
  }
  expect(new Set(reads)).toEqual(new Set([0, 1, 2, 3, 4, 5].map((i) => i * BLOCK)));
  recent.clear();
  await cache.close();
});

test("concurrent kernel reads within one block read it once", async () => {
  const object = randomBytes(3 * BLOCK);
  const { info, reads, cache, recent } = await setup(object);
  const ok = await Promise.all(Array.from({ length: 8 }, async (_, j) => {
    const into = Buffer.alloc(4096);
    await recent.copy(info, BLOCK + j * 5000, 4096, into);
    return into.equals(object.subarray(BLOCK + j * 5000, BLOCK + j * 5000 + 4096));
  }));
  expect(ok.every(Boolean)).toBe(true);
  expect(reads).toEqual([BLOCK]);
  recent.clear();
  await cache.close();
});

test("a block evicted from the LRU while copies still use it keeps its bytes until they end", async () => {
  const object = randomBytes(6 * BLOCK);
  const { info, cache, recent } = await setup(object);
  // Warm every block, then read all of them at once through a 2-block LRU: later blocks evict earlier ones mid-flight.
  for (let i = 0; i < 6; i++) await recent.copy(info, i * BLOCK, BLOCK, Buffer.alloc(BLOCK));
  for (let round = 0; round < 5; round++) {
    const got = await Promise.all(Array.from({ length: 24 }, async (_, j) => {
      const at = (j % 6) * BLOCK + (j % 4) * 1000;
      const into = Buffer.alloc(20_000);
      await recent.copy(info, at, 20_000, into);
      return into.equals(object.subarray(at, at + 20_000));
    }));
    expect(got.every(Boolean)).toBe(true);
  }
  recent.clear();
  await cache.close();
});

test("a cold sequential read with read-ahead fetches each block from the origin once, even when cache writes lag", async () => {
  const object = randomBytes(8 * BLOCK + 99);
  const { info, reads, origin } = memoryOrigin(object, "seq.bin");
  const disk = await DiskBlockCache.open({ dir: await dirs.make(), blockSizeBytes: BLOCK, quotaBytes: 1 << 30, minFreeRatio: 0 });
  // A slow disk: each write lands 50 ms after the fill, so later reads and read-aheads
  // arrive while the block is neither in flight nor on disk.
  const cache = Object.assign(Object.create(disk) as DiskBlockCache, {
    put: async (id: Parameters<DiskBlockCache["put"]>[0], data: Uint8Array) => {
      await new Promise((r) => setTimeout(r, 50));
      return disk.put(id, data);
    },
  });
  const logger = createLogger({ component: "test", level: "error", write: () => undefined });
  const reader = new ObjectReader({ cache, origin, logger, readAheadBlocks: 2, windowBlocks: 1 });
  const recent = new RecentBlocks({ reader, maxBlocks: 1 });
  const into = Buffer.alloc(object.length);
  // The kernel's way: 16 KiB requests, one after another.
  for (let at = 0; at < object.length; at += 16_384) await recent.copy(info, at, Math.min(16_384, object.length - at), into.subarray(at));
  expect(into.equals(object)).toBe(true);
  expect(reads.sort((a, b) => a - b)).toEqual(Array.from({ length: 9 }, (_, i) => i * BLOCK));
  expect(reader.stats.bytesFromOrigin).toBe(object.length);
  recent.clear();
  await new Promise((r) => setTimeout(r, 100));
  await disk.close();
});

test("lend() hands out a slice of a held block, read once, and stays exact while lent", async () => {
  const object = randomBytes(3 * BLOCK);
  const { info, reads, cache, recent } = await setup(object);
  const lent = await Promise.all([0, 1, 2].map((j) => recent.lend(info, BLOCK + j * 1000, 5000)));
  // Push the block out of the 2-block memory while it is lent: its bytes must not change.
  await recent.copy(info, 0, 10, Buffer.alloc(10));
  await recent.copy(info, 2 * BLOCK, 10, Buffer.alloc(10));
  lent.forEach((l, j) => expect(Buffer.from(l.data).equals(object.subarray(BLOCK + j * 1000, BLOCK + j * 1000 + 5000))).toBe(true));
  for (const l of lent) l.release();
  expect(reads.filter((r) => r === BLOCK)).toHaveLength(1);
  await expect(recent.lend(info, 3 * BLOCK - 10, 20)).rejects.toThrow(/short/);
  recent.clear();
  await cache.close();
});
