// Reading one block file through the open-descriptor LRU and checking what was read: the
// whole block, or only the chunks a byte range spans (header and chunks read at once, their
// offsets known from the file's name). Either way no byte is returned that a CRC in a
// checked header did not vouch for. I/O errors are thrown as Node's own; "absent" is
// undefined; anything wrong with the bytes is a defect for the cache to count and drop.
import type { BlockId } from "./block-cache.ts";
import { type BlockName, blockLayout, checkHeader, chunksMatch, decodeBlock, type DecodedBlock } from "./block-format.ts";
import type { OpenFiles } from "./open-files.ts";

/** The whole block, read into `into` when it has room for one byte more (a longer file shows as too long). */
export async function readWholeBlock(files: OpenFiles, path: string, name: BlockName, id: BlockId, blockSizeBytes: number, into: Buffer | undefined): Promise<DecodedBlock | undefined> {
  const expected = name.fileBytes;
  const buf = into !== undefined && into.length > expected ? into.subarray(0, expected + 1) : Buffer.allocUnsafe(expected + 1);
  const n = await files.read(path, buf);
  if (n === undefined) return undefined;
  if (n !== expected) return { ok: false, defect: n < expected ? "truncated" : "length" };
  return decodeBlock(buf.subarray(0, n), id, blockSizeBytes);
}

/** A block file's header, checked once against its identity, kept so later pieces of the same file read only data. */
export interface CheckedHeader {
  bytes: Buffer;
  headerLength: number;
  dataLength: number;
  chunkBytes: number;
}

/**
 * Checked headers by block file path, so a random piece costs one read, not two. Safe to
 * reuse: a path names one identity and size, and a file at that path can only ever be
 * rewritten with the same bytes; if its data went bad or short, the chunk CRCs or the
 * short read still say so. Cleared whole when full (a refill is one small read per block).
 */
export class HeaderMemo {
  private readonly max: number;
  private readonly headers = new Map<string, CheckedHeader>();

  constructor(max: number) {
    this.max = max;
  }

  get(path: string): CheckedHeader | undefined {
    return this.headers.get(path);
  }

  set(path: string, header: CheckedHeader): void {
    if (this.headers.size >= this.max) this.headers.clear();
    this.headers.set(path, header);
  }

  delete(path: string): void {
    this.headers.delete(path);
  }
}

/** The whole chunks a range of data spans (the range clamped to the data): what must be read to check it. */
export function chunkPiece(range: { from: number; to: number }, dataLength: number, chunkBytes: number): { from: number; end: number; firstChunk: number; pieceStart: number; pieceBytes: number } {
  const end = Math.min(range.to, dataLength);
  const from = Math.min(range.from, end);
  const firstChunk = Math.floor(from / chunkBytes);
  const pieceStart = firstChunk * chunkBytes;
  const pieceEnd = Math.min(dataLength, Math.max(pieceStart, Math.ceil(end / chunkBytes) * chunkBytes));
  return { from, end, firstChunk, pieceStart, pieceBytes: pieceEnd - pieceStart };
}

/**
 * Bytes [from, to) of the block's data (fewer if the block ends sooner), reading only the
 * header (unless `memo` has it) and the chunks the range spans, in the thread pool (see
 * OpenFiles.read); the data lands in `into` when it has room.
 */
export async function readBlockRange(
  files: OpenFiles,
  path: string,
  name: BlockName,
  id: BlockId,
  blockSizeBytes: number,
  range: { from: number; to: number },
  into: Buffer | undefined,
  memo: HeaderMemo,
): Promise<DecodedBlock | undefined> {
  const layout = blockLayout(id, name.fileBytes, blockSizeBytes);
  if (layout === undefined) return { ok: false, defect: "length" };
  const { dataLength, headerLength } = layout;
  const { from, end, firstChunk, pieceStart, pieceBytes } = chunkPiece(range, dataLength, layout.chunkBytes);
  const piece = into !== undefined && into.length >= pieceBytes ? into.subarray(0, pieceBytes) : Buffer.allocUnsafe(pieceBytes);
  let header = memo.get(path);
  const pieceRead = files.read(path, piece, headerLength + pieceStart, true);
  if (header === undefined) {
    const head = Buffer.allocUnsafe(headerLength);
    // Both reads settle before any return: the piece may be landing in the caller's pooled buffer.
    const [headResult] = await Promise.allSettled([files.read(path, head, 0, true), pieceRead]);
    if (headResult.status === "rejected") throw headResult.reason;
    const headRead = headResult.value;
    if (headRead === undefined) return undefined;
    if (headRead < headerLength) return { ok: false, defect: "truncated" };
    const checked = checkHeader(head, id, blockSizeBytes);
    if (!checked.ok) return checked;
    if (checked.headerLength !== headerLength || checked.dataLength !== dataLength) return { ok: false, defect: "length" };
    header = { bytes: head, ...checked };
    memo.set(path, header);
  }
  const n = await pieceRead;
  if (n === undefined) return undefined;
  if (n < pieceBytes) return { ok: false, defect: "truncated" };
  if (!chunksMatch(header.bytes, header, piece, firstChunk)) return { ok: false, defect: "data-crc" };
  return { ok: true, data: piece.subarray(from - pieceStart, end - pieceStart) };
}
