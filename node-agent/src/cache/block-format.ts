// The on-disk format of one cached block (format version 2) and the names that locate it.
// Invariants: a block file is `header ‖ data`; every field a reader trusts is covered by a
// CRC32C; the path is a pure function of the BlockId (no index needed to find a block) and
// the file name carries everything the start-up scan indexes, so the scan reads no file
// contents. Any change to these bytes or names must bump FORMAT_VERSION (and so the
// `blocks-vN` directory): the golden-bytes test in block-format.test.ts enforces it.
import { hash } from "node:crypto";
import { crc32c } from "@node-rs/crc32";
import type { BlockId } from "./block-cache.ts";

export const FORMAT_VERSION = 2;
/** Versioned root under the cache dir (cacache style: a new format is a new directory, never a migration). */
export const BLOCKS_DIR = `blocks-v${FORMAT_VERSION}`;
/** Temp files live beside the blocks (same filesystem, so rename is atomic). */
export const TMP_DIR = "tmp";

/** "FRYB": Ferry block. */
const MAGIC = 0x42595246;
/** Fixed part of the header, before the identity strings. */
const FIXED_BYTES = 32;
const CRC_BYTES = 4;
export const MAX_HEADER_BYTES = 0xffff;

/*
 * Header layout, little-endian:
 *   0  u32 magic "FRYB"          4 u16 format version      6 u16 header length (all of it)
 *   8  u32 block index          12 u32 data length        16 u32 chunk bytes
 *  20  u32 block size the index counts in (a block cut for another size is another block)
 *  24  u16 bucket bytes         26 u16 key bytes          28 u16 etag bytes   30 u16 zero
 *  32  bucket, key, etag (UTF-8)
 *  then one u32 CRC32C per chunk of data (the last chunk may be short)
 * end-4 u32 CRC32C of header bytes [0, end-4)
 *
 * Why chunk CRCs (version 2) rather than one CRC of the whole data (version 1): a data
 * loader reading 114 KiB records at random from a 4 MiB block made every read load and
 * check the whole block, ~35x the bytes asked for (bench:train resnet50 full: no
 * accelerator held). With a CRC per chunk, a range read loads and checks only the chunks
 * it spans, and still never returns a byte no CRC vouched for (HDFS keeps a CRC per 512 B
 * for the same reason).
 */

/*
 * Whole-object files. Once every block of an object version is cached, the version may be
 * rewritten as one file holding only its data, from offset 0, so that a FUSE passthrough
 * open can hand the kernel that very file (no second copy on disk, no budget). Its name is a
 * block name with index WHOLE_OBJECT_INDEX and fileBytes = the object's size; the version's
 * blocks are dropped once it is in place. Its header is encodeHeader() of the whole data with
 * that index, kept in extended attribute WHOLE_HEADER_XATTR, set before the rename, so a
 * whole-object file in place always has one. Not a trailer: FUSE passthrough reads do not
 * stop at the size the mount reports, so a read to EOF would return it. Chunks count from the
 * object's start, so block i's chunks are a slice of the table (the block size must be a
 * multiple of the chunk size). The chunk is the blocks' own up to about 60 MiB and larger
 * beyond (wholeChunkBytesFor), so the table fits the xattr; the header says which, and a
 * reader checks it is the one this version's size calls for. Agents older than this remove
 * such files at start (too big to be a block), and ones that knew only the blocks' chunk
 * size find a larger one a bad header (a miss, refetched); a cache can afford both.
 */
export const WHOLE_OBJECT_INDEX = 0xfffffffe;
export const WHOLE_HEADER_XATTR = "user.ferry.header";
/** Largest header kept in the xattr: ext4 keeps all of a file's xattrs in one 4 KiB block. */
export const MAX_WHOLE_HEADER_BYTES = 3968;

/** Bytes of the header a whole-object file of this version would carry. */
function headerBytes(bucket: string, key: string, etag: string, dataLength: number, chunkBytes: number): number {
  return FIXED_BYTES + Buffer.byteLength(bucket) + Buffer.byteLength(key) + Buffer.byteLength(etag) + Math.ceil(dataLength / chunkBytes) * CRC_BYTES + CRC_BYTES;
}

