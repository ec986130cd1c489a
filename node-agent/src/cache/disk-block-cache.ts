// BlockCache on a local (NVMe) directory: one file per block, found by a path derived from
// its identity, indexed in memory by a start-up scan of file names that runs while the
// cache already serves. Invariants: a get returns verified bytes or undefined (corrupt,
// truncated, misplaced and expired files are misses, removed and counted) and throws only
// CacheFaultError for a real I/O fault; a put lands whole or not at all (temp + rename);
// bytes on disk never exceed the quota (puts reserve room first, evicting if needed);
// pinned blocks are never evicted; no slot number is kept across an await.
import { randomBytes } from "node:crypto";
import { mkdir, rename } from "node:fs/promises";
import { join } from "node:path";
import { CacheFaultError, type BlockCache, type CachedObject, type BlockCacheStats, type BlockFileLocation, type BlockId, type BlockLease } from "./block-cache.ts";
import { type BlockHashes, blockHashes, blockName, type BlockName, BLOCKS_DIR, chunkBytesFor, chunkCrcs, type DecodedBlock, encodeHeader, fanDir, fitsWholeFile, keyHash, keyHex, MAX_HEADER_BYTES, namePrefix, parseBlockName, TMP_DIR, WHOLE_OBJECT_INDEX } from "./block-format.ts";
import { BufferPool } from "./buffer-pool.ts";
import { CacheSpace } from "./cache-space.ts";
import { CacheEviction } from "./cache-eviction.ts";
import { OpenFiles } from "./open-files.ts";
import { errnoCode, removeFile, writeBlockFile } from "./block-files.ts";
import { BlockIndex } from "./block-index.ts";
import { HeaderMemo, readBlockRange, readWholeBlock } from "./block-reads.ts";
import { listFanDir, prepareCacheDir, removeOtherFormats, sweepTempFiles } from "./cache-dir.ts";
import { cacheConfig, type CacheConfig, type DiskBlockCacheOptions } from "./cache-options.ts";
import { PinStore, type Pin } from "./pin-store.ts";
import { scanBlocks } from "./scan.ts";
import { readWholeRange, wholeFilesSupported, writeWholeFile } from "./whole-files.ts";

export type { DiskBlockCacheOptions, CacheLogger } from "./cache-options.ts";

const NONE = -1;
/** Header bytes a pooled buffer has room for besides the CRC table (fixed fields plus a long key); a longer header gets a fresh buffer. */
const POOL_HEADER_ROOM_BYTES = 4096;
/** Pooled buffers kept while idle: enough for a few concurrent streaming reads with their windows. */
const POOL_MAX_IDLE = 32;
/** Block files kept open for warm reads (well under the usual 1024-descriptor soft limit). */
const OPEN_FILES = 256;
/** Headers kept for range reads: 4096 blocks of 4 MiB is a 16 GiB working set, for ~2 MB. */
const HEADER_MEMO_ENTRIES = 4096;
/** Block files up to this size are read without a thread-pool hop (see OpenFiles): small objects' blocks. */
const SYNC_READ_MAX_BYTES = 256 * 1024;
/** Object versions whose hashes are remembered (cleared whole when full: simple, and a refill is cheap). */
const RECENT_HASHES = 4096;
/** How stale the statfs-derived free-space bound may get. */
const STATFS_INTERVAL_MS = 1000;

function sameFile(a: BlockName, b: BlockName): boolean {
  return a.fileBytes === b.fileBytes && a.writtenSec === b.writtenSec;
}

