// DiskBlockCache on real temp dirs: round trips, every corruption a disk or an operator can
// cause (each must be a counted, logged miss with the file gone, never bad bytes or a
// throw), restart rebuild while serving, concurrency, and the open() errors the CLI shows.
import { copyFile, mkdir, open, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { CacheFaultError } from "./block-cache.ts";
import { BLOCKS_DIR, blockHashes, fanDir } from "./block-format.ts";
import { allBlockFiles, blockFile, blockId, bytes, cacheOpener, recordingLogger, tempDirs } from "./cache-test-support.ts";
import { DiskBlockCache } from "./disk-block-cache.ts";

const dirs = tempDirs();
const { cacheIn, closeAll } = cacheOpener({ blockSizeBytes: 64 * 1024, quotaBytes: 1 << 30, minFreeRatio: 0 });
afterEach(async () => {
  await closeAll();
  await dirs.cleanup();
});

async function flipByte(path: string, at: number): Promise<void> {
  const fh = await open(path, "r+");
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, at);
  b[0] = (b[0] ?? 0) ^ 0x40;
  await fh.write(b, 0, 1, at);
  await fh.close();
}

describe("leases", () => {
  test("a lease lends the verified bytes; held leases never share memory; released buffers are reused", async () => {
    const c = await cacheIn(await dirs.make());
    const a = bytes(64 * 1024);
    const b = bytes(5000);
    await c.put(blockId("a"), a);
    await c.put(blockId("b"), b);
    const la = await c.lease(blockId("a"));
    const lb = await c.lease(blockId("b"));
    expect(Buffer.from(la?.data ?? [])).toEqual(a);
    expect(Buffer.from(lb?.data ?? [])).toEqual(b);
    expect(la?.data.buffer).not.toBe(lb?.data.buffer);
    const memory = la?.data.buffer;
    la?.release();
    la?.release(); // a second release must not hand the buffer out twice
    const again = await c.lease(blockId("b"));
    const other = await c.lease(blockId("a"));
    expect(again?.data.buffer).toBe(memory);
    expect(other?.data.buffer).not.toBe(memory);
    expect(Buffer.from(again?.data ?? [])).toEqual(b);
    expect(Buffer.from(other?.data ?? [])).toEqual(a);
    expect(await c.lease(blockId("absent"))).toBeUndefined();
    expect(c.stats()).toMatchObject({ hits: 4, misses: 1 });
  });
});

describe("range leases", () => {
  const C = 64 * 1024;

  test("a range reads and checks only its chunks: a bad chunk elsewhere does not stop it, a bad chunk inside is a counted miss", async () => {
    const dir = await dirs.make();
    const logger = recordingLogger();
    const c = await cacheIn(dir, { blockSizeBytes: 4 * C, logger });
    const data = bytes(4 * C - 10); // the last chunk is short
    const id = blockId("packs/0.rec");
    await c.put(id, data);
    for (const [from, to] of [[0, 1], [70_000, 140_000], [C, 2 * C], [3 * C + 5, 4 * C - 10], [100, 4 * C - 10]] as const) {
      const lease = await c.leaseRange(id, from, to);
      expect(Buffer.from(lease?.data ?? [])).toEqual(data.subarray(from, to));
      lease?.release();
    }
    // A range past the block's end gets what there is, never padding.
    const tail = await c.leaseRange(id, 4 * C - 20, 4 * C);
    expect(Buffer.from(tail?.data ?? [])).toEqual(data.subarray(4 * C - 20));
    tail?.release();
    const path = (await blockFile(dir, id)) ?? "";
    const header = (await readFile(path)).length - data.length;
    await flipByte(path, header + 3 * C + 1); // chunk 3
    const before = await c.leaseRange(id, 0, 2 * C);
    expect(Buffer.from(before?.data ?? [])).toEqual(data.subarray(0, 2 * C));
    before?.release();
    expect(c.stats().corruptBlocks).toBe(0);
    expect(await c.leaseRange(id, 3 * C, 3 * C + 10)).toBeUndefined();
    expect(c.stats()).toMatchObject({ corruptBlocks: 1, blocks: 0 });
    expect(logger.lines.find((l) => l.msg === "corrupt block dropped")?.fields).toMatchObject({ defect: "data-crc", key: "packs/0.rec" });
    expect(await blockFile(dir, id)).toBeUndefined();
  });

  test("a truncated or renamed-over block file is a miss for a range, never short bytes", async () => {
    const dir = await dirs.make();
    const c = await cacheIn(dir, { blockSizeBytes: 4 * C });
    const id = blockId("packs/1.rec");
    await c.put(id, bytes(4 * C));
    const path = (await blockFile(dir, id)) ?? "";
    await truncate(path, C * 2);
    expect(await c.leaseRange(id, 3 * C, 3 * C + 100)).toBeUndefined();
    expect(c.stats().corruptBlocks).toBe(1);
    // Another block's bytes under this name: the header's identity check catches it.
    const other = blockId("packs/2.rec");
    await c.put(id, bytes(4 * C));
    await c.put(other, bytes(4 * C));
    await copyFile((await blockFile(dir, other)) ?? "", (await blockFile(dir, id)) ?? "");
    expect(await c.leaseRange(id, 0, 100)).toBeUndefined();
    expect(c.stats().corruptBlocks).toBe(2);
  });
});

