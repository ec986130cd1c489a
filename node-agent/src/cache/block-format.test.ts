// Pins the on-disk format: if a golden value here changes, bump FORMAT_VERSION (and with it
// the blocks-vN directory) instead of editing the expectation.
import { randomBytes } from "node:crypto";
import { crc32c as nativeCrc32c } from "@node-rs/crc32";
import { describe, expect, test } from "vitest";
import { crc32c } from "../../../s3/checksums.ts";
import {
  BLOCKS_DIR,
  FORMAT_VERSION,
  blockHashes,
  blockLayout,
  blockName,
  checkHeader,
  chunkBytesFor,
  chunksMatch,
  decodeBlock,
  encodeHeader,
  fanDir,
  headerObject,
  parseBlockName,
} from "./block-format.ts";

const id = { bucket: "datasets", key: "robots/ep-1.h5", etag: "abc123", index: 2 };
const data = Buffer.from("hello");
const BS = 4 * 1024 * 1024;

describe("block format v2 (golden bytes)", () => {
  test("header bytes are pinned", () => {
    expect(FORMAT_VERSION).toBe(2);
    expect(BLOCKS_DIR).toBe("blocks-v2");
    expect(encodeHeader(id, data, BS).toString("hex")).toBe(
      "46525942" + // magic "FRYB"
        "0200" + // format version 2
        "4400" + // header length 68
        "02000000" + // block index 2
        "05000000" + // data length 5
        "00000100" + // chunk bytes 64 KiB
        "00004000" + // block size 4 MiB
        "0800" + "0e00" + "0600" + "0000" + // bucket, key, etag lengths; reserved
        Buffer.from("datasetsrobots/ep-1.h5abc123").toString("hex") +
        "4cbb719a" + // CRC32C("hello"): the one chunk
        "84acde03", // CRC32C of the header
    );
  });

  test("chunk size grows with the block size so a CRC table stays within 4 KiB", () => {
    expect(chunkBytesFor(64 * 1024)).toBe(64 * 1024);
    expect(chunkBytesFor(BS)).toBe(64 * 1024);
    expect(chunkBytesFor(1024 ** 3)).toBe(1024 * 1024);
  });

  test("names and paths are pinned", () => {
    const h = blockHashes(id.bucket, id.key, id.etag);
    expect(h.stem).toBe("14a6eeaa0089bddb563045247d4707ed");
    expect(fanDir(h.keyHi)).toBe("14a");
    expect(blockName({ ...h, index: 2, fileBytes: 69, writtenSec: 1_700_000_000 })).toBe("14a6eeaa0089bddb563045247d4707ed-2-45-6553f100");
    // Every version of a key shares the key half of the stem (and so the fan-out dir).
    expect(blockHashes(id.bucket, id.key, "other").stem.slice(0, 16)).toBe(h.stem.slice(0, 16));
    expect(blockHashes(id.bucket, id.key, "other").stem).not.toBe(h.stem);
  });
});

describe("decodeBlock", () => {
  const file = Buffer.concat([encodeHeader(id, data, BS), data]);

  test("returns the data for the right identity", () => {
    const d = decodeBlock(file, id, BS);
    expect(d.ok && d.data.toString()).toBe("hello");
    expect(headerObject(file)).toEqual({ bucket: "datasets", key: "robots/ep-1.h5" });
  });

  test("flags every kind of defect", () => {
    const flip = (at: number): Buffer => {
      const f = Buffer.from(file);
      f[at] = (f[at] ?? 0) ^ 0x01;
      return f;
    };
    expect(decodeBlock(flip(0), id, BS)).toEqual({ ok: false, defect: "magic" });
    expect(decodeBlock(flip(4), id, BS)).toEqual({ ok: false, defect: "version" });
    expect(decodeBlock(flip(30), id, BS)).toEqual({ ok: false, defect: "header-crc" });
    expect(decodeBlock(flip(file.length - 1), id, BS)).toEqual({ ok: false, defect: "data-crc" });
    expect(decodeBlock(file.subarray(0, file.length - 1), id, BS)).toEqual({ ok: false, defect: "truncated" });
    expect(decodeBlock(file.subarray(0, 20), id, BS)).toEqual({ ok: false, defect: "truncated" });
    expect(decodeBlock(Buffer.concat([file, Buffer.from("x")]), id, BS)).toEqual({ ok: false, defect: "length" });
    expect(decodeBlock(file, { ...id, etag: "abc124" }, BS)).toEqual({ ok: false, defect: "identity" });
    expect(decodeBlock(file, { ...id, index: 3 }, BS)).toEqual({ ok: false, defect: "identity" });
    expect(decodeBlock(file, { ...id, key: "robots/ep-1.h" }, BS)).toEqual({ ok: false, defect: "identity" });
    // Cut for another block size, block 2 holds other bytes of the object.
    expect(decodeBlock(file, id, BS / 2)).toEqual({ ok: false, defect: "identity" });
  });

  test("keys with any characters round-trip", () => {
    const odd = { bucket: "b", key: 'a/"ü\u0000\n😀', etag: "e", index: 0 };
    const f = Buffer.concat([encodeHeader(odd, data, BS), data]);
    expect(decodeBlock(f, odd, BS).ok).toBe(true);
    expect(blockHashes("a", "b\u0000c", "").stem).not.toBe(blockHashes("a\u0000b", "c", "").stem);
  });

  test("an identity too long for a header is refused", () => {
    expect(() => encodeHeader({ ...id, key: "k".repeat(70_000) }, data, BS)).toThrow(RangeError);
  });
});