export class DiskBlockCache implements BlockCache {
  readonly blockSizeBytes: number;
  private readonly cfg: CacheConfig;
  private readonly blocksDir: string;
  private readonly tmpDir: string;
  private readonly index = new BlockIndex();
  /** Whole-file buffers for lease(): block size plus room for a typical header. */
  private readonly pool: BufferPool;
  private readonly files = new OpenFiles({ maxOpen: OPEN_FILES, syncReadMaxBytes: SYNC_READ_MAX_BYTES });
  /** Checked headers of block files read in pieces (~0.5 KiB each for 4 MiB blocks). */
  private readonly headers = new HeaderMemo(HEADER_MEMO_ENTRIES);
  /** Recent versions' hashes: two SHA-256s per get otherwise, for every block of the same object. */
  private readonly recentHashes = new Map<string, BlockHashes>();
  private readonly pinStore: PinStore;
  private readonly counters = { hits: 0, misses: 0, corruptBlocks: 0, evictedBlocks: 0, expiredBlocks: 0, writeFailures: 0 };
  /** In-flight puts by block (name prefix): a second put of the same block joins the first. */
  private readonly putting = new Map<string, Promise<void>>();
  /** Holds on whole-object files by version stem (see holdWholeFile). */
  private readonly holds = new Map<string, number>();
  /** In-flight whole-object files by name prefix, likewise. */
  private readonly joining = new Map<string, Promise<string | undefined>>();
  /** Key hashes dropped while the scan runs, so it does not index files it listed before they went. */
  private readonly droppedDuringScan = new Set<string>();
  /** Fan directories this process made or found made: renames into them need no mkdir first. */
  private readonly fanDirsMade = new Set<string>();
  private scanning = true;
  private closed = false;
  private scanDone: Promise<void> = Promise.resolve();
  private readonly space: CacheSpace;
  /** Reservations, eviction between the watermarks, the free-space timer and the TTL sweep. */
  private readonly eviction: CacheEviction;
  /** False once this machine or filesystem has shown it cannot keep whole-object files (no koffi, no xattrs). */
  private wholeFiles = wholeFilesSupported();

  private constructor(cfg: CacheConfig, pinStore: PinStore) {
    this.cfg = cfg;
    this.blockSizeBytes = cfg.blockSizeBytes;
    this.blocksDir = join(cfg.dir, BLOCKS_DIR);
    this.tmpDir = join(this.blocksDir, TMP_DIR);
    this.pinStore = pinStore;
    this.pool = new BufferPool({ sizeBytes: cfg.blockSizeBytes + POOL_HEADER_ROOM_BYTES + 4 * Math.ceil(cfg.blockSizeBytes / chunkBytesFor(cfg.blockSizeBytes)), maxIdle: POOL_MAX_IDLE });
    this.space = new CacheSpace({ dir: this.blocksDir, quotaBytes: cfg.quotaBytes, minFreeRatio: cfg.minFreeRatio, statfsIntervalMs: STATFS_INTERVAL_MS, now: cfg.now, indexedBytes: () => this.index.usedBytes });
    this.eviction = new CacheEviction({
      cfg,
      index: this.index,
      space: this.space,
      counters: this.counters,
      unlinkCounted: (n) => this.unlinkCounted(n),
      forget: (n) => this.forget(n),
      isClosed: () => this.closed,
    });
  }

  /**
   * Opens (creating if needed) the cache in options.dir and starts indexing the blocks
   * already there; returns before that scan ends (see ready()). Throws RangeError for a bad
   * option and CacheFaultError, with a one-line message, if the dir is unusable.
   */
  static async open(options: DiskBlockCacheOptions): Promise<DiskBlockCache> {
    const cfg = cacheConfig(options);
    await prepareCacheDir(cfg.dir);
    const cache = new DiskBlockCache(cfg, await PinStore.load(cfg.dir));
    await sweepTempFiles(cache.tmpDir, cfg.logger);
    void removeOtherFormats(cfg.dir, cfg.logger);
    await cache.space.refresh();
    cache.scanDone = cache.scan();
    // Free space can shrink under other writers, and blocks expire, without any put: check both on a timer.
    cache.eviction.startTimer();
    const { logger, now, ...effective } = cfg;
    logger.info("block cache open", effective);
    return cache;
  }

  async get(id: BlockId): Promise<Uint8Array | undefined> {
    return this.load(id, undefined);
  }

  async lease(id: BlockId): Promise<BlockLease | undefined> {
    return this.lent((buf) => this.load(id, buf));
  }

  async leaseRange(id: BlockId, from: number, to: number): Promise<BlockLease | undefined> {
    return this.lent((buf) => this.load(id, buf, { from, to }));
  }