/**
 * Bytes one CRC covers in the whole-object file of this version: the blocks' chunk size,
 * doubled until the CRC table fits the xattr (146.6 MB: 256 KiB; 1 GiB: 2 MiB), never past
 * the block size and always dividing it, so block i's chunks stay a slice of the table.
 * Undefined when no such size fits (objects of about 3.7 GiB and up with 4 MiB blocks).
 * A larger chunk costs a small range read more bytes to check; whole-object files exist
 * for passthrough, where the kernel reads them without the agent, so that cost is rare.
 */
export function wholeChunkBytesFor(object: { bucket: string; key: string; etag: string; size: number }, blockSizeBytes: number): number | undefined {
  if (object.size <= 0) return undefined;
  for (let chunkBytes = chunkBytesFor(blockSizeBytes); chunkBytes <= blockSizeBytes && blockSizeBytes % chunkBytes === 0; chunkBytes *= 2) {
    if (headerBytes(object.bucket, object.key, object.etag, object.size, chunkBytes) <= MAX_WHOLE_HEADER_BYTES) return chunkBytes;
  }
  return undefined;
}

/** Whether an object version of `size` bytes can be kept as a whole-object file with blocks of this size. */
export function fitsWholeFile(object: { bucket: string; key: string; etag: string; size: number }, blockSizeBytes: number): boolean {
  return wholeChunkBytesFor(object, blockSizeBytes) !== undefined;
}

/** The chunk size the header of `id` (a block, or a whole-object file of `dataLength` bytes) must carry. */
function chunkBytesOf(id: BlockId, dataLength: number, blockSizeBytes: number): number | undefined {
  return id.index === WHOLE_OBJECT_INDEX ? wholeChunkBytesFor({ ...id, size: dataLength }, blockSizeBytes) : chunkBytesFor(blockSizeBytes);
}

/** Smallest chunk a CRC covers; bigger blocks get bigger chunks so a header stays small. */
const MIN_CHUNK_BYTES = 64 * 1024;
/** Most chunks in one block (a 4 KiB CRC table). */
const MAX_CHUNKS = 1024;

/** The 64-bit hashes a block is located and indexed by, as 32-bit halves and as hex. */
export interface BlockHashes {
  /** Hash of (bucket, key): every version of one key shares it (dropObject, pins, fan-out dir). */
  keyHi: number;
  keyLo: number;
  /** Hash of (bucket, key, etag): one object version. */
  verHi: number;
  verLo: number;
  /** keyHash ‖ verHash as 32 hex digits: the stem of every block file name of this version. */
  stem: string;
}

/** The fields a block file name carries. */
export interface BlockName {
  keyHi: number;
  keyLo: number;
  verHi: number;
  verLo: number;
  index: number;
  /** Header plus data. */
  fileBytes: number;
  /** When the block was written, in whole seconds since the epoch (for the TTL). */
  writtenSec: number;
}

function hash64(parts: readonly string[]): Buffer {
  // JSON of the parts is unambiguous whatever characters keys contain.
  return hash("sha256", JSON.stringify(parts), "buffer");
}

/** The hash of an object's name, whatever its version: BlockHashes' keyHi and keyLo. */
export function keyHash(bucket: string, key: string): { keyHi: number; keyLo: number } {
  const k = hash64([bucket, key]);
  return { keyHi: k.readUInt32BE(0), keyLo: k.readUInt32BE(4) };
}

export function blockHashes(bucket: string, key: string, etag: string): BlockHashes {
  const k = hash64([bucket, key]);
  const v = hash64([bucket, key, etag]);
  const keyHi = k.readUInt32BE(0);
  const keyLo = k.readUInt32BE(4);
  const verHi = v.readUInt32BE(0);
  const verLo = v.readUInt32BE(4);
  return { keyHi, keyLo, verHi, verLo, stem: hex32(keyHi) + hex32(keyLo) + hex32(verHi) + hex32(verLo) };
}

export function hex32(n: number): string {
  return (n >>> 0).toString(16).padStart(8, "0");
}

