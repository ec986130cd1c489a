// The FUSE kernel protocol, as far as a read-only file system speaks it: opcodes, flags and
// the little-endian struct layouts of linux/fuse.h (protocol 7.x; fields named as there).
// Only what kernel-mount.ts needs is here; everything else is answered ENOSYS.

export const Op = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  OPEN: 14,
  READ: 15,
  STATFS: 17,
  RELEASE: 18,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  INTERRUPT: 36,
  DESTROY: 38,
  BATCH_FORGET: 42,
  READDIRPLUS: 44,
} as const;

/** INIT flags (bits of `flags`; those ≥ 32 travel in `flags2`, shifted down by 32). */
export const Init = {
  ASYNC_READ: 1 << 0,
  /** Directory reads carry each entry's attributes (READDIRPLUS): a walk that stats every file sends no LOOKUPs. */
  DO_READDIRPLUS: 1 << 13,
  /** The kernel takes ENOSYS to OPEN as "never ask again": opens stay in the kernel, with KEEP_CACHE. */
  NO_OPEN_SUPPORT: 1 << 17,
  PARALLEL_DIROPS: 1 << 18,
  MAX_PAGES: 1 << 22,
  INIT_EXT: 1 << 30,
  /** flags2 bit: open replies may name a backing file the kernel reads itself. */
  PASSTHROUGH_2: 1 << (37 - 32),
} as const;

/** fuse_open_out.open_flags. */
export const OpenFlag = {
  KEEP_CACHE: 1 << 1,
  /** On OPENDIR: the kernel keeps the listing it read (with KEEP_CACHE, across opens). */
  CACHE_DIR: 1 << 3,
  NOFLUSH: 1 << 5,
  PASSTHROUGH: 1 << 7,
} as const;

/** _IOW(229, 1, struct fuse_backing_map) and _IOW(229, 2, uint32_t). */
export const FUSE_DEV_IOC_BACKING_OPEN = 0x4010e501;
export const FUSE_DEV_IOC_BACKING_CLOSE = 0x4004e502;

export const IN_HEADER_BYTES = 40;
export const OUT_HEADER_BYTES = 16;
const ATTR_BYTES = 88;
export const ENTRY_OUT_BYTES = 40 + ATTR_BYTES;
export const ATTR_OUT_BYTES = 16 + ATTR_BYTES;
export const OPEN_OUT_BYTES = 16;
export const INIT_OUT_BYTES = 64;
export const STATFS_OUT_BYTES = 80;
export const DT_DIR = 4;
export const DT_REG = 8;

export interface RequestHeader {
  len: number;
  opcode: number;
  unique: bigint;
  nodeid: bigint;
}

export function readHeader(buf: Buffer): RequestHeader {
  return { len: buf.readUInt32LE(0), opcode: buf.readUInt32LE(4), unique: buf.readBigUInt64LE(8), nodeid: buf.readBigUInt64LE(16) };
}

/** Reply frame: header (len, error, unique) followed by `bodyBytes` for the caller to fill. */
export function replyFrame(unique: bigint, error: number, bodyBytes: number): Buffer {
  const out = Buffer.alloc(OUT_HEADER_BYTES + bodyBytes);
  out.writeUInt32LE(out.length, 0);
  out.writeInt32LE(error, 4);
  out.writeBigUInt64LE(unique, 8);
  return out;
}

export interface Attr {
  ino: bigint;
  size: number;
  /** Seconds since the epoch, with sub-second part. */
  mtimeMs: number;
  mode: number;
  nlink: number;
}

/** A u64 from a safe integer (inode numbers included: they stay far below 2^53), as two u32 halves: no BigInt per field (a READDIRPLUS writes thousands). */
function writeU64(out: Buffer, at: number, value: number): void {
  out.writeUInt32LE(value >>> 0, at);
  out.writeUInt32LE(Math.floor(value / 0x1_0000_0000) >>> 0, at + 4);
}

function writeAttr(out: Buffer, at: number, a: Attr): void {
  const sec = Math.floor(a.mtimeMs / 1000);
  const nsec = Math.round((a.mtimeMs % 1000) * 1e6);
  writeU64(out, at, Number(a.ino));
  writeU64(out, at + 8, a.size);
  writeU64(out, at + 16, Math.ceil(a.size / 512));
  for (const field of [24, 32, 40]) writeU64(out, at + field, sec); // atime, mtime, ctime
  for (const field of [48, 52, 56]) out.writeUInt32LE(nsec, at + field);
  out.writeUInt32LE(a.mode, at + 60);
  out.writeUInt32LE(a.nlink, at + 64);
  // uid, gid, rdev stay 0 (root-owned, read-only for everyone by mode)
  out.writeUInt32LE(4096, at + 80); // blksize
}