  /** Runs a load into a pooled buffer and lends the result; the buffer goes back once, whatever happens. */
  private async lent(load: (buf: Buffer) => Promise<Uint8Array | undefined>): Promise<BlockLease | undefined> {
    const buf = this.pool.acquire();
    let data: Uint8Array | undefined;
    try {
      data = await load(buf);
    } finally {
      if (data === undefined) this.pool.release(buf);
    }
    if (data === undefined) return undefined;
    // The data may sit in `buf` (usual) or, for an oversized file, in a fresh buffer: either way `buf` goes back once.
    let held = true;
    return {
      data,
      release: () => {
        if (held) this.pool.release(buf);
        held = false;
      },
    };
  }

  private hashesOf(id: BlockId): BlockHashes {
    const k = JSON.stringify([id.bucket, id.key, id.etag]);
    let h = this.recentHashes.get(k);
    if (h === undefined) {
      h = blockHashes(id.bucket, id.key, id.etag);
      if (this.recentHashes.size >= RECENT_HASHES) this.recentHashes.clear();
      this.recentHashes.set(k, h);
    }
    return h;
  }

  /**
   * Reads and verifies one block, or only the chunks `range` spans, into `into` when given
   * (and big enough); undefined on a miss.
   */
  private async load(id: BlockId, into: Buffer | undefined, range?: { from: number; to: number }): Promise<Uint8Array | undefined> {
    this.assertOpen();
    const h = this.hashesOf(id);
    const name = this.indexed(h, id.index) ?? (this.scanning ? await this.findOnDisk(h, id.index) : undefined);
    if (name === undefined) return this.miss();
    if (this.eviction.expired(name) && !this.held(name)) {
      this.counters.expiredBlocks++;
      await this.discard(name);
      return this.miss();
    }
    const path = this.pathOf(name);
    let decoded: DecodedBlock | undefined;
    try {
      // A name claiming more than any block can hold is not read (nor allocated for): it is corrupt.
      if (name.index === WHOLE_OBJECT_INDEX) decoded = await this.readFromWhole(path, name, id, range ?? { from: 0, to: this.blockSizeBytes }, into);
      else if (name.fileBytes > this.blockSizeBytes + MAX_HEADER_BYTES) decoded = { ok: false, defect: "length" };
      else if (range === undefined) decoded = await readWholeBlock(this.files, path, name, id, this.blockSizeBytes, into);
      else decoded = await readBlockRange(this.files, path, name, id, this.blockSizeBytes, range, into, this.headers);
    } catch (err) {
      throw new CacheFaultError(`cannot read block: ${path}`, { cause: err });
    }
    if (decoded === undefined) {
      this.forget(name);
      return this.miss();
    }
    if (!decoded.ok) {
      this.counters.corruptBlocks++;
      this.cfg.logger.warn("corrupt block dropped", { path, defect: decoded.defect, bucket: id.bucket, key: id.key, etag: id.etag, index: id.index });
      await this.discard(name);
      return this.miss();
    }
    const now = this.index.find(h.verHi, h.verLo, name.index);
    if (now !== NONE) this.index.touch(now);
    else if (this.scanning) this.index.add(name, await this.recordPins(id, h), true);
    this.counters.hits++;
    return decoded.data;
  }

  /** Block `id.index`'s bytes `range` (block-relative) out of the whole-object file at `path`. */
  private readFromWhole(path: string, name: BlockName, id: BlockId, range: { from: number; to: number }, into: Buffer | undefined): Promise<DecodedBlock | undefined> {
    const at = id.index * this.blockSizeBytes;
    const to = at + Math.min(range.to, this.blockSizeBytes);
    if (at >= name.fileBytes) return Promise.resolve({ ok: false, defect: "length" });
    return readWholeRange(this.files, path, name.fileBytes, { ...id, index: WHOLE_OBJECT_INDEX }, this.blockSizeBytes, { from: at + range.from, to }, into, this.headers);
  }

  /** Whether this file is held (see holdWholeFile): it expires only once released. */
  private held(n: BlockName): boolean {
    const slot = this.index.find(n.verHi, n.verLo, n.index);
    return slot !== NONE && this.index.isHeld(slot);
  }

