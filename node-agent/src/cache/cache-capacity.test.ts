// Capacity on real temp dirs: quota and watermarks with LRU order, pins under pressure and
// across restart, TTL, a full disk (a real 2 MiB tmpfs where mounting is allowed) and an
// unwritable cache dir.
import { execFileSync } from "node:child_process";
import { chmod, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, test, vi } from "vitest";
import { CacheFaultError } from "./block-cache.ts";
import { BLOCKS_DIR } from "./block-format.ts";
import { allBlockFiles, blockId, bytes, tempDirs } from "./cache-test-support.ts";
import { DiskBlockCache, type DiskBlockCacheOptions } from "./disk-block-cache.ts";

const dirs = tempDirs();
const opened: DiskBlockCache[] = [];
const mounts: string[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
  for (const m of mounts.splice(0)) execFileSync("umount", [m]);
  await dirs.cleanup();
});

// Keys of 3 characters make a 57-byte header (one chunk CRC), so 943 bytes of data make a 1000-byte file.
const DATA = 943;
const k = (i: number): string => `k${String(i).padStart(2, "0")}`;

async function cacheIn(dir: string, extra: Partial<DiskBlockCacheOptions> = {}): Promise<DiskBlockCache> {
  const c = await DiskBlockCache.open({ dir, blockSizeBytes: 4096, quotaBytes: 10_000, minFreeRatio: 0, highWatermark: 0.95, lowWatermark: 0.85, ...extra });
  opened.push(c);
  await c.ready();
  return c;
}

async function bytesOnDisk(dir: string): Promise<number> {
  let n = 0;
  for (const f of await allBlockFiles(dir)) n += (await stat(f)).size;
  return n;
}

/** Mounts a tmpfs (root only); undefined where this machine does not allow it. */
function tryMount(dir: string, options: string): string | undefined {
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", options, "tmpfs", dir], { stdio: "ignore" });
    mounts.push(dir);
    return dir;
  } catch {
    return undefined; // not root, or no mount privilege: the caller skips
  }
}

describe("quota and eviction", () => {
  test("background eviction between watermarks takes least recently used blocks first", async () => {
    const dir = await dirs.make();
    const c = await cacheIn(dir);
    for (let i = 0; i < 9; i++) await c.put(blockId(k(i)), bytes(DATA));
    expect(c.stats()).toMatchObject({ usedBytes: 9000, evictedBlocks: 0 });
    await c.get(blockId(k(0))); // k00 becomes the most recently used
    await c.put(blockId(k(9)), bytes(DATA)); // 10,000 > 95%: evict down to 85%
    await c.whenIdle();
    expect(c.stats()).toMatchObject({ usedBytes: 8000, blocks: 8, evictedBlocks: 2 });
    expect(c.has(blockId(k(1)))).toBe(false);
    expect(c.has(blockId(k(2)))).toBe(false);
    for (const i of [0, 3, 9]) expect(c.has(blockId(k(i)))).toBe(true);
    expect(await bytesOnDisk(dir)).toBe(8000);
  });

  test("the quota is never exceeded, with sequential or concurrent puts", async () => {
    const dir = await dirs.make();
    const c = await cacheIn(dir, { highWatermark: 1, lowWatermark: 1 });
    for (let i = 0; i < 30; i++) {
      await c.put(blockId(k(i)), bytes(DATA));
      expect(await bytesOnDisk(dir)).toBeLessThanOrEqual(10_000);
    }
    await Promise.all(Array.from({ length: 40 }, (_, i) => c.put(blockId(k(i + 50)), bytes(DATA))));
    await c.whenIdle();
    expect(c.stats().usedBytes).toBeLessThanOrEqual(10_000);
    expect(await bytesOnDisk(dir)).toBeLessThanOrEqual(10_000);
    expect(c.stats()).toMatchObject({ writeFailures: 0, blocks: 10 });
  });

  test("a full cache of pinned blocks refuses a put with CacheFaultError", async () => {
    const c = await cacheIn(await dirs.make());
    await c.pin("datasets", "k");
    for (let i = 0; i < 10; i++) await c.put(blockId(k(i)), bytes(DATA));
    await expect(c.put(blockId("x00"), bytes(DATA))).rejects.toBeInstanceOf(CacheFaultError);
    expect(c.stats()).toMatchObject({ writeFailures: 1, blocks: 10, pinnedBlocks: 10 });
  });
});

