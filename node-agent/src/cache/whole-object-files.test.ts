// Whole-object files on a real temp dir (ext4 or tmpfs, both keep user xattrs): a wholly
// cached version rewritten as one file of only its bytes, read back as blocks and ranges,
// held from eviction, rebuilt by the start-up scan, and checked like any block.
import { open, readFile, stat } from "node:fs/promises";
import { afterEach, describe, expect, test } from "vitest";
import { fitsWholeFile, wholeChunkBytesFor } from "./block-format.ts";
import { allBlockFiles, blockId, bytes, cacheOpener, recordingLogger, tempDirs } from "./cache-test-support.ts";
import type { DiskBlockCache } from "./disk-block-cache.ts";
import { readWholeHeaderBytes } from "./whole-files.ts";

const BLOCK = 64 * 1024;
const dirs = tempDirs();
const { cacheIn, closeAll } = cacheOpener({ blockSizeBytes: BLOCK, quotaBytes: 1 << 30, minFreeRatio: 0 });
afterEach(async () => {
  await closeAll();
  await dirs.cleanup();
});

/** Puts every block of `data` as object `key`; returns the object as holdWholeFile takes it. */
async function putObject(c: DiskBlockCache, key: string, data: Buffer, etag = "etag-1") {
  for (let i = 0; i * BLOCK < data.length; i++) await c.put(blockId(key, i, etag), data.subarray(i * BLOCK, (i + 1) * BLOCK));
  return { bucket: "datasets", key, etag, size: data.length };
}

async function readBlock(c: DiskBlockCache, key: string, index: number): Promise<Buffer | undefined> {
  const got = await c.get(blockId(key, index));
  return got === undefined ? undefined : Buffer.from(got);
}