  /** The indexed file holding block `index` of a version: its block file, else the version's whole-object file. */
  private indexed(h: BlockHashes, index: number): BlockName | undefined {
    let slot = this.index.find(h.verHi, h.verLo, index);
    if (slot === NONE) slot = this.index.find(h.verHi, h.verLo, WHOLE_OBJECT_INDEX);
    return slot === NONE ? undefined : this.index.nameOf(slot);
  }

  async put(id: BlockId, data: Uint8Array): Promise<void> {
    this.assertOpen();
    if (!Number.isInteger(id.index) || id.index < 0 || id.index >= WHOLE_OBJECT_INDEX) throw new RangeError(`invalid block index: ${id.index}`);
    if (data.length > this.blockSizeBytes) throw new RangeError(`block larger than blockSizeBytes: ${data.length} > ${this.blockSizeBytes}`);
    const h = this.hashesOf(id);
    const inFlight = namePrefix(h.stem, id.index);
    const joined = this.putting.get(inFlight);
    if (joined !== undefined) return joined;
    // The same block is the same bytes (identity includes the ETag): a second put is a no-op.
    if (this.indexed(h, id.index) !== undefined) return;
    const p = this.write(id, data, h).finally(() => this.putting.delete(inFlight));
    this.putting.set(inFlight, p);
    return p;
  }

  /**
   * Whether some version of the object may have blocks here (always yes while the start-up
   * scan runs). A "no" is certain: a cold read may then fetch metadata and first block at once.
   */
  mayHoldObject(bucket: string, key: string): boolean {
    if (this.scanning) return true;
    const k = keyHash(bucket, key);
    return this.index.mayHoldKey(k.keyHi, k.keyLo);
  }

  locate(id: BlockId): BlockFileLocation | undefined {
    const name = this.indexed(this.hashesOf(id), id.index);
    if (name === undefined || (this.eviction.expired(name) && !this.held(name))) return undefined;
    const path = this.pathOf(name);
    const header = this.headers.get(path);
    if (header === undefined) return undefined;
    const crcs = chunkCrcs(header.bytes, header);
    if (name.index !== WHOLE_OBJECT_INDEX) return { path, dataOffset: header.headerLength, dataLength: header.dataLength, chunkBytes: header.chunkBytes, crcs };
    // A block of a whole-object file: its bytes, and its chunks' slice of the table (blocks are whole chunks).
    const dataOffset = id.index * this.blockSizeBytes;
    const dataLength = Math.min(this.blockSizeBytes, header.dataLength - dataOffset);
    if (dataLength <= 0) return undefined;
    const first = dataOffset / header.chunkBytes;
    return { path, dataOffset, dataLength, chunkBytes: header.chunkBytes, crcs: crcs.subarray(first, first + Math.ceil(dataLength / header.chunkBytes)) };
  }

  has(id: BlockId): boolean {
    const name = this.indexed(this.hashesOf(id), id.index);
    return name !== undefined && (!this.eviction.expired(name) || this.held(name));
  }

  /**
   * Keeps a wholly cached object version as one whole-object file (data from offset 0, see
   * block-format.ts), dropping its block files, and holds it: never evicted nor expired until
   * as many releaseWholeFile() calls as holds. Returns its path; undefined, the blocks left
   * as they are, when it cannot: a block is missing or bad, the version is too large for a
   * header in an xattr, this filesystem keeps no xattrs, or the cache has no room.
   */
  async holdWholeFile(object: CachedObject): Promise<string | undefined> {
    this.assertOpen();
    if (!this.wholeFiles || !fitsWholeFile(object, this.blockSizeBytes)) return undefined;
    const h = this.hashesOf({ ...object, index: WHOLE_OBJECT_INDEX });
    if (this.index.find(h.verHi, h.verLo, WHOLE_OBJECT_INDEX) === NONE) {
      const inFlight = namePrefix(h.stem, WHOLE_OBJECT_INDEX);
      let writing = this.joining.get(inFlight);
      if (writing === undefined) {
        writing = this.writeWhole(object, h).finally(() => this.joining.delete(inFlight));
        this.joining.set(inFlight, writing);
      }
      if ((await writing) === undefined) return undefined;
    }
    // Written files are held from the moment they are indexed (their blocks go after): no await since.
    const slot = this.index.find(h.verHi, h.verLo, WHOLE_OBJECT_INDEX);
    if (slot === NONE) return undefined;
    this.index.hold(slot);
    this.holds.set(h.stem, (this.holds.get(h.stem) ?? 0) + 1);
    return this.pathOf(this.index.nameOf(slot));
  }

