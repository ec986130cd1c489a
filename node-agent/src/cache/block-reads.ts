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

/**
 * Bytes [from, to) of the block's data (fewer if the block ends sooner), reading only the
 * header and the chunks the range spans; the data lands in `into` when it has room.
 */
export async function readBlockRange(
  files: OpenFiles,
  path: string,
  name: BlockName,
  id: BlockId,
  blockSizeBytes: number,
  range: { from: number; to: number },
  into: Buffer | undefined,
): Promise<DecodedBlock | undefined> {
  const layout = blockLayout(id, name.fileBytes, blockSizeBytes);
  if (layout === undefined) return { ok: false, defect: "length" };
  const { chunkBytes, dataLength, headerLength } = layout;
  const end = Math.min(range.to, dataLength);
  const from = Math.min(range.from, end);
  const firstChunk = Math.floor(from / chunkBytes);
  const pieceStart = firstChunk * chunkBytes;
  const pieceEnd = Math.min(dataLength, Math.max(pieceStart, Math.ceil(end / chunkBytes) * chunkBytes));
  const head = Buffer.allocUnsafe(headerLength);
  const pieceBytes = pieceEnd - pieceStart;
  const piece = into !== undefined && into.length >= pieceBytes ? into.subarray(0, pieceBytes) : Buffer.allocUnsafe(pieceBytes);
  const [headRead, pieceRead] = await Promise.all([files.read(path, head, 0), files.read(path, piece, headerLength + pieceStart)]);
  if (headRead === undefined || pieceRead === undefined) return undefined;
  if (headRead < headerLength || pieceRead < pieceBytes) return { ok: false, defect: "truncated" };
  const header = checkHeader(head, id, blockSizeBytes);
  if (!header.ok) return header;
  if (header.headerLength !== headerLength || header.dataLength !== dataLength) return { ok: false, defect: "length" };
  if (!chunksMatch(head, header, piece, firstChunk)) return { ok: false, defect: "data-crc" };
  return { ok: true, data: piece.subarray(from - pieceStart, end - pieceStart) };
}
