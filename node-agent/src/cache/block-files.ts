// Block file writes with the fewest syscalls: open(O_EXCL), writev(header, data), close for
// a temp file; header reads for pins (warm block reads go through open-files.ts). Errors are
// Node's own errno errors; the cache decides which are misses and which are faults.
import { open, unlink } from "node:fs/promises";

export function errnoCode(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null || !("code" in err)) return undefined;
  const { code } = err as { code: unknown };
  return typeof code === "string" ? code : undefined;
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