  /** Ends one hold holdWholeFile() took: after the last, the file is evictable again, as just used. */
  releaseWholeFile(object: CachedObject): void {
    const h = this.hashesOf({ ...object, index: WHOLE_OBJECT_INDEX });
    const left = (this.holds.get(h.stem) ?? 0) - 1;
    if (left > 0) return void this.holds.set(h.stem, left);
    this.holds.delete(h.stem);
    const slot = this.index.find(h.verHi, h.verLo, WHOLE_OBJECT_INDEX);
    if (slot !== NONE) this.index.unhold(slot);
    this.eviction.startEviction();
  }

  async pin(bucket: string, prefix: string): Promise<void> {
    this.assertOpen();
    if (!(await this.pinStore.add(bucket, prefix))) return;
    await this.scanDone;
    // Names carry only hashes: read one header per unpinned object to learn whether the new pin covers it.
    const candidates = this.index
      .objectsWithABlock()
      .filter((o) => !o.pinned)
      .map((o) => this.index.nameOf(o.slot));
    await this.pinStore.recordCached({ bucket, prefix }, candidates.map((n) => ({ path: this.pathOf(n), keyHex: keyHex(n.keyHi, n.keyLo) })));
    this.index.repin((hi, lo) => this.pinStore.hasKey(keyHex(hi, lo)));
  }

  async unpin(bucket: string, prefix: string): Promise<void> {
    this.assertOpen();
    if (!(await this.pinStore.remove(bucket, prefix))) return;
    this.index.repin((hi, lo) => this.pinStore.hasKey(keyHex(hi, lo)));
    this.eviction.startEviction();
  }

  pins(): Pin[] {
    return this.pinStore.pins();
  }

  async remove(id: BlockId): Promise<boolean> {
    this.assertOpen();
    const h = this.hashesOf(id);
    const slot = this.index.find(h.verHi, h.verLo, id.index);
    if (slot === NONE || this.index.isPinned(slot)) return false;
    await this.discard(this.index.nameOf(slot));
    return true;
  }

  async dropObject(bucket: string, key: string): Promise<void> {
    this.assertOpen();
    const h = blockHashes(bucket, key, "");
    const kh = keyHex(h.keyHi, h.keyLo);
    if (this.scanning) this.droppedDuringScan.add(kh);
    // Every version of a key lives in one fan-out dir, so one listing finds them, indexed or not.
    for (const file of await listFanDir(join(this.blocksDir, fanDir(h.keyHi)))) {
      const n = file.startsWith(kh) ? parseBlockName(file) : undefined;
      if (n !== undefined) await this.discard(n);
    }
  }

  stats(): BlockCacheStats {
    return {
      usedBytes: this.index.usedBytes,
      quotaBytes: this.cfg.quotaBytes,
      blocks: this.index.blockCount,
      objects: this.index.objectCount,
      pinnedBlocks: this.index.pinnedBlocks,
      ...this.counters,
      scanning: this.scanning,
      // Key-hash set entries: ~16-char string plus Set slot.
      indexBytes: this.index.byteLength + this.pinStore.keyCount * 64,
    };
  }

  ready(): Promise<void> {
    return this.scanDone;
  }

  /** Resolves when the background eviction and TTL sweep running now (if any) have finished. */
  async whenIdle(): Promise<void> {
    await this.eviction.whenIdle();
  }

  async close(): Promise<void> {
    this.closed = true;
    const evictionStopped = this.eviction.stop();
    await this.scanDone;
    await Promise.allSettled([...this.putting.values(), ...this.joining.values(), evictionStopped]);
    this.files.dropAll();
  }

