// The seam between the read path and the node's NVMe: fixed-size blocks of object
// versions. A miss (undefined) and a fault (a thrown CacheFaultError) are never conflated;
// a corrupt block is a miss, never a failed read and never served.

/** One block of one object version. The ETag is part of the identity, so a changed object can never be served from old blocks. */
export interface BlockId {
  bucket: string;
  key: string;
  /** The object's ETag as the origin reports it (quotes stripped). */
  etag: string;
  /** Block number: bytes [index * blockSizeBytes, (index + 1) * blockSizeBytes). */
  index: number;
}

/** An object version, for whole-object files. */
export interface CachedObject {
  bucket: string;
  key: string;
  etag: string;
  size: number;
}

export interface BlockCacheStats {
  /** Bytes of block data on disk (headers included). */
  usedBytes: number;
  quotaBytes: number;
  blocks: number;
  objects: number;
  pinnedBlocks: number;
  hits: number;
  misses: number;
  /** Blocks found bad on read (checksum, truncation, identity) and dropped. */
  corruptBlocks: number;
  evictedBlocks: number;
  expiredBlocks: number;
  writeFailures: number;
  /** True while the start-up scan is still indexing existing blocks. */
  scanning: boolean;
  /** Approximate heap bytes held by the index, for the ≤ 300 B/block target. */
  indexBytes: number;
}

/**
 * Verified block bytes lent by the cache: `data` stays valid and unchanged until release(),
 * after which the holder must not touch it (the memory is reused). Releasing twice is a
 * no-op; never releasing only costs the reuse.
 */
export interface BlockLease {
  readonly data: Uint8Array;
  release(): void;
}

export interface BlockCache {
  readonly blockSizeBytes: number;
  /** The block's data (the caller's to keep), or undefined on a miss (absent, corrupt, truncated, expired). */
  get(id: BlockId): Promise<Uint8Array | undefined>;
  /** Like get, but lends reusable memory: the hot read path, where a fresh block-sized allocation per read dominates. */
  lease(id: BlockId): Promise<BlockLease | undefined>;
  /**
   * Bytes [from, to) of the block's data (fewer if the block ends sooner), lent like lease()
   * but reading and verifying only what the range spans: a random record read inside a big
   * block costs its own bytes, not the block's.
   */
  leaseRange(id: BlockId, from: number, to: number): Promise<BlockLease | undefined>;
  /** Stores a block durably (temp file + rename). May evict others first; never evicts pinned blocks. */
  put(id: BlockId, data: Uint8Array): Promise<void>;
  /**
   * Stores a whole object (`data` is all of it) as a whole-object file straight away, the
   * form holdWholeFile() would rewrite its blocks into; as put() of its blocks when it cannot.
   */
  putWhole(object: CachedObject, data: Uint8Array): Promise<void>;
  /**
   * The block's file and checked CRCs, when its header is already in memory (read or written
   * lately); no disk I/O. The file may be evicted at any time after: the caller must treat a
   * file it cannot open as a miss, and check every byte it reads against the CRCs.
   */
  locate(id: BlockId): BlockFileLocation | undefined;
  /**
   * Keeps a wholly cached version as one file holding only its data, from offset 0 (for a
   * FUSE passthrough open), and holds it (never evicted nor expired) until
   * releaseWholeFile(); returns its path, or undefined, nothing changed, when it cannot. Its
   * blocks stay readable through get/lease/locate.
   */
  holdWholeFile(object: CachedObject): Promise<string | undefined>;
  releaseWholeFile(object: CachedObject): void;
  /** Cheap membership check from the in-memory index (no disk I/O, no checksum). */
  has(id: BlockId): boolean;
  /** Pins or unpins every cached and future block of objects under bucket/prefix; persisted across restarts. */
  pin(bucket: string, prefix: string): Promise<void>;
  unpin(bucket: string, prefix: string): Promise<void>;
  pins(): Array<{ bucket: string; prefix: string }>;
  /** Drops one block unless it is pinned (a bounded near-cache copy making room); true if it was dropped. */
  remove(id: BlockId): Promise<boolean>;
  /** Drops every block of every version of one object (e.g. after its ETag changed). */
  dropObject(bucket: string, key: string): Promise<void>;
  stats(): BlockCacheStats;
  /** Resolves when the start-up scan has indexed every block already on disk. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Where a cached block's bytes sit on disk, for a reader outside the cache (the mount's
 * reader thread) that checks them itself: data bytes [dataOffset, dataOffset + dataLength)
 * of the file at `path`, chunk c of `chunkBytes` bytes having CRC32C crcs[c].
 */
export interface BlockFileLocation {
  path: string;
  dataOffset: number;
  dataLength: number;
  chunkBytes: number;
  crcs: Uint32Array;
}

/** An I/O fault of the cache itself (disk gone, permissions): the reader falls back to the origin. */
export class CacheFaultError extends Error {
  override readonly name = "CacheFaultError";
}
