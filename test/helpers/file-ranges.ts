// Reading a byte range of a file the way a data loader does: plain open(2) and pread(2),
// looping over short reads. `flags` adds open flags (O_DIRECT makes every read reach a FUSE
// file system instead of the kernel's page cache).
import { closeSync, constants, openSync, readSync } from "node:fs";

/** Up to `length` bytes at `offset` of the file (fewer at its end). */
export function readRange(path: string, offset: number, length: number, flags = 0): Buffer {
  const fd = openSync(path, constants.O_RDONLY | flags);
  try {
    const out = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, out, got, length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return out.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}