  // ---- writing ----

  /**
   * Temp file, then rename into place, with no fsync: this is a cache of immutable data
   * that the origin still holds. After a crash a renamed file is either whole or fails its
   * CRC on the first get (a counted miss, refetched); an fsync per block would cost a
   * device flush (milliseconds) on every fill and buy nothing a CRC does not already.
   */
  private async write(id: BlockId, data: Uint8Array, h: BlockHashes): Promise<void> {
    const header = encodeHeader(id, data, this.blockSizeBytes);
    const fileBytes = header.length + data.length;
    // Until the scan ends the bytes already on disk are unknown, and so is the room left.
    if (this.scanning) {
      await this.scanDone;
      if (this.index.find(h.verHi, h.verLo, id.index) !== NONE) return;
    }
    await this.eviction.reserve(fileBytes, id);
    const tmp = join(this.tmpDir, `${h.stem}-${randomBytes(6).toString("hex")}`);
    try {
      await writeBlockFile(tmp, header, data);
      const pinned = await this.recordPins(id, h);
      const name: BlockName = { ...h, index: id.index, fileBytes, writtenSec: Math.floor(this.cfg.now() / 1000) };
      await this.renameIntoPlace(tmp, name);
      // A block just written is likely read next (a cold read's following requests): its header is known.
      this.headers.set(this.pathOf(name), { bytes: header, headerLength: header.length, dataLength: data.length, chunkBytes: chunkBytesFor(this.blockSizeBytes) });
      const slot = this.index.find(h.verHi, h.verLo, id.index);
      if (slot !== NONE && !sameFile(this.index.nameOf(slot), name)) await this.discard(this.index.nameOf(slot));
      this.index.add(name, pinned, true);
    } catch (err) {
      this.counters.writeFailures++;
      const leftover = await removeFile(tmp);
      if (leftover !== undefined) this.cfg.logger.error("cannot remove temp file", { path: tmp, err: String(leftover) });
      if (errnoCode(err) === "ENOSPC") this.space.invalidate();
      this.cfg.logger.warn("block write failed", { bucket: id.bucket, key: id.key, index: id.index, code: errnoCode(err) });
      throw err instanceof CacheFaultError ? err : new CacheFaultError(`cannot write block: ${id.bucket}/${id.key} #${id.index}`, { cause: err });
    } finally {
      this.space.release(fileBytes);
    }
    this.eviction.startEviction();
  }

  /**
   * Assembles the version's verified blocks into a whole-object file, then drops the blocks.
   * Keeps the oldest block's write time, so a TTL counts from when the data was fetched.
   */
  private async writeWhole(object: CachedObject, h: BlockHashes): Promise<string | undefined> {
    if (this.scanning) await this.scanDone;
    const id: BlockId = { bucket: object.bucket, key: object.key, etag: object.etag, index: WHOLE_OBJECT_INDEX };
    const blocks = Math.ceil(object.size / this.blockSizeBytes);
    const data = Buffer.allocUnsafe(object.size);
    let writtenSec = Math.floor(this.cfg.now() / 1000);
    for (let i = 0; i < blocks; i++) {
      const slot = this.index.find(h.verHi, h.verLo, i);
      if (slot === NONE) return undefined;
      writtenSec = Math.min(writtenSec, this.index.nameOf(slot).writtenSec);
      const lease = await this.lease({ ...id, index: i });
      if (lease === undefined) return undefined;
      const expected = Math.min(this.blockSizeBytes, object.size - i * this.blockSizeBytes);
      const length = lease.data.length;
      if (length === expected) data.set(lease.data, i * this.blockSizeBytes);
      lease.release();
      if (length !== expected) return undefined;
    }
    return this.writeWholeData(object, h, data, writtenSec, true);
  }