describe("format upgrades", () => {
  test("blocks of an older format version are deleted in the background", async () => {
    const dir = await dirs.make();
    await mkdir(join(dir, "blocks-v1", "abc"), { recursive: true });
    await writeFile(join(dir, "blocks-v1", "abc", "old-block"), bytes(1000));
    const logger = recordingLogger();
    await cacheIn(dir, { logger });
    await expect.poll(() => readdir(dir)).not.toContain("blocks-v1");
    expect(await readdir(dir)).toContain(BLOCKS_DIR);
    expect(logger.lines.some((l) => l.msg === "blocks of an older format removed")).toBe(true);
  });
});

describe("round trip", () => {
  test("put then get returns the same bytes; has and stats follow", async () => {
    const c = await cacheIn(await dirs.make());
    const a0 = bytes(64 * 1024);
    const a1 = bytes(1000);
    const b0 = bytes(1);
    await c.put(blockId("a.h5", 0), a0);
    await c.put(blockId("a.h5", 1), a1);
    await c.put(blockId("dir/b", 0), b0);
    expect(Buffer.from((await c.get(blockId("a.h5", 0))) ?? [])).toEqual(a0);
    expect(Buffer.from((await c.get(blockId("a.h5", 1))) ?? [])).toEqual(a1);
    expect(Buffer.from((await c.get(blockId("dir/b", 0))) ?? [])).toEqual(b0);
    expect(await c.get(blockId("a.h5", 2))).toBeUndefined();
    expect(await c.get(blockId("a.h5", 0, "etag-2"))).toBeUndefined();
    expect(c.has(blockId("a.h5", 1))).toBe(true);
    expect(c.has(blockId("a.h5", 1, "etag-2"))).toBe(false);
    const s = c.stats();
    expect(s).toMatchObject({ blocks: 3, objects: 2, hits: 3, misses: 2, corruptBlocks: 0, scanning: false });
    expect(s.usedBytes).toBeGreaterThan(64 * 1024 + 1001);
    expect(s.indexBytes).toBeGreaterThan(0);
  });

  test("an empty block (zero-byte object) round-trips", async () => {
    const c = await cacheIn(await dirs.make());
    await c.put(blockId("empty"), new Uint8Array(0));
    expect((await c.get(blockId("empty")))?.length).toBe(0);
  });

  test("a block larger than blockSizeBytes is refused", async () => {
    const c = await cacheIn(await dirs.make());
    await expect(c.put(blockId("big"), bytes(64 * 1024 + 1))).rejects.toThrow(RangeError);
  });

  test("dropObject removes every version and block of one key, and only those", async () => {
    const dir = await dirs.make();
    const c = await cacheIn(dir);
    for (const etag of ["v1", "v2"]) for (const i of [0, 1]) await c.put(blockId("k", i, etag), bytes(10));
    await c.put(blockId("k2", 0), bytes(10));
    await c.dropObject("datasets", "k");
    expect(c.stats()).toMatchObject({ blocks: 1, objects: 1 });
    expect(await allBlockFiles(dir)).toHaveLength(1);
    expect(await c.get(blockId("k", 0, "v1"))).toBeUndefined();
    expect(await c.get(blockId("k2", 0))).toBeDefined();
  });
});