export function keyHex(keyHi: number, keyLo: number): string {
  return hex32(keyHi) + hex32(keyLo);
}

/** Fan-out directory (4096 of them): the first three hex digits of the key hash, so all versions of a key share one. */
export function fanDir(keyHi: number): string {
  return hex32(keyHi).slice(0, 3);
}

/** Prefix of the name of block `index` of a version; the rest (size, time) is found by the index or a readdir. */
export function namePrefix(stem: string, index: number): string {
  return `${stem}-${index.toString(16)}-`;
}

export function blockName(n: BlockName): string {
  return `${hex32(n.keyHi)}${hex32(n.keyLo)}${hex32(n.verHi)}${hex32(n.verLo)}-${n.index.toString(16)}-${n.fileBytes.toString(16)}-${n.writtenSec.toString(16)}`;
}

/** Value of the lowercase hex digits s[from, to), or -1 if any is not one. */
function hexField(s: string, from: number, to: number): number {
  if (to <= from || to - from > 8) return -1;
  let v = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/**
 * Parses a block file name; undefined for anything that is not one. Hand-rolled (no regex,
 * no substrings): the scan runs it once per cached block.
 */
export function parseBlockName(name: string): BlockName | undefined {
  if (name.length < 38 || name.charCodeAt(32) !== 45) return undefined;
  const a = name.indexOf("-", 33);
  const b = a < 0 ? -1 : name.indexOf("-", a + 1);
  if (b < 0 || name.indexOf("-", b + 1) >= 0) return undefined;
  const keyHi = hexField(name, 0, 8);
  const keyLo = hexField(name, 8, 16);
  const verHi = hexField(name, 16, 24);
  const verLo = hexField(name, 24, 32);
  const index = hexField(name, 33, a);
  const fileBytes = hexField(name, a + 1, b);
  const writtenSec = hexField(name, b + 1, name.length);
  if (keyHi < 0 || keyLo < 0 || verHi < 0 || verLo < 0 || index < 0 || fileBytes < 0 || writtenSec < 0) return undefined;
  return { keyHi, keyLo, verHi, verLo, index, fileBytes, writtenSec };
}

/** Bytes of data one chunk CRC covers in blocks of this size. */
export function chunkBytesFor(blockSizeBytes: number): number {
  return Math.max(MIN_CHUNK_BYTES, Math.ceil(blockSizeBytes / MAX_CHUNKS));
}

/** Where a block file's parts are, derived from its identity and file size alone (no read needed). */
export interface BlockLayout {
  headerLength: number;
  dataLength: number;
  chunkBytes: number;
}

/**
 * The layout a block file of `fileBytes` bytes must have for this identity, or undefined
 * when no valid block has that size. A range read uses it to read header and chunks at once.
 */
export function blockLayout(id: BlockId, fileBytes: number, blockSizeBytes: number): BlockLayout | undefined {
  const chunkBytes = chunkBytesFor(blockSizeBytes);
  const fixed = FIXED_BYTES + Buffer.byteLength(id.bucket) + Buffer.byteLength(id.key) + Buffer.byteLength(id.etag) + CRC_BYTES;
  // fileBytes = fixed + 4·chunks + data, with chunks = ceil(data / chunkBytes): each chunk adds chunkBytes + 4 at most.
  const rest = fileBytes - fixed;
  const chunks = Math.ceil(rest / (chunkBytes + CRC_BYTES));
  const dataLength = rest - chunks * CRC_BYTES;
  if (rest < 0 || dataLength > blockSizeBytes || Math.ceil(dataLength / chunkBytes) !== chunks) return undefined;
  return { headerLength: fixed + chunks * CRC_BYTES, dataLength, chunkBytes };
}

/** Encodes the header of a block or whole-object file; throws RangeError if the identity does not fit a header. */
export function encodeHeader(id: BlockId, data: Uint8Array, blockSizeBytes: number): Buffer {
  const chunkBytes = chunkBytesOf(id, data.length, blockSizeBytes);
  if (chunkBytes === undefined) throw new RangeError(`object too large for a whole-object file: ${id.bucket}/${id.key}`);
  const crcs = new Uint32Array(Math.ceil(data.length / chunkBytes));
  for (let c = 0; c < crcs.length; c++) crcs[c] = crc32c(data.subarray(c * chunkBytes, (c + 1) * chunkBytes));
  return headerFromCrcs(id, data.length, chunkBytes, blockSizeBytes, crcs);
}

/**
 * The header of `dataLength` bytes whose chunks of `chunkBytes` have CRC32C `crcs`: for a
 * whole-object file written as it streams, its CRCs taken along the way (chunkBytes must be
 * what wholeChunkBytesFor says, or the header will not check).
 */
export function headerFromCrcs(id: BlockId, dataLength: number, chunkBytes: number, blockSizeBytes: number, crcs: Uint32Array): Buffer {
  const bucket = Buffer.from(id.bucket);
  const key = Buffer.from(id.key);
  const etag = Buffer.from(id.etag);
  const chunks = Math.ceil(dataLength / chunkBytes);
  if (crcs.length !== chunks) throw new RangeError(`${crcs.length} chunk CRCs for ${chunks} chunks`);
  const table = FIXED_BYTES + bucket.length + key.length + etag.length;
  const length = table + chunks * CRC_BYTES + CRC_BYTES;
  if (length > MAX_HEADER_BYTES) throw new RangeError(`block identity too long for a header: ${id.bucket}/${id.key}`);
  const h = Buffer.alloc(length);
  for (let c = 0; c < chunks; c++) h.writeUInt32LE(crcs[c] ?? 0, table + c * CRC_BYTES);
  h.writeUInt32LE(MAGIC, 0);
  h.writeUInt16LE(FORMAT_VERSION, 4);
  h.writeUInt16LE(length, 6);
  h.writeUInt32LE(id.index, 8);
  h.writeUInt32LE(dataLength, 12);
  h.writeUInt32LE(chunkBytes, 16);
  h.writeUInt32LE(blockSizeBytes, 20);
  h.writeUInt16LE(bucket.length, 24);
  h.writeUInt16LE(key.length, 26);
  h.writeUInt16LE(etag.length, 28);
  bucket.copy(h, FIXED_BYTES);
  key.copy(h, FIXED_BYTES + bucket.length);
  etag.copy(h, FIXED_BYTES + bucket.length + key.length);
  h.writeUInt32LE(crc32c(h.subarray(0, length - CRC_BYTES)), length - CRC_BYTES);
  return h;
}

/** Why a block file was rejected, for the corruption log. */
export type BlockDefect = "truncated" | "magic" | "version" | "header-crc" | "identity" | "length" | "data-crc";

export type DecodedBlock = { ok: true; data: Buffer } | { ok: false; defect: BlockDefect };

/**
 * Checks a whole block file against the BlockId it was asked for: header CRC, identity,
 * length, then every chunk's CRC. Returns the data (a view into `file`) or the defect found.
 */
export function decodeBlock(file: Buffer, id: BlockId, blockSizeBytes: number): DecodedBlock {
  const header = checkHeader(file, id, blockSizeBytes);
  if (!header.ok) return header;
  const { headerLength, dataLength } = header;
  if (file.length !== headerLength + dataLength) return { ok: false, defect: file.length < headerLength + dataLength ? "truncated" : "length" };
  const data = file.subarray(headerLength);
  return chunksMatch(file, header, data, 0) ? { ok: true, data } : { ok: false, defect: "data-crc" };
}

type HeaderCheck = { ok: true; headerLength: number; dataLength: number; chunkBytes: number } | { ok: false; defect: BlockDefect };

/**
 * Checks the header (`file` holds at least all of it) against the BlockId asked for:
 * magic, version, header CRC, identity, chunk size. Data is not looked at.
 */
export function checkHeader(file: Buffer, id: BlockId, blockSizeBytes: number): HeaderCheck {
  const header = decodeHeader(file);
  if (!header.ok) return header;
  if (file.readUInt32LE(8) !== id.index || file.readUInt32LE(20) !== blockSizeBytes) return { ok: false, defect: "identity" };
  if (!identityMatches(file, id)) return { ok: false, defect: "identity" };
  if (header.chunkBytes !== chunkBytesOf(id, header.dataLength, blockSizeBytes)) return { ok: false, defect: "header-crc" };
  return header;
}

/**
 * Whether `data`, the block's bytes from chunk `firstChunk` on (whole chunks, or up to the
 * block's end), matches the CRCs in the checked header `file`.
 */
export function chunksMatch(file: Buffer, header: { headerLength: number; dataLength: number; chunkBytes: number }, data: Uint8Array, firstChunk: number): boolean {
  const { chunkBytes, headerLength, dataLength } = header;
  const table = headerLength - CRC_BYTES - Math.ceil(dataLength / chunkBytes) * CRC_BYTES;
  const chunks = Math.ceil(data.length / chunkBytes);
  // Only whole chunks can be checked: a piece must end on a chunk boundary or at the block's end.
  if (data.length % chunkBytes !== 0 && firstChunk * chunkBytes + data.length !== dataLength) return false;
  for (let c = 0; c < chunks; c++) {
    const crc = crc32c(data.subarray(c * chunkBytes, (c + 1) * chunkBytes));
    if (crc !== file.readUInt32LE(table + (firstChunk + c) * CRC_BYTES)) return false;
  }
  return true;
}

/** A copy of the chunk CRC table of a checked header. */
export function chunkCrcs(file: Buffer, header: { headerLength: number; dataLength: number; chunkBytes: number }): Uint32Array {
  const chunks = Math.ceil(header.dataLength / header.chunkBytes);
  const table = header.headerLength - CRC_BYTES - chunks * CRC_BYTES;
  const out = new Uint32Array(chunks);
  for (let c = 0; c < chunks; c++) out[c] = file.readUInt32LE(table + c * CRC_BYTES);
  return out;
}

/** Validates magic, version and header CRC of the first bytes of a block file. */
export function decodeHeader(file: Buffer): HeaderCheck {
  if (file.length < FIXED_BYTES + CRC_BYTES) return { ok: false, defect: "truncated" };
  if (file.readUInt32LE(0) !== MAGIC) return { ok: false, defect: "magic" };
  if (file.readUInt16LE(4) !== FORMAT_VERSION) return { ok: false, defect: "version" };
  const headerLength = file.readUInt16LE(6);
  const dataLength = file.readUInt32LE(12);
  const chunkBytes = file.readUInt32LE(16);
  const strings = file.readUInt16LE(24) + file.readUInt16LE(26) + file.readUInt16LE(28);
  if (chunkBytes === 0 || headerLength !== FIXED_BYTES + strings + Math.ceil(dataLength / chunkBytes) * CRC_BYTES + CRC_BYTES) return { ok: false, defect: "header-crc" };
  if (file.length < headerLength) return { ok: false, defect: "truncated" };
  if (crc32c(file.subarray(0, headerLength - CRC_BYTES)) !== file.readUInt32LE(headerLength - CRC_BYTES)) {
    return { ok: false, defect: "header-crc" };
  }
  return { ok: true, headerLength, dataLength, chunkBytes };
}

/** The (bucket, key) a valid header names, for resolving pins of blocks indexed by name only. */
export function headerObject(file: Buffer): { bucket: string; key: string } | undefined {
  const h = decodeHeader(file);
  if (!h.ok) return undefined;
  const b = file.readUInt16LE(24);
  const k = file.readUInt16LE(26);
  return {
    bucket: file.toString("utf8", FIXED_BYTES, FIXED_BYTES + b),
    key: file.toString("utf8", FIXED_BYTES + b, FIXED_BYTES + b + k),
  };
}

function identityMatches(file: Buffer, id: BlockId): boolean {
  const b = file.readUInt16LE(24);
  const k = file.readUInt16LE(26);
  const e = file.readUInt16LE(28);
  let at = FIXED_BYTES;
  if (file.toString("utf8", at, at + b) !== id.bucket) return false;
  at += b;
  if (file.toString("utf8", at, at + k) !== id.key) return false;
  at += k;
  return file.toString("utf8", at, at + e) === id.etag;
}