  async putWhole(object: CachedObject, data: Uint8Array): Promise<void> {
    this.assertOpen();
    if (data.length !== object.size) throw new RangeError(`whole object of ${object.size} bytes given ${data.length}`);
    if (!this.wholeFiles || !fitsWholeFile(object, this.blockSizeBytes)) return this.putBlocks(object, data);
    const h = this.hashesOf({ ...object, index: WHOLE_OBJECT_INDEX });
    if (this.index.find(h.verHi, h.verLo, WHOLE_OBJECT_INDEX) !== NONE) return;
    const inFlight = namePrefix(h.stem, WHOLE_OBJECT_INDEX);
    let writing = this.joining.get(inFlight);
    if (writing === undefined) {
      writing = (async () => {
        if (this.scanning) await this.scanDone;
        return this.index.find(h.verHi, h.verLo, WHOLE_OBJECT_INDEX) === NONE ? this.writeWholeData(object, h, data, Math.floor(this.cfg.now() / 1000), false) : undefined;
      })().finally(() => this.joining.delete(inFlight));
      this.joining.set(inFlight, writing);
    }
    // Not written (no room without evicting, no xattrs after all): blocks, as put() stores them.
    if ((await writing) === undefined && this.index.find(h.verHi, h.verLo, WHOLE_OBJECT_INDEX) === NONE) await this.putBlocks(object, data);
  }

  private async putBlocks(object: CachedObject, data: Uint8Array): Promise<void> {
    for (let i = 0; i * this.blockSizeBytes < Math.max(1, object.size); i++) await this.put({ ...object, index: i }, data.subarray(i * this.blockSizeBytes, (i + 1) * this.blockSizeBytes));
  }

  /**
   * Writes `data`, all of a version, as its whole-object file, then drops its blocks; held
   * (for a passthrough open) or not. Undefined, nothing changed, when it cannot.
   */
  private async writeWholeData(object: CachedObject, h: BlockHashes, data: Uint8Array, writtenSec: number, hold: boolean): Promise<string | undefined> {
    const id: BlockId = { bucket: object.bucket, key: object.key, etag: object.etag, index: WHOLE_OBJECT_INDEX };
    const blocks = Math.ceil(object.size / this.blockSizeBytes);
    const header = encodeHeader(id, data, this.blockSizeBytes);
    const name: BlockName = { ...h, index: WHOLE_OBJECT_INDEX, fileBytes: object.size, writtenSec };
    try {
      await this.eviction.reserve(object.size, id);
    } catch {
      return undefined; // no room: the blocks serve as before
    }
    const tmp = join(this.tmpDir, `${h.stem}-${randomBytes(6).toString("hex")}`);
    try {
      await writeWholeFile(tmp, header, data);
      const pinned = await this.recordPins(id, h);
      await this.renameIntoPlace(tmp, name);
      this.headers.set(this.pathOf(name), { bytes: header, headerLength: header.length, dataLength: object.size, chunkBytes: chunkBytesFor(this.blockSizeBytes) });
      const slot = this.index.add(name, pinned, true);
      if (hold) this.index.hold(slot);
    } catch (err) {
      const leftover = await removeFile(tmp);
      if (leftover !== undefined) this.cfg.logger.error("cannot remove temp file", { path: tmp, err: String(leftover) });
      const code = errnoCode(err);
      if (code === "ENOSPC") this.space.invalidate();
      // A filesystem without user xattrs: blocks only from now on, said once.
      if (code === "EOPNOTSUPP" || code === "ENOTSUP") this.wholeFiles = false;
      this.cfg.logger.warn("whole-object file not written; its blocks stay", { bucket: object.bucket, key: object.key, code });
      return undefined;
    } finally {
      this.space.release(object.size);
    }
    for (let i = 0; i < blocks; i++) {
      const slot = this.index.find(h.verHi, h.verLo, i);
      if (slot !== NONE) await this.discard(this.index.nameOf(slot));
    }
    this.eviction.startEviction();
    return this.pathOf(name);
  }

  private async renameIntoPlace(tmp: string, name: BlockName): Promise<void> {
    const path = this.pathOf(name);
    const fan = fanDir(name.keyHi);
    // A file renamed over this path is another inode: a descriptor of the old one must not linger.
    this.files.drop(path);
    // A fresh cache would otherwise pay a failed rename for nearly every early block (4096 fan dirs).
    if (!this.fanDirsMade.has(fan)) await this.makeFanDir(fan);
    try {
      await rename(tmp, path);
    } catch (err) {
      if (errnoCode(err) !== "ENOENT") throw err;
      await this.makeFanDir(fan);
      await rename(tmp, path);
    }
  }