describe("pins", () => {
  test("pinned blocks survive eviction pressure, a restart, and pressure again; unpinned they go", async () => {
    const dir = await dirs.make();
    const c = await cacheIn(dir);
    await c.pin("datasets", "p/");
    await c.pin("datasets", "p/"); // idempotent
    for (let i = 0; i < 3; i++) await c.put(blockId(`p/${i}`), bytes(DATA - 2));
    await c.put(blockId("p/0", 0, "other-bucket-same-key", "other"), bytes(DATA - 2)); // other bucket: not pinned
    for (let i = 0; i < 30; i++) await c.put(blockId(k(i)), bytes(DATA));
    await c.whenIdle();
    for (let i = 0; i < 3; i++) expect(await c.get(blockId(`p/${i}`))).toBeDefined();
    expect(c.stats().pinnedBlocks).toBe(3);
    await c.close();

    const again = await cacheIn(dir);
    expect(again.pins()).toEqual([{ bucket: "datasets", prefix: "p/" }]);
    expect(again.stats().pinnedBlocks).toBe(3);
    for (let i = 30; i < 60; i++) await again.put(blockId(k(i)), bytes(DATA));
    await again.whenIdle();
    for (let i = 0; i < 3; i++) expect(await again.get(blockId(`p/${i}`))).toBeDefined();

    await again.unpin("datasets", "p/");
    expect(again.pins()).toEqual([]);
    for (let i = 60; i < 80; i++) await again.put(blockId(k(i)), bytes(DATA));
    await again.whenIdle();
    expect(again.stats().pinnedBlocks).toBe(0);
    for (let i = 0; i < 3; i++) expect(again.has(blockId(`p/${i}`))).toBe(false);
  });

  test("pinning a prefix pins blocks already cached under it, and only those", async () => {
    const dir = await dirs.make();
    const first = await cacheIn(dir);
    for (let i = 0; i < 4; i++) await first.put(blockId(`later/${i}`), bytes(100));
    await first.put(blockId("later/0", 0, "e", "other"), bytes(100));
    await first.put(blockId("lateral"), bytes(100));
    await first.put(blockId(`later/${"x".repeat(5000)}`), bytes(100)); // a header longer than the first read
    await first.close();
    // After a restart the index knows only hashes: pin() reads headers to find the keys.
    const c = await cacheIn(dir);
    await c.pin("datasets", "later/");
    expect(c.stats().pinnedBlocks).toBe(5);
    await c.close();
    const again = await cacheIn(dir);
    expect(again.stats().pinnedBlocks).toBe(5);
  });
});

describe("TTL", () => {
  test("a block older than the TTL is a miss and is removed, also after a restart", async () => {
    const dir = await dirs.make();
    const clock = { ms: 1_700_000_000_000 };
    const now = (): number => clock.ms;
    const c = await cacheIn(dir, { ttlSeconds: 60, now });
    await c.put(blockId("a"), bytes(10));
    await c.put(blockId("b"), bytes(10));
    clock.ms += 59_000;
    expect(await c.get(blockId("a"))).toBeDefined();
    clock.ms += 2_000;
    expect(c.has(blockId("a"))).toBe(false);
    expect(await c.get(blockId("a"))).toBeUndefined();
    expect(c.stats()).toMatchObject({ expiredBlocks: 1, blocks: 1 });
    await c.close();
    const again = await cacheIn(dir, { ttlSeconds: 60, now });
    expect(await again.get(blockId("b"))).toBeUndefined();
    expect(await allBlockFiles(dir)).toEqual([]);
  });

  test("the background sweep removes expired blocks nobody reads", async () => {
    const dir = await dirs.make();
    const clock = { ms: 1_700_000_000_000 };
    const c = await cacheIn(dir, { ttlSeconds: 2, now: () => clock.ms });
    for (let i = 0; i < 5; i++) await c.put(blockId(k(i)), bytes(10));
    clock.ms += 10_000;
    await vi.waitFor(() => expect(c.stats().expiredBlocks).toBe(5), { timeout: 10_000, interval: 100 });
    await c.whenIdle();
    expect(await allBlockFiles(dir)).toEqual([]);
    expect(c.stats().usedBytes).toBe(0);
  });
});

describe("full and unwritable disks", () => {
  test("ENOSPC during a put: temp file removed, failure counted, CacheFaultError; reads go on", async (ctx) => {
    const mnt = tryMount(await dirs.make(), "size=2m");
    if (mnt === undefined) return ctx.skip();
    const frozen = 1_700_000_000_000; // a frozen clock keeps the free-space check from refreshing, so the write itself hits ENOSPC
    const c = await cacheIn(mnt, { blockSizeBytes: 1 << 20, quotaBytes: 1 << 30, now: () => frozen });
    await c.put(blockId("small"), bytes(1000));
    await writeFile(join(mnt, "filler"), Buffer.alloc(1536 * 1024)).catch(() => undefined);
    const err = await c.put(blockId("big"), bytes(1 << 20)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CacheFaultError);
    expect((err as Error).cause).toMatchObject({ code: "ENOSPC" });
    expect(c.stats()).toMatchObject({ writeFailures: 1, blocks: 1 });
    expect(await readdir(join(mnt, BLOCKS_DIR, "tmp"))).toEqual([]);
    expect(await c.get(blockId("small"))).toBeDefined();
    expect(await c.get(blockId("big"))).toBeUndefined();
  });

  test("an unwritable cache dir is a one-line error from open()", async (ctx) => {
    const dir = await dirs.make();
    if (process.getuid?.() === 0) {
      if (tryMount(dir, "ro,size=1m") === undefined) return ctx.skip();
    } else {
      await chmod(dir, 0o555);
    }
    const err = await DiskBlockCache.open({ dir, quotaBytes: 1 << 20 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CacheFaultError);
    expect((err as Error).message).toMatch(/^cache dir is not writable: \S+ \(E[A-Z]+\)$/);
  });
});