/** fuse_entry_out: the answer to LOOKUP. */
export function entryOut(out: Buffer, at: number, attr: Attr, validSeconds: number): void {
  writeU64(out, at, Number(attr.ino));
  writeU64(out, at + 8, 0); // generation
  writeU64(out, at + 16, validSeconds); // entry_valid
  writeU64(out, at + 24, validSeconds); // attr_valid
  writeAttr(out, at + 40, attr);
}

/** fuse_attr_out: the answer to GETATTR. */
export function attrOut(out: Buffer, at: number, attr: Attr, validSeconds: number): void {
  writeU64(out, at, validSeconds);
  writeAttr(out, at + 16, attr);
}

export function openOut(out: Buffer, at: number, fh: bigint, openFlags: number, backingId: number): void {
  out.writeBigUInt64LE(fh, at);
  out.writeUInt32LE(openFlags, at + 8);
  out.writeInt32LE(backingId, at + 12);
}

export interface InitIn {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
  flags2: number;
}

export function readInitIn(arg: Buffer): InitIn {
  const flags = arg.readUInt32LE(12);
  return {
    major: arg.readUInt32LE(0),
    minor: arg.readUInt32LE(4),
    maxReadahead: arg.readUInt32LE(8),
    flags,
    flags2: flags & Init.INIT_EXT && arg.length >= 20 ? arg.readUInt32LE(16) : 0,
  };
}

export interface InitOut {
  minor: number;
  maxReadahead: number;
  flags: number;
  flags2: number;
  maxWrite: number;
  maxPages: number;
  maxStackDepth: number;
}

export function initOut(out: Buffer, at: number, o: InitOut): void {
  out.writeUInt32LE(7, at);
  out.writeUInt32LE(o.minor, at + 4);
  out.writeUInt32LE(o.maxReadahead, at + 8);
  out.writeUInt32LE(o.flags >>> 0, at + 12);
  out.writeUInt16LE(64, at + 16); // max_background
  out.writeUInt16LE(48, at + 18); // congestion_threshold
  out.writeUInt32LE(o.maxWrite, at + 20);
  out.writeUInt32LE(1, at + 24); // time_gran: nanoseconds
  out.writeUInt16LE(o.maxPages, at + 28);
  out.writeUInt32LE(o.flags2 >>> 0, at + 32);
  out.writeUInt32LE(o.maxStackDepth, at + 36);
}

export function statfsOut(out: Buffer, at: number): void {
  out.writeBigUInt64LE(1_000_000_000n, at); // blocks
  // bfree, bavail, files (1e6), ffree stay 0 but files
  out.writeBigUInt64LE(1_000_000n, at + 24);
  out.writeUInt32LE(4096, at + 40); // bsize
  out.writeUInt32LE(1024, at + 44); // namelen
  out.writeUInt32LE(4096, at + 48); // frsize
}

/** Bytes one fuse_dirent with this name takes (8-byte aligned). */
export function direntBytes(name: Buffer): number {
  return (24 + name.length + 7) & ~7;
}

/** Bytes one fuse_direntplus (fuse_entry_out, then fuse_dirent) with this name takes. */
export function direntplusBytes(name: Buffer): number {
  return ENTRY_OUT_BYTES + direntBytes(name);
}

/**
 * Writes one fuse_direntplus: the entry as LOOKUP would answer it (the kernel counts it as
 * one lookup of that node), or zeros for an entry it should only list ("." and "..").
 */
export function writeDirentplus(out: Buffer, at: number, entry: { attr: Attr; validSeconds: number } | undefined, ino: bigint, off: number, type: number, name: Buffer): number {
  if (entry) entryOut(out, at, entry.attr, entry.validSeconds);
  else out.fill(0, at, at + ENTRY_OUT_BYTES);
  return writeDirent(out, at + ENTRY_OUT_BYTES, ino, off, type, name);
}

/** Writes one fuse_dirent; `off` is the cookie the kernel passes back to continue after it. */
export function writeDirent(out: Buffer, at: number, ino: bigint, off: number, type: number, name: Buffer): number {
  writeU64(out, at, Number(ino));
  writeU64(out, at + 8, off);
  out.writeUInt32LE(name.length, at + 16);
  out.writeUInt32LE(type, at + 20);
  name.copy(out, at + 24);
  const end = at + direntBytes(name);
  out.fill(0, at + 24 + name.length, end);
  return end;
}