describe("chunk CRCs", () => {
  const C = 64 * 1024;
  const big = randomBytes(3 * C + 100);
  const header = encodeHeader(id, big, BS);
  const file = Buffer.concat([header, big]);

  test("the layout follows from the file size alone, for every data length", () => {
    for (const n of [0, 1, C - 1, C, C + 1, 2 * C, 3 * C + 100, BS - 1, BS]) {
      const h = encodeHeader(id, Buffer.alloc(n), BS);
      expect(blockLayout(id, h.length + n, BS)).toEqual({ headerLength: h.length, dataLength: n, chunkBytes: C });
    }
    // Sizes no block of this identity can have.
    expect(blockLayout(id, 10, BS)).toBeUndefined();
    expect(blockLayout(id, header.length + BS + 1000, BS)).toBeUndefined();
  });

  test("a piece is checked against only the chunks it spans", () => {
    const h = checkHeader(file, id, BS);
    expect(h.ok).toBe(true);
    if (!h.ok) return;
    expect(chunksMatch(file, h, big.subarray(C, 3 * C), 1)).toBe(true);
    expect(chunksMatch(file, h, big.subarray(3 * C), 3)).toBe(true); // the short last chunk
    expect(chunksMatch(file, h, big.subarray(C, 2 * C), 2)).toBe(false); // right bytes, wrong place
    const bad = Buffer.from(big.subarray(C, 2 * C));
    bad[100] = (bad[100] ?? 0) ^ 1;
    expect(chunksMatch(file, h, bad, 1)).toBe(false);
    // Part of a chunk cannot be vouched for.
    expect(chunksMatch(file, h, big.subarray(C, C + 10), 1)).toBe(false);
  });

  test("a flipped byte in any chunk fails the whole-block check", () => {
    for (const at of [0, C, 3 * C + 99]) {
      const f = Buffer.from(file);
      f[header.length + at] = (f[header.length + at] ?? 0) ^ 1;
      expect(decodeBlock(f, id, BS)).toEqual({ ok: false, defect: "data-crc" });
    }
    // A CRC table entry changed with the header CRC left alone is a header defect.
    const f = Buffer.from(file);
    f[header.length - 8] = (f[header.length - 8] ?? 0) ^ 1;
    expect(decodeBlock(f, id, BS)).toEqual({ ok: false, defect: "header-crc" });
  });
});

describe("block names", () => {
  test("round-trip and reject anything else", () => {
    const n = { keyHi: 0xffffffff, keyLo: 0, verHi: 1, verLo: 0x80000000, index: 4_000_000_000, fileBytes: 4_194_400, writtenSec: 1_800_000_000 };
    expect(parseBlockName(blockName(n))).toEqual(n);
    for (const bad of ["", "tmp", "14a6eeaa0089bddb563045247d4707ed-2-41", "14A6eeaa0089bddb563045247d4707ed-2-41-1", "14a6eeaa0089bddb563045247d4707ed-2-41-1.tmp"]) {
      expect(parseBlockName(bad)).toBeUndefined();
    }
  });
});

test("the native CRC32C agrees with the S3 core's", () => {
  for (const n of [0, 1, 7, 64, 4097, 1 << 20]) {
    const b = randomBytes(n);
    expect(nativeCrc32c(b)).toBe(crc32c(b));
  }
});
