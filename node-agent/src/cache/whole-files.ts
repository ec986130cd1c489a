// Whole-object files (see block-format.ts): writing one (data, then its header as an xattr,
// on a temp file the caller renames), reading its checked header, and reading any range of
// it checked chunk by chunk. Errors are Node's own errno errors or SyscallError; the cache
// decides which are misses and which are faults.
import { open } from "node:fs/promises";
import type { BlockId } from "./block-cache.ts";
import { checkHeader, chunksMatch, type DecodedBlock, MAX_WHOLE_HEADER_BYTES, WHOLE_HEADER_XATTR } from "./block-format.ts";
import { type CheckedHeader, chunkPiece, type HeaderMemo } from "./block-reads.ts";
import type { OpenFiles } from "./open-files.ts";
import { type Libc, libc } from "../libc.ts";

/** libc's xattr calls, or undefined where koffi does not load (the cache then keeps blocks only). */
function xattrCalls(): Libc | undefined {
  try {
    return libc();
  } catch {
    return undefined;
  }
}

/** Whether this machine can keep headers in xattrs; false leaves the cache to blocks only. */
export function wholeFilesSupported(): boolean {
  return xattrCalls() !== undefined;
}

/**
 * Creates `path` (which must not exist) holding `parts` one after another, then sets its
 * xattr to `header()`, asked once every part is written (a header made from CRCs taken as
 * the parts went by). A part may be a piece of a lease: it is written before the next is asked for.
 */
export async function writeWholeFile(path: string, parts: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, header: () => Buffer): Promise<void> {
  const fh = await open(path, "wx");
  try {
    let at = 0;
    for await (const part of parts) {
      let written = 0;
      while (written < part.length) {
        const { bytesWritten } = await fh.write(part, written, part.length - written, at + written);
        if (bytesWritten === 0) throw Object.assign(new Error(`short write: ${path}`), { code: "ENOSPC" });
        written += bytesWritten;
      }
      at += part.length;
    }
    libc().fsetxattr(fh.fd, WHOLE_HEADER_XATTR, header(), 0);
  } finally {
    await fh.close();
  }
}

/** The raw header bytes of a whole-object file: "absent" if the file is gone, "bad" if it has no (or an oversized) header. */
export function readWholeHeaderBytes(path: string): Buffer | "absent" | "bad" {
  const calls = xattrCalls();
  if (calls === undefined) return "bad";
  const buf = Buffer.allocUnsafe(MAX_WHOLE_HEADER_BYTES);
  try {
    return Buffer.from(buf.subarray(0, calls.getxattr(path, WHOLE_HEADER_XATTR, buf)));
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ENOENT") return "absent";
    if (code === "ENODATA" || code === "ERANGE" || code === "EOPNOTSUPP" || code === "ENOTSUP") return "bad";
    throw err;
  }
}

/** The header of a whole-object file checked against `id` (index WHOLE_OBJECT_INDEX), or why there is none. */
export function readWholeHeader(path: string, id: BlockId, blockSizeBytes: number): CheckedHeader | "absent" | "bad" {
  const bytes = readWholeHeaderBytes(path);
  if (typeof bytes === "string") return bytes;
  const checked = checkHeader(bytes, id, blockSizeBytes);
  return checked.ok && checked.headerLength === bytes.length ? { bytes, ...checked } : "bad";
}

/**
 * Bytes [from, to) of the object in a whole-object file of `fileBytes` bytes (whole chunks
 * read and checked, the range returned), its header from `memo` or the xattr. `into` takes
 * the chunks when it has room. Undefined when the file is gone.
 */
export async function readWholeRange(
  files: OpenFiles,
  path: string,
  fileBytes: number,
  id: BlockId,
  blockSizeBytes: number,
  range: { from: number; to: number },
  into: Buffer | undefined,
  memo: HeaderMemo,
): Promise<DecodedBlock | undefined> {
  let header = memo.get(path);
  if (header === undefined) {
    const read = readWholeHeader(path, id, blockSizeBytes);
    if (read === "absent") return undefined;
    if (read === "bad") return { ok: false, defect: "header-crc" };
    if (read.dataLength !== fileBytes) return { ok: false, defect: "length" };
    header = read;
    memo.set(path, header);
  }
  const { from, end, firstChunk, pieceStart, pieceBytes } = chunkPiece(range, header.dataLength, header.chunkBytes);
  const piece = into !== undefined && into.length >= pieceBytes ? into.subarray(0, pieceBytes) : Buffer.allocUnsafe(pieceBytes);
  const n = await files.read(path, piece, pieceStart, true);
  if (n === undefined) return undefined;
  if (n < pieceBytes) return { ok: false, defect: "truncated" };
  if (!chunksMatch(header.bytes, header, piece, firstChunk)) return { ok: false, defect: "data-crc" };
  return { ok: true, data: piece.subarray(from - pieceStart, end - pieceStart) };
}