  private async makeFanDir(fan: string): Promise<void> {
    await mkdir(join(this.blocksDir, fan), { recursive: true });
    this.fanDirsMade.add(fan);
  }

  /** Pins are by key prefix; records this key under every pin that covers it. */
  private async recordPins(id: BlockId, h: BlockHashes): Promise<boolean> {
    return this.pinStore.covers(id.bucket, id.key) && (await this.pinStore.record(id.bucket, id.key, keyHex(h.keyHi, h.keyLo)));
  }

  // ---- files and index entries ----

  private pathOf(n: BlockName): string {
    return `${this.blocksDir}/${fanDir(n.keyHi)}/${blockName(n)}`;
  }

  /** Removes the index entry for exactly this file, if it is the indexed one; true if it was. */
  private forget(n: BlockName): boolean {
    const slot = this.index.find(n.verHi, n.verLo, n.index);
    if (slot === NONE || !sameFile(this.index.nameOf(slot), n)) return false;
    this.index.remove(slot);
    return true;
  }

  /** Drops a block file and its index entry. */
  private async discard(n: BlockName): Promise<void> {
    this.forget(n);
    await this.unlinkCounted(n);
  }

  /** Unlinks a file whose bytes have left the index, counting them as on disk until gone. */
  private async unlinkCounted(n: BlockName): Promise<void> {
    this.files.drop(this.pathOf(n));
    this.headers.delete(this.pathOf(n));
    const err = await this.space.unlinking(n.fileBytes, () => removeFile(this.pathOf(n)));
    if (err !== undefined) this.cfg.logger.error("cannot remove block file", { path: this.pathOf(n), err: String(err) });
  }

  /** During the scan: a block not indexed yet is found by listing its fan-out dir. */
  private async findOnDisk(h: BlockHashes, index: number): Promise<BlockName | undefined> {
    const names = await listFanDir(join(this.blocksDir, fanDir(h.keyHi)));
    const block = namePrefix(h.stem, index);
    const whole = namePrefix(h.stem, WHOLE_OBJECT_INDEX);
    const file = names.find((f) => f.startsWith(block)) ?? names.find((f) => f.startsWith(whole));
    return file === undefined ? undefined : parseBlockName(file);
  }

  private miss(): undefined {
    this.counters.misses++;
    return undefined;
  }

  private assertOpen(): void {
    if (this.closed) throw new CacheFaultError(`cache is closed: ${this.cfg.dir}`);
  }

  private async scan(): Promise<void> {
    const started = performance.now();
    await scanBlocks({
      blocksDir: this.blocksDir,
      isClosed: () => this.closed,
      logger: this.cfg.logger,
      onName: (name, file) => {
        // Too big for this block size (a cache cut with a larger one): never valid here, so removed.
        if (name.index !== WHOLE_OBJECT_INDEX && name.fileBytes > this.blockSizeBytes + MAX_HEADER_BYTES) return false;
        if (this.droppedDuringScan.size > 0 && this.droppedDuringScan.has(file.slice(0, 16))) return true;
        const before = this.index.blockCount;
        const slot = this.index.add(name, this.pinStore.size > 0 && this.pinStore.hasKey(file.slice(0, 16)), false);
        // Indexed already (by a put or get during the scan): this file is an older copy unless it is the same one.
        return this.index.blockCount > before || sameFile(this.index.nameOf(slot), name);
      },
      onEstimate: (files) => {
        const perObject = this.index.objectCount > 0 ? this.index.blockCount / this.index.objectCount : 1;
        this.index.reserve(files, Math.ceil(files / perObject));
      },
    });
    this.scanning = false;
    this.droppedDuringScan.clear();
    this.cfg.logger.info("block cache scan done", { blocks: this.index.blockCount, bytes: this.index.usedBytes, ms: Math.round(performance.now() - started) });
    this.eviction.startEviction();
  }
}
