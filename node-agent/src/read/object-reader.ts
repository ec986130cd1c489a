// The read path: a byte range of one object version, assembled from blocks. Each block
// comes from the local cache, else from the origin (or the owner peer in a pool); a block
// from the origin streams: the caller gets each part once it has arrived, while the cache
// write happens behind it. Concurrent misses for a block make one origin request; large
// reads keep several blocks in flight; sequential readers get read-ahead; whole-object
// reads are checked against the source checksum the replicator recorded (end-to-end
// lineage), and their last bytes wait for that check. The fills themselves, and their
// pooled memory, are origin-fills.ts's.
import { crc32c } from "@node-rs/crc32";
import { lineageFromMetadata } from "../../../s3/lineage.ts";
import { CacheFaultError, type BlockCache, type CachedObject, type BlockFileLocation, type BlockId, type BlockLease } from "../cache/block-cache.ts";
import type { Logger } from "../log.ts";
import type { ArrivingBytes } from "../origin/arriving-bytes.ts";
import type { ObjectInfo, ObjectOrigin } from "../origin/object-origin.ts";
import type { BlockPlacement } from "./block-placement.ts";
import { OriginFills, type Fill } from "./origin-fills.ts";

export { LineageMismatchError } from "./origin-fills.ts";

export interface ObjectReaderOptions {
  cache: BlockCache;
  origin: ObjectOrigin;
  logger: Logger;
  /** Origin fills running at once, across all readers. Default 16. */
  fillConcurrency?: number;
  /** Blocks one read keeps in flight ahead of the one being sent. Default 4. */
  windowBlocks?: number;
  /** Blocks fetched ahead of a sequential reader. Default 2. */
  readAheadBlocks?: number;
  /** Which filled blocks to keep (a pool keeps its share plus bounded near copies); default: all. */
  placement?: BlockPlacement;
  /** Store a fill that is a whole object as a whole-object file at once (see OriginFillsOptions). */
  wholeObjectFiles?: boolean;
}

export interface ReaderStats {
  bytesFromCache: number;
  bytesFromOrigin: number;
  blockHits: number;
  blockMisses: number;
  coalescedMisses: number;
  readAheadBlocks: number;
  cacheFaults: number;
  verifiedObjects: number;
  lineageMismatches: number;
}

export class ObjectReader {
  readonly stats: ReaderStats = { bytesFromCache: 0, bytesFromOrigin: 0, blockHits: 0, blockMisses: 0, coalescedMisses: 0, readAheadBlocks: 0, cacheFaults: 0, verifiedObjects: 0, lineageMismatches: 0 };
  private readonly cache: BlockCache;
  private readonly logger: Logger;
  /** Blocks coming from the origin: one request each, lent as they arrive (origin-fills.ts). */
  private readonly fills: OriginFills;
  private readonly windowBlocks: number;
  private readonly readAheadBlocks: number;
  private readonly placement: BlockPlacement | undefined;
  /** Where the last read of each object version ended, to spot sequential readers. */
  private readonly lastEnd = new Map<string, number>();

  constructor(options: ObjectReaderOptions) {
    this.cache = options.cache;
    this.logger = options.logger;
    this.fills = new OriginFills({ cache: options.cache, origin: options.origin, logger: options.logger, stats: this.stats, concurrency: options.fillConcurrency ?? 16, placement: options.placement, wholeObjects: options.wholeObjectFiles });
    this.windowBlocks = Math.max(1, options.windowBlocks ?? 4);
    this.readAheadBlocks = Math.max(0, options.readAheadBlocks ?? 2);
    this.placement = options.placement;
  }

  /** Counts a read answered from a verified in-memory copy (hot-objects.ts) as the cache hit it is. */
  countMemoryHit(bytes: number): void {
    this.stats.blockHits++;
    this.stats.bytesFromCache += bytes;
  }

  get blockSizeBytes(): number {
    return this.cache.blockSizeBytes;
  }

  blockCount(info: ObjectInfo): number {
    return Math.max(1, Math.ceil(info.size / this.blockSizeBytes));
  }

  /** True when every block of this version is in the local cache (index only: no disk I/O, no checksum). */
  holdsWhole(info: ObjectInfo): boolean {
    for (let i = 0, n = this.blockCount(info); i < n; i++) if (!this.holdsBlock(info, i)) return false;
    return true;
  }

  /** True when block `index` of this version is in the local cache (index only). */
  holdsBlock(info: ObjectInfo, index: number): boolean {
    return this.cache.has(this.blockId(info, index));
  }

  /** Where block `index` of this version sits in the local cache, if its header is in memory (see BlockCache.locate). */
  blockFile(info: ObjectInfo, index: number): BlockFileLocation | undefined {
    return this.cache.locate(this.blockId(info, index));
  }

