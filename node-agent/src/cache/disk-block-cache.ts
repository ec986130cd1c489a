// BlockCache on a local (NVMe) directory: one file per block, found by a path derived from
// its identity, indexed in memory by a start-up scan of file names that runs while the
// cache already serves. Invariants: a get returns verified bytes or undefined (corrupt,
// truncated, misplaced and expired files are misses, removed and counted) and throws only
// CacheFaultError for a real I/O fault; a put lands whole or not at all (temp + rename);
// bytes on disk never exceed the quota (puts reserve room first, evicting if needed);
// pinned blocks are never evicted; no slot number is kept across an await. Paths and index
// entries are block-store.ts's, making room cache-eviction.ts's, and versions kept as one
// file whole-objects.ts's.
import { join } from "node:path";
import { CacheFaultError, type BlockCache, type CachedObject, type BlockCacheStats, type BlockFileLocation, type BlockId, type BlockLease } from "./block-cache.ts";
import { type BlockHashes, blockHashes, type BlockName, chunkBytesFor, chunkCrcs, type DecodedBlock, encodeHeader, fanDir, keyHash, keyHex, MAX_HEADER_BYTES, namePrefix, parseBlockName, WHOLE_OBJECT_INDEX } from "./block-format.ts";
import { BufferPool } from "./buffer-pool.ts";
import { CacheEviction } from "./cache-eviction.ts";
import { errnoCode, writeBlockFile } from "./block-files.ts";
import { readBlockRange, readWholeBlock } from "./block-reads.ts";
import { BlockStore, NONE, sameFile } from "./block-store.ts";
import { listFanDir, prepareCacheDir, removeOtherFormats, sweepTempFiles } from "./cache-dir.ts";
import { cacheConfig, type CacheConfig, type DiskBlockCacheOptions } from "./cache-options.ts";
import { PinStore, type Pin } from "./pin-store.ts";
import { scanBlocks } from "./scan.ts";
import { readWholeRange } from "./whole-files.ts";
import { WholeObjects } from "./whole-objects.ts";

export type { DiskBlockCacheOptions, CacheLogger } from "./cache-options.ts";

/** Header bytes a pooled buffer has room for besides the CRC table (fixed fields plus a long key); a longer header gets a fresh buffer. */
const POOL_HEADER_ROOM_BYTES = 4096;
/** Pooled buffers kept while idle: enough for a few concurrent streaming reads with their windows. */
const POOL_MAX_IDLE = 32;
/** Object versions whose hashes are remembered (cleared whole when full: simple, and a refill is cheap). */
const RECENT_HASHES = 4096;

export class DiskBlockCache implements BlockCache {
  readonly blockSizeBytes: number;
  private readonly cfg: CacheConfig;
  /** Files on disk and their index entries. */
  private readonly store: BlockStore;
  private readonly index: BlockStore["index"];
  /** Whole-file buffers for lease(): block size plus room for a typical header. */
  private readonly pool: BufferPool;
  /** Recent versions' hashes: two SHA-256s per get otherwise, for every block of the same object. */
  private readonly recentHashes = new Map<string, BlockHashes>();
  private readonly pinStore: PinStore;
  private readonly counters = { hits: 0, misses: 0, corruptBlocks: 0, evictedBlocks: 0, expiredBlocks: 0, writeFailures: 0 };
  /** In-flight puts by block (name prefix): a second put of the same block joins the first. */
  private readonly putting = new Map<string, Promise<void>>();
  /** Key hashes dropped while the scan runs, so it does not index files it listed before they went. */
  private readonly droppedDuringScan = new Set<string>();
  private scanning = true;
  private closed = false;
  private scanDone: Promise<void> = Promise.resolve();
  /** Reservations, eviction between the watermarks, the free-space timer and the TTL sweep. */
  private readonly eviction: CacheEviction;
  private readonly wholeObjects: WholeObjects;