describe("whole-object files", () => {
  test("a wholly cached version becomes one file of exactly its bytes; its blocks read back whole, in ranges and by location", async () => {
    const dir = await dirs.make();
    const c = await cacheIn(dir);
    const data = bytes(2 * BLOCK + 10_000);
    const object = await putObject(c, "rec/a.bin", data);
    const usedAsBlocks = c.stats().usedBytes;
    const path = await c.holdWholeFile(object);
    expect(path).toBeDefined();
    expect((await readFile(path ?? "")).equals(data)).toBe(true);
    // The blocks' files are gone; the cache counts the object's bytes once, without headers.
    expect(await allBlockFiles(dir)).toEqual([path]);
    expect(c.stats()).toMatchObject({ usedBytes: data.length, blocks: 1, objects: 1 });
    expect(usedAsBlocks).toBeGreaterThan(data.length);
    for (let i = 0; i < 3; i++) expect((await readBlock(c, "rec/a.bin", i))?.equals(data.subarray(i * BLOCK, (i + 1) * BLOCK))).toBe(true);
    const range = await c.leaseRange(blockId("rec/a.bin", 1), 1000, 70_000);
    expect(Buffer.from(range?.data ?? []).equals(data.subarray(BLOCK + 1000, 2 * BLOCK))).toBe(true);
    range?.release();
    const where = c.locate(blockId("rec/a.bin", 2));
    expect(where).toMatchObject({ path, dataOffset: 2 * BLOCK, dataLength: 10_000 });
    expect(c.has(blockId("rec/a.bin", 2))).toBe(true);
    expect(c.has(blockId("rec/a.bin", 0, "etag-2"))).toBe(false);
    // A second put of a block the file holds writes nothing.
    await c.put(blockId("rec/a.bin", 0), data.subarray(0, BLOCK));
    expect(await allBlockFiles(dir)).toEqual([path]);
  });

  test("putWhole stores a whole object as its whole-object file at once, which holdWholeFile then holds as it is", async () => {
    const dir = await dirs.make();
    const c = await cacheIn(dir);
    const data = bytes(40_000);
    const object = { bucket: "datasets", key: "ep/1.h5", etag: "etag-1", size: data.length };
    await c.putWhole(object, data);
    const [file] = await allBlockFiles(dir);
    expect(await allBlockFiles(dir)).toHaveLength(1);
    expect((await readFile(file ?? "")).equals(data)).toBe(true); // no block header: the bytes from offset 0
    expect(c.stats()).toMatchObject({ usedBytes: data.length, objects: 1 });
    expect((await readBlock(c, "ep/1.h5", 0))?.equals(data)).toBe(true);
    // Held as it is: the same inode, not a rewrite; and evictable again once released.
    const before = await stat(file ?? "");
    expect(await c.holdWholeFile(object)).toBe(file);
    expect((await stat(file ?? "")).ino).toBe(before.ino);
    c.releaseWholeFile(object);
    // Where a whole-object file cannot be (blocks that are not whole chunks here), it is stored as blocks.
    const blocksDir = await dirs.make();
    const odd = await cacheIn(blocksDir, { blockSizeBytes: 100_000 });
    const two = bytes(150_000);
    expect(fitsWholeFile({ bucket: "datasets", key: "odd.bin", etag: "etag-1", size: two.length }, 100_000)).toBe(false);
    await odd.putWhole({ bucket: "datasets", key: "odd.bin", etag: "etag-1", size: two.length }, two);
    expect(await allBlockFiles(blocksDir)).toHaveLength(2);
    expect(Buffer.from((await odd.get(blockId("odd.bin", 1))) ?? []).equals(two.subarray(100_000))).toBe(true);
  });

  test("is not made while a block is missing, nor for a version too large for a header in an xattr", async () => {
    const c = await cacheIn(await dirs.make());
    const data = bytes(3 * BLOCK);
    await c.put(blockId("gap.bin", 0), data.subarray(0, BLOCK));
    await c.put(blockId("gap.bin", 2), data.subarray(2 * BLOCK));
    expect(await c.holdWholeFile({ bucket: "datasets", key: "gap.bin", etag: "etag-1", size: data.length })).toBeUndefined();
    expect(await readBlock(c, "gap.bin", 2)).toEqual(data.subarray(2 * BLOCK));
    // A 4-byte CRC per chunk in a 3,968-byte xattr: 64 KiB chunks reach about 60 MiB, chunks
    // doubled up to the 4 MiB block size about 3.7 GiB.
    expect(wholeChunkBytesFor({ bucket: "b", key: "k", etag: "e", size: 7_340_032 }, 4 * 2 ** 20)).toBe(64 * 1024);
    expect(wholeChunkBytesFor({ bucket: "b", key: "k", etag: "e", size: 146_600_628 }, 4 * 2 ** 20)).toBe(256 * 1024);
    expect(fitsWholeFile({ bucket: "b", key: "k", etag: "e", size: 4 * 2 ** 30 }, 4 * 2 ** 20)).toBe(false);
    expect(fitsWholeFile({ bucket: "b", key: "k", etag: "e", size: 1000 }, 100_000)).toBe(false); // blocks not whole chunks
  });

  test("a version whose CRC table at the blocks' chunk size would not fit the xattr gets larger chunks: assembled, read, rebuilt by the scan, checked", async () => {
    const dir = await dirs.make();
    const MiB = 2 ** 20;
    let c = await cacheIn(dir, { blockSizeBytes: MiB });
    // A 3,600-byte key leaves room for 79 CRCs: 64 KiB chunks would cover 5 MiB, so 12 MiB takes 256 KiB ones.
    const key = `long/${"k".repeat(3600)}.bin`;
    const data = bytes(12 * MiB + 5000);
    const object = { bucket: "datasets", key, etag: "etag-1", size: data.length };
    for (let i = 0; i * MiB < data.length; i++) await c.put(blockId(key, i), data.subarray(i * MiB, (i + 1) * MiB));
    expect(wholeChunkBytesFor(object, MiB)).toBe(256 * 1024);
    expect(fitsWholeFile({ ...object, size: 100 * MiB }, MiB)).toBe(false); // 1 MiB chunks, the block size, are the most
    const path = (await c.holdWholeFile(object)) ?? "";
    expect((await readFile(path)).equals(data)).toBe(true);
    expect((readWholeHeaderBytes(path) as Buffer).readUInt32LE(16)).toBe(256 * 1024);
    const range = await c.leaseRange(blockId(key, 5), 300_000, 400_000);
    expect(Buffer.from(range?.data ?? []).equals(data.subarray(5 * MiB + 300_000, 5 * MiB + 400_000))).toBe(true);
    range?.release();
    expect(c.locate(blockId(key, 12))).toMatchObject({ path, dataOffset: 12 * MiB, dataLength: 5000, chunkBytes: 256 * 1024 });
    expect(c.locate(blockId(key, 12))?.crcs).toHaveLength(1);
    c.releaseWholeFile(object);
    await c.close();
    c = await cacheIn(dir, { blockSizeBytes: MiB });
    expect(await readBlock(c, key, 12)).toEqual(data.subarray(12 * MiB));
    const fh = await open(path, "r+");
    await fh.write(Buffer.from([(data[7 * MiB + 10] ?? 0) ^ 0xff]), 0, 1, 7 * MiB + 10);
    await fh.close();
    expect(await readBlock(c, key, 7)).toBeUndefined();
    expect(c.stats().corruptBlocks).toBe(1);
  });

  test("a held file is never evicted; released, it is evicted like any block", async () => {
    const c = await cacheIn(await dirs.make(), { quotaBytes: 8 * BLOCK });
    const data = bytes(2 * BLOCK);
    const object = await putObject(c, "held.bin", data);
    expect(await c.holdWholeFile(object)).toBeDefined();
    for (let i = 0; i < 12; i++) await c.put(blockId(`other-${i}.bin`), bytes(BLOCK - 200));
    await c.whenIdle();
    expect(await readBlock(c, "held.bin", 1)).toEqual(data.subarray(BLOCK));
    c.releaseWholeFile(object);
    for (let i = 12; i < 24; i++) await c.put(blockId(`other-${i}.bin`), bytes(BLOCK - 200));
    await c.whenIdle();
    expect(c.has(blockId("held.bin", 0))).toBe(false);
    expect(c.stats().usedBytes).toBeLessThanOrEqual(8 * BLOCK);
  });

  test("survives a restart (indexed by the scan, header read from the xattr, pins resolved); a flipped byte is a counted miss", async () => {
    const dir = await dirs.make();
    const data = bytes(BLOCK + 5000);
    let c = await cacheIn(dir);
    const path = (await c.holdWholeFile(await putObject(c, "keep/b.bin", data))) ?? "";
    await c.close();
    const logger = recordingLogger();
    c = await cacheIn(dir, { logger });
    expect(c.stats()).toMatchObject({ blocks: 1, usedBytes: data.length });
    expect(await readBlock(c, "keep/b.bin", 1)).toEqual(data.subarray(BLOCK));
    await c.pin("datasets", "keep/");
    expect(c.stats().pinnedBlocks).toBe(1);
    await c.unpin("datasets", "keep/");
    // One byte of data changed on disk, as a failing drive would: never served.
    const fh = await open(path, "r+");
    await fh.write(Buffer.from([(data[BLOCK + 10] ?? 0) ^ 0xff]), 0, 1, BLOCK + 10);
    await fh.close();
    expect(await readBlock(c, "keep/b.bin", 1)).toBeUndefined();
    expect(c.stats().corruptBlocks).toBe(1);
    expect(logger.lines.some((l) => l.msg === "corrupt block dropped" && l.fields.defect === "data-crc")).toBe(true);
    await expect(stat(path)).rejects.toThrow(/ENOENT/);
    expect(await readBlock(c, "keep/b.bin", 0)).toBeUndefined();
  });
});
