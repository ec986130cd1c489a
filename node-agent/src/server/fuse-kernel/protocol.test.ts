// The FUSE structs as linux/fuse.h lays them out, read back field by field: 64-bit fields
// written as two 32-bit halves must hold values past 2^32 (a 5 GiB file, inode numbers
// above 2^40), and a direntplus is an entry_out followed by a dirent padded to 8 bytes.
import { describe, expect, it } from "vitest";
import { direntBytes, direntplusBytes, ENTRY_OUT_BYTES, entryOut, writeDirent, writeDirentplus } from "./protocol.ts";

const attr = { ino: (1n << 40n) + 5n, size: 5 * 2 ** 30 + 123, mtimeMs: 1_764_547_200_123, mode: 0o100444, nlink: 1 };

describe("FUSE structs", () => {
  it("fuse_entry_out carries 64-bit node ids, sizes and times intact", () => {
    const out = Buffer.alloc(ENTRY_OUT_BYTES);
    entryOut(out, 0, attr, 3600);
    expect(out.readBigUInt64LE(0)).toBe(attr.ino); // nodeid
    expect(out.readBigUInt64LE(8)).toBe(0n); // generation
    expect(out.readBigUInt64LE(16)).toBe(3600n); // entry_valid
    expect(out.readBigUInt64LE(24)).toBe(3600n); // attr_valid
    const a = 40;
    expect(out.readBigUInt64LE(a)).toBe(attr.ino);
    expect(out.readBigUInt64LE(a + 8)).toBe(BigInt(attr.size));
    expect(out.readBigUInt64LE(a + 16)).toBe(BigInt(Math.ceil(attr.size / 512))); // blocks
    expect(out.readBigUInt64LE(a + 32)).toBe(1_764_547_200n); // mtime seconds
    expect(out.readUInt32LE(a + 52)).toBe(123_000_000); // mtime nanoseconds
    expect(out.readUInt32LE(a + 60)).toBe(0o100444);
    expect(out.readUInt32LE(a + 64)).toBe(1);
  });

  it("fuse_dirent and fuse_direntplus: cookie, name and zero padding where the kernel reads them", () => {
    const name = Buffer.from("episode_0001.h5");
    const out = Buffer.alloc(2 * direntplusBytes(name), 0xff);
    const end = writeDirent(out, 0, attr.ino, 7, 8, name);
    expect(end).toBe(direntBytes(name));
    expect(end % 8).toBe(0);
    expect(out.readBigUInt64LE(0)).toBe(attr.ino);
    expect(out.readBigUInt64LE(8)).toBe(7n); // off
    expect(out.readUInt32LE(16)).toBe(name.length);
    expect(out.readUInt32LE(20)).toBe(8); // DT_REG
    expect(out.subarray(24, 24 + name.length).equals(name)).toBe(true);
    expect([...out.subarray(24 + name.length, end)].every((b) => b === 0)).toBe(true);

    const plusEnd = writeDirentplus(out, end, { attr, validSeconds: 60 }, attr.ino, 8, 8, name);
    expect(plusEnd - end).toBe(direntplusBytes(name));
    expect(out.readBigUInt64LE(end)).toBe(attr.ino); // entry_out.nodeid
    expect(out.readBigUInt64LE(end + ENTRY_OUT_BYTES + 8)).toBe(8n); // dirent.off
    // An entry only listed ("." and ".."): a zero entry_out, which the kernel does not link.
    writeDirentplus(out, 0, undefined, 1n, 1, 4, Buffer.from("."));
    expect([...out.subarray(0, ENTRY_OUT_BYTES)].every((b) => b === 0)).toBe(true);
  });
});