describe("corruption is a counted, logged miss, and the file is removed", () => {
  const cases: Array<[string, (path: string) => Promise<void>]> = [
    ["flipped data byte", (p) => flipByte(p, 200)],
    ["flipped last data byte", async (p) => flipByte(p, 64 + 999)],
    ["flipped header byte (key)", (p) => flipByte(p, 42)],
    ["flipped header byte (index)", (p) => flipByte(p, 8)],
    ["flipped header CRC", (p) => flipByte(p, 61)],
    ["truncated data", (p) => truncate(p, 500)],
    ["truncated header", (p) => truncate(p, 10)],
    ["emptied", (p) => truncate(p, 0)],
    ["extra bytes appended", (p) => writeFile(p, "x", { flag: "a" })],
  ];
  for (const [label, damage] of cases) for (const via of ["get", "lease"] as const) {
    test(`${label} (${via})`, async () => {
      const dir = await dirs.make();
      const log = recordingLogger();
      const c = await cacheIn(dir, { logger: log });
      const id = blockId("robots/ep-1.h5"); // header: 32 + 8 + 14 + 6 + 4 = 64 bytes
      await c.put(id, bytes(1000));
      const path = await blockFile(dir, id);
      expect(path).toBeDefined();
      // A pooled buffer that already held this block's good bytes must not make a damaged file pass.
      if (via === "lease") (await c.lease(id))?.release();
      await damage(path ?? "");
      expect(via === "get" ? await c.get(id) : await c.lease(id)).toBeUndefined();
      expect(c.stats()).toMatchObject({ corruptBlocks: 1, misses: 1, hits: via === "lease" ? 1 : 0, blocks: 0 });
      expect(log.lines.filter((l) => l.msg === "corrupt block dropped")).toHaveLength(1);
      expect(await blockFile(dir, id)).toBeUndefined();
      // Refetched and stored again, it is served.
      const fresh = bytes(1000);
      await c.put(id, fresh);
      expect(Buffer.from((await c.get(id)) ?? [])).toEqual(fresh);
    });
  }

  test("another block's file copied over this block's path (wrong identity)", async () => {
    const dir = await dirs.make();
    const c = await cacheIn(dir);
    const a = blockId("a");
    const b = blockId("b");
    await c.put(a, bytes(100));
    await c.put(b, bytes(100));
    const pa = (await blockFile(dir, a)) ?? "";
    const pb = (await blockFile(dir, b)) ?? "";
    await copyFile(pa, pb);
    expect(await c.get(b)).toBeUndefined();
    expect(c.stats().corruptBlocks).toBe(1);
    expect(await c.get(a)).toBeDefined();
  });

  test("a read fault (not corruption) throws CacheFaultError", async () => {
    const dir = await dirs.make();
    const c = await cacheIn(dir);
    const id = blockId("a");
    await c.put(id, bytes(100));
    const h = blockHashes(id.bucket, id.key, id.etag);
    const fan = join(dir, BLOCKS_DIR, fanDir(h.keyHi));
    await rm(fan, { recursive: true });
    await writeFile(fan, "not a dir"); // open() of a path under it fails with ENOTDIR
    await expect(c.get(id)).rejects.toBeInstanceOf(CacheFaultError);
  });
});