  /** A file holding exactly this version's bytes in the local cache, made from its cached blocks if need be, held until releaseWholeFile (see BlockCache.holdWholeFile). */
  holdWholeFile(info: ObjectInfo): Promise<string | undefined> {
    return this.cache.holdWholeFile(this.cachedObject(info));
  }

  releaseWholeFile(info: ObjectInfo): void {
    this.cache.releaseWholeFile(this.cachedObject(info));
  }

  private cachedObject(info: ObjectInfo): CachedObject {
    return { bucket: info.bucket, key: info.key, etag: info.etag, size: info.size };
  }

  private blockId(info: ObjectInfo, index: number): BlockId {
    return { bucket: info.bucket, key: info.key, etag: info.etag, index };
  }

  /**
   * One block: local cache, else one coalesced origin fill. Either way a lease: the caller
   * releases it once done with the bytes (for a socket, when the write completed), since
   * both cache hits and fills lend reusable memory.
   */
  async block(info: ObjectInfo, index: number): Promise<BlockLease> {
    const id = this.blockId(info, index);
    const cached = await this.fromCache(id, () => this.cache.lease(id));
    if (cached) return cached;
    return this.fills.landed(info, index) ?? this.fills.whole(this.fills.fill(info, index));
  }

  /**
   * One block from the local cache only, never the origin: undefined when the cache does
   * not hold it (a pool peer asked with only-if-cached, and the block may have been evicted
   * since its index said it was there).
   */
  cachedBlock(info: ObjectInfo, index: number): Promise<BlockLease | undefined> {
    const id = this.blockId(info, index);
    return this.fromCache(id, () => this.cache.lease(id));
  }

  /**
   * Bytes [from, to) of block `index`, for a block not in the cache, as soon as they have
   * arrived from the origin (a fill starts if none runs): a cold READ waits for its own
   * 128 KiB, not the whole block. The piece holding a checked object's last byte waits for
   * that check, so no whole object is ever served unchecked. Undefined when this node would
   * not keep the block (a pool's "pass" placement): the caller reads it whole and holds it.
   */
  async streamPiece(info: ObjectInfo, index: number, from: number, to: number): Promise<BlockLease | undefined> {
    const versionKey = `${info.bucket}\n${info.key}\n${info.etag}`;
    const bs = this.blockSizeBytes;
    // A reader that goes on from where it stopped (or starts at the front) gets read-ahead.
    const sequential = index * bs + from === 0 || this.lastEnd.get(versionKey) === index * bs + from;
    this.rememberEnd(versionKey, index * bs + to);
    const landed = this.fills.landed(info, index, from, to);
    if (landed) return landed;
    let fill = this.fills.joined(info, index);
    if (!fill) {
      if (this.placement?.placeOf(this.blockId(info, index)) === "pass") return undefined;
      fill = this.fills.fill(info, index);
      if (sequential) this.readAhead(info, index + 1);
    }
    return this.fills.piece(fill, info, index, from, to);
  }

  /**
   * Bytes [from, to) of block `index` (offsets within the block). From a cached block only
   * the chunks the range spans are read and checked; a block not cached is filled whole, as
   * block() does, and the range lent out of it.
   */
  async piece(info: ObjectInfo, index: number, from: number, to: number): Promise<BlockLease> {
    const id = this.blockId(info, index);
    // So that a sequential reader's next whole block, wherever it comes from, gets read-ahead.
    this.rememberEnd(`${info.bucket}\n${info.key}\n${info.etag}`, index * this.blockSizeBytes + to);
    const cached = this.cache.has(id) ? await this.fromCache(id, () => this.cache.leaseRange(id, from, to)) : undefined;
    if (cached) return cached;
    const block = await this.block(info, index);
    if (from === 0 && to >= block.data.length) return block;
    return { data: block.data.subarray(from, to), release: () => block.release() };
  }

  /** A counted cache hit, or undefined on a miss and on a cache fault (counted and logged: a failing disk must not fail reads). */
  private async fromCache(id: BlockId, load: () => Promise<BlockLease | undefined>): Promise<BlockLease | undefined> {
    try {
      const cached = await load();
      if (cached) {
        this.stats.blockHits++;
        this.stats.bytesFromCache += cached.data.length;
        this.placement?.touchNear(id);
      }
      return cached;
    } catch (error) {
      if (!(error instanceof CacheFaultError)) throw error;
      this.stats.cacheFaults++;
      this.logger.warn("cache read fault", { bucket: id.bucket, key: id.key, index: id.index, error: error.message });
      return undefined;
    }
  }

  /**
   * A first block that came with the object's metadata (one request for both): checked and
   * stored like any fill, so the read that follows finds it. Failures only cost that saving.
   */
  landFirstBlock(info: ObjectInfo, first: ArrivingBytes): void {
    this.fills.landFirstBlock(info, first);
  }