  private constructor(cfg: CacheConfig, pinStore: PinStore) {
    this.cfg = cfg;
    this.blockSizeBytes = cfg.blockSizeBytes;
    this.store = new BlockStore(cfg);
    this.index = this.store.index;
    this.pinStore = pinStore;
    this.pool = new BufferPool({ sizeBytes: cfg.blockSizeBytes + POOL_HEADER_ROOM_BYTES + 4 * Math.ceil(cfg.blockSizeBytes / chunkBytesFor(cfg.blockSizeBytes)), maxIdle: POOL_MAX_IDLE });
    const store = this.store;
    this.eviction = new CacheEviction({
      cfg,
      index: this.index,
      space: store.space,
      counters: this.counters,
      unlinkCounted: (n) => store.unlinkCounted(n),
      forget: (n) => store.forget(n),
      isClosed: () => this.closed,
    });
    this.wholeObjects = new WholeObjects({
      cfg,
      store,
      eviction: this.eviction,
      hashesOf: (id) => this.hashesOf(id),
      scanned: () => this.scanDone,
      recordPins: (id, h) => this.recordPins(id, h),
      lease: (id) => this.lease(id),
      put: (id, data) => this.put(id, data),
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
    await sweepTempFiles(cache.store.tmpDir, cfg.logger);
    void removeOtherFormats(cfg.dir, cfg.logger);
    await cache.store.space.refresh();
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
    const name = this.store.indexed(h, id.index) ?? (this.scanning ? await this.store.findOnDisk(h, id.index) : undefined);
    if (name === undefined) return this.miss();
    if (this.eviction.expired(name) && !this.store.held(name)) {
      this.counters.expiredBlocks++;
      await this.store.discard(name);
      return this.miss();
    }
    const path = this.store.pathOf(name);
    let decoded: DecodedBlock | undefined;
    try {
      // A name claiming more than any block can hold is not read (nor allocated for): it is corrupt.
      if (name.index === WHOLE_OBJECT_INDEX) decoded = await this.readFromWhole(path, name, id, range ?? { from: 0, to: this.blockSizeBytes }, into);
      else if (name.fileBytes > this.blockSizeBytes + MAX_HEADER_BYTES) decoded = { ok: false, defect: "length" };
      else if (range === undefined) decoded = await readWholeBlock(this.store.files, path, name, id, this.blockSizeBytes, into);
      else decoded = await readBlockRange(this.store.files, path, name, id, this.blockSizeBytes, range, into, this.store.headers);
    } catch (err) {
      throw new CacheFaultError(`cannot read block: ${path}`, { cause: err });
    }
    if (decoded === undefined) {
      this.store.forget(name);
      return this.miss();
    }
    if (!decoded.ok) {
      this.counters.corruptBlocks++;
      this.cfg.logger.warn("corrupt block dropped", { path, defect: decoded.defect, bucket: id.bucket, key: id.key, etag: id.etag, index: id.index });
      await this.store.discard(name);
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
    return readWholeRange(this.store.files, path, name.fileBytes, { ...id, index: WHOLE_OBJECT_INDEX }, this.blockSizeBytes, { from: at + range.from, to }, into, this.store.headers);
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
    if (this.store.indexed(h, id.index) !== undefined) return;
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
    const name = this.store.indexed(this.hashesOf(id), id.index);
    if (name === undefined || (this.eviction.expired(name) && !this.store.held(name))) return undefined;
    const path = this.store.pathOf(name);
    const header = this.store.headers.get(path);
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
    const name = this.store.indexed(this.hashesOf(id), id.index);
    return name !== undefined && (!this.eviction.expired(name) || this.store.held(name));
  }

  async holdWholeFile(object: CachedObject): Promise<string | undefined> {
    this.assertOpen();
    return this.wholeObjects.hold(object);
  }

  releaseWholeFile(object: CachedObject): void {
    this.wholeObjects.release(object);
  }

  async putWhole(object: CachedObject, data: Uint8Array): Promise<void> {
    this.assertOpen();
    return this.wholeObjects.put(object, data);
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
    await this.pinStore.recordCached({ bucket, prefix }, candidates.map((n) => ({ path: this.store.pathOf(n), keyHex: keyHex(n.keyHi, n.keyLo) })));
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
    await this.store.discard(this.index.nameOf(slot));
    return true;
  }

  async dropObject(bucket: string, key: string): Promise<void> {
    this.assertOpen();
    const h = blockHashes(bucket, key, "");
    const kh = keyHex(h.keyHi, h.keyLo);
    if (this.scanning) this.droppedDuringScan.add(kh);
    // Every version of a key lives in one fan-out dir, so one listing finds them, indexed or not.
    for (const file of await listFanDir(join(this.store.blocksDir, fanDir(h.keyHi)))) {
      const n = file.startsWith(kh) ? parseBlockName(file) : undefined;
      if (n !== undefined) await this.store.discard(n);
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
    await Promise.allSettled([...this.putting.values(), ...this.wholeObjects.inFlight(), evictionStopped]);
    this.store.files.dropAll();
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
    const tmp = this.store.tempPath(h);
    try {
      await writeBlockFile(tmp, header, data);
      const pinned = await this.recordPins(id, h);
      const name: BlockName = { ...h, index: id.index, fileBytes, writtenSec: Math.floor(this.cfg.now() / 1000) };
      await this.store.renameIntoPlace(tmp, name);
      // A block just written is likely read next (a cold read's following requests): its header is known.
      this.store.headers.set(this.store.pathOf(name), { bytes: header, headerLength: header.length, dataLength: data.length, chunkBytes: chunkBytesFor(this.blockSizeBytes) });
      const slot = this.index.find(h.verHi, h.verLo, id.index);
      if (slot !== NONE && !sameFile(this.index.nameOf(slot), name)) await this.store.discard(this.index.nameOf(slot));
      this.index.add(name, pinned, true);
    } catch (err) {
      this.counters.writeFailures++;
      await this.store.removeTemp(tmp);
      if (errnoCode(err) === "ENOSPC") this.store.space.invalidate();
      this.cfg.logger.warn("block write failed", { bucket: id.bucket, key: id.key, index: id.index, code: errnoCode(err) });
      throw err instanceof CacheFaultError ? err : new CacheFaultError(`cannot write block: ${id.bucket}/${id.key} #${id.index}`, { cause: err });
    } finally {
      this.store.space.release(fileBytes);
    }
    this.eviction.startEviction();
  }

  /** Pins are by key prefix; records this key under every pin that covers it. */
  private async recordPins(id: BlockId, h: BlockHashes): Promise<boolean> {
    return this.pinStore.covers(id.bucket, id.key) && (await this.pinStore.record(id.bucket, id.key, keyHex(h.keyHi, h.keyLo)));
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
      blocksDir: this.store.blocksDir,
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