describe("restart", () => {
  test("a new instance indexes existing blocks; truncated or flipped files found later are misses", async () => {
    const dir = await dirs.make();
    const first = await cacheIn(dir);
    const ids = Array.from({ length: 50 }, (_, i) => blockId(`obj-${i}`, i % 3));
    const data = ids.map(() => bytes(3000));
    for (const [i, id] of ids.entries()) await first.put(id, data[i] ?? new Uint8Array());
    await first.close();
    await truncate((await blockFile(dir, ids[7] ?? blockId(""))) ?? "", 100);
    await flipByte((await blockFile(dir, ids[8] ?? blockId(""))) ?? "", 1500);

    const second = await cacheIn(dir, {}, false);
    // Served during the scan: open() returns before the scan ends, and a get need not wait for it.
    expect(second.stats().scanning).toBe(true);
    expect(Buffer.from((await second.get(ids[0] ?? blockId(""))) ?? [])).toEqual(data[0]);
    await second.ready();
    expect(second.stats()).toMatchObject({ blocks: 50, scanning: false });
    for (const [i, id] of ids.entries()) {
      const got = await second.get(id);
      if (i === 7 || i === 8) expect(got).toBeUndefined();
      else expect(Buffer.from(got ?? [])).toEqual(data[i]);
    }
    expect(second.stats()).toMatchObject({ blocks: 48, corruptBlocks: 2 });
  });

  test("blocks cut for another block size are never served after the size changes", async () => {
    const dir = await dirs.make();
    const first = await cacheIn(dir);
    await first.put(blockId("a", 1), bytes(1000));
    await first.close();
    const second = await cacheIn(dir, { blockSizeBytes: 32 * 1024 });
    expect(await second.get(blockId("a", 1))).toBeUndefined();
    expect(second.stats()).toMatchObject({ corruptBlocks: 1, blocks: 0 });
  });

  test("stale temp files and stray files are swept at open", async () => {
    const dir = await dirs.make();
    const first = await cacheIn(dir);
    await first.put(blockId("keep"), bytes(10));
    await first.close();
    const tmp = join(dir, BLOCKS_DIR, "tmp");
    await writeFile(join(tmp, "0123-deadbeef"), "half a block");
    await writeFile(join(dir, BLOCKS_DIR, "abc"), "").catch(() => undefined);
    await mkdir(join(dir, BLOCKS_DIR, "fff"), { recursive: true });
    await writeFile(join(dir, BLOCKS_DIR, "fff", "junk.txt"), "x");
    const log = recordingLogger();
    const second = await cacheIn(dir, { logger: log });
    expect(await readdir(tmp)).toEqual([]);
    expect(await readdir(join(dir, BLOCKS_DIR, "fff"))).toEqual([]);
    expect(second.stats().blocks).toBe(1);
    expect(log.lines.map((l) => l.msg)).toContain("stale temp files removed");
  });
});

describe("concurrency", () => {
  test("many concurrent puts and gets of the same and different blocks", async () => {
    const dir = await dirs.make();
    const c = await cacheIn(dir);
    const ids = Array.from({ length: 20 }, (_, i) => blockId(`o${i % 5}`, i));
    const data = ids.map(() => bytes(20_000));
    const ops: Promise<unknown>[] = [];
    for (let round = 0; round < 5; round++) {
      for (const [i, id] of ids.entries()) {
        ops.push(c.put(id, data[i] ?? new Uint8Array()));
        ops.push(
          c.get(id).then((got) => {
            // A concurrent get sees the whole block or a miss, never a torn one.
            if (got !== undefined) expect(Buffer.from(got)).toEqual(data[i]);
          }),
        );
      }
    }
    await Promise.all(ops);
    expect(c.stats()).toMatchObject({ blocks: 20, corruptBlocks: 0, writeFailures: 0 });
    for (const [i, id] of ids.entries()) expect(Buffer.from((await c.get(id)) ?? [])).toEqual(data[i]);
    expect(await allBlockFiles(dir)).toHaveLength(20);
  });
});

describe("open() errors", () => {
  test("cache dir is a file", async () => {
    const f = join(await dirs.make(), "file");
    await writeFile(f, "x");
    await expect(DiskBlockCache.open({ dir: f, quotaBytes: 1 << 20 })).rejects.toThrow(/^cache dir is not a directory: .*file \(E\w+\)$/);
    await expect(DiskBlockCache.open({ dir: f, quotaBytes: 1 << 20 })).rejects.toBeInstanceOf(CacheFaultError);
  });

  test("bad options name the option", async () => {
    const dir = await dirs.make();
    await expect(DiskBlockCache.open({ dir, quotaBytes: 0 })).rejects.toThrow(/quotaBytes/);
    await expect(DiskBlockCache.open({ dir, quotaBytes: 1, lowWatermark: 0.9, highWatermark: 0.5 })).rejects.toThrow(/lowWatermark/);
  });
});