  /**
   * Streams bytes [offset, offset + length) of the version `info` describes, as leases:
   * the consumer releases each once its bytes are no longer needed (for a socket, when the
   * write has completed). Leases the consumer never received are released here.
   */
  async *read(info: ObjectInfo, offset: number, length: number, options: { wholeBlocks?: boolean } = {}): AsyncGenerator<BlockLease> {
    if (length <= 0) return;
    const bs = this.blockSizeBytes;
    const first = Math.floor(offset / bs);
    const last = Math.floor((offset + length - 1) / bs);
    const versionKey = `${info.bucket}\n${info.key}\n${info.etag}`;
    const sequential = this.lastEnd.get(versionKey) === offset && offset > 0;
    this.rememberEnd(versionKey, offset + length);
    // Only an object with a source checksum is checked end to end: a second CRC pass over every block costs real throughput.
    const whole = offset === 0 && length === info.size && last > 0 && lineageFromMetadata(info.metadata).crc32c !== undefined;
    let crc = 0;
    const inFlight = new Map<number, Promise<BlockLease>>();
    // Blocks not cached stream from the origin: their bytes go out as they arrive. This read
    // holds each one's memory from launch until it is done with it.
    const streaming = new Map<number, { fill: Fill; release: () => void }>();
    // The first and last blocks may be wanted in part: only that part is read from the cache.
    const startIn = (i: number) => (i === first ? offset - i * bs : 0);
    const endIn = (i: number) => (i === last ? offset + length - i * bs : Math.min(bs, info.size - i * bs));
    const fetchOne = (i: number) => (startIn(i) > 0 || endIn(i) < Math.min(bs, info.size - i * bs) ? this.piece(info, i, startIn(i), endIn(i)) : this.block(info, i));
    const launch = (i: number) => {
      if (i > last || inFlight.has(i) || streaming.has(i)) return;
      if (!options.wholeBlocks && !this.cache.has(this.blockId(info, i)) && !this.fills.hasLanded(info, i)) {
        const fill = this.fills.fill(info, i);
        streaming.set(i, { fill, release: this.fills.hold(fill) });
        return;
      }
      const p = fetchOne(i);
      p.catch(() => undefined); // awaited below; this only keeps an early failure from being "unhandled"
      inFlight.set(i, p);
    };
    try {
      for (let i = first; i <= last; i++) {
        for (let j = i; j < i + this.windowBlocks; j++) launch(j);
        const stream = streaming.get(i);
        if (stream) {
          const { fill } = stream;
          const bytes = await fill.bytes;
          for (let at = startIn(i); at < endIn(i); ) {
            let data = await bytes.next(at, endIn(i));
            const ends = i === last && at + data.length === endIn(i);
            // The object's last bytes wait for its check: a mismatch fails the read before it completes.
            if (ends && fill.checksEnd && offset + length === info.size) data = (await fill.landed).subarray(at, endIn(i));
            if (whole) crc = crc32c(Buffer.from(data.buffer, data.byteOffset, data.length), crc);
            if (whole && ends) this.fills.verifyWhole(info, crc);
            at += data.length;
            yield { data, release: this.fills.hold(fill) };
          }
          streaming.delete(i);
          stream.release();
          continue;
        }
        const block = await (inFlight.get(i) ?? fetchOne(i));
        inFlight.delete(i);
        const data = block.data;
        // A whole-object read takes every cached block whole, so `whole` never meets a piece of one.
        if (whole) crc = crc32c(Buffer.from(data.buffer, data.byteOffset, data.length), crc);
        if (whole && i === last) this.fills.verifyWhole(info, crc);
        yield block;
      }
    } finally {
      // A consumer that stopped early (client gone, error) leaves prefetched blocks behind.
      for (const p of inFlight.values()) p.then((b) => b.release(), () => undefined);
      for (const stream of streaming.values()) stream.release();
    }
    if (sequential || offset === 0) this.readAhead(info, last + 1);
  }

  private rememberEnd(versionKey: string, end: number): void {
    this.lastEnd.delete(versionKey);
    this.lastEnd.set(versionKey, end);
    if (this.lastEnd.size > 4096) {
      const oldest = this.lastEnd.keys().next().value;
      if (oldest !== undefined) this.lastEnd.delete(oldest);
    }
  }

  private readAhead(info: ObjectInfo, from: number): void {
    const count = this.blockCount(info);
    for (let i = from; i < Math.min(count, from + this.readAheadBlocks); i++) {
      // A block this node would not keep is not worth fetching before it is asked for.
      if (this.placement?.placeOf(this.blockId(info, i)) === "pass") continue;
      if (this.cache.has(this.blockId(info, i)) || this.fills.busy(info, i)) continue;
      this.stats.readAheadBlocks++;
      this.block(info, i).then((b) => b.release(), () => undefined); // best effort: a real read retries and reports
    }
  }
}
