// Whole-file reads and writes of block files with the fewest syscalls: open, one read of
// the expected size plus one byte (a longer file shows as one byte too many), close; and
// open(O_EXCL), writev(header, data), close for a temp file. Errors are Node's own errno
// errors; the cache decides which are misses and which are faults.
import { open, unlink } from "node:fs/promises";

export function errnoCode(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null || !("code" in err)) return undefined;
  const { code } = err as { code: unknown };
  return typeof code === "string" ? code : undefined;
}

/** The file's bytes, at most expectedBytes + 1 of them; undefined if it does not exist. */
export async function readBlockFile(path: string, expectedBytes: number): Promise<Buffer | undefined> {
  let fh;
  try {
    fh = await open(path, "r");
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return undefined;
    throw err;
  }
  try {
    const buf = Buffer.allocUnsafe(expectedBytes + 1);
    let filled = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, filled, buf.length - filled, filled);
      filled += bytesRead;
      // On a regular file a short read means end of file, so the usual case is one read.
      if (bytesRead === 0 || filled >= expectedBytes) break;
    }
    return buf.subarray(0, filled);
  } finally {
    await fh.close();
  }
}

/** The first `bytes` bytes of a file (fewer if it is shorter); undefined if it does not exist. */
export async function readFileHead(path: string, bytes: number): Promise<Buffer | undefined> {
  let fh;
  try {
    fh = await open(path, "r");
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return undefined;
    throw err;
  }
  try {
    const buf = Buffer.allocUnsafe(bytes);
    const { bytesRead } = await fh.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Creates `path` (which must not exist) holding header ‖ data. */
export async function writeBlockFile(path: string, header: Uint8Array, data: Uint8Array): Promise<void> {
  const fh = await open(path, "wx");
  try {
    const total = header.length + data.length;
    let written = (await fh.writev([header, data])).bytesWritten;
    // A short write happens only as the disk fills; finishing it surfaces the ENOSPC.
    while (written < total) {
      const rest = written < header.length ? header.subarray(written) : data.subarray(written - header.length);
      const { bytesWritten } = await fh.write(rest, 0, rest.length, written);
      if (bytesWritten === 0) throw Object.assign(new Error(`short write: ${path}`), { code: "ENOSPC" });
      written += bytesWritten;
    }
  } finally {
    await fh.close();
  }
}

/** Removes a file; absent is fine. Other errors are returned, not thrown, for the caller to log. */
export async function removeFile(path: string): Promise<unknown> {
  try {
    await unlink(path);
    return undefined;
  } catch (err) {
    return errnoCode(err) === "ENOENT" ? undefined : err;
  }
}
