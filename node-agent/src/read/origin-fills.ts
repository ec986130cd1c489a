// Blocks coming from the origin into the cache, for the read path (ObjectReader): one
// origin request per block however many readers want it, bytes lent as they arrive, the
// whole block checked and written to the cache behind the readers, and the fill's pooled
// memory given back only when nobody holds it any more.
import { crc32c } from "@node-rs/crc32";
import { toBase64 } from "../../../s3/bytes.ts";
import { lineageFromMetadata } from "../../../s3/lineage.ts";
import type { BlockCache, BlockId, BlockLease } from "../cache/block-cache.ts";
import type { Logger } from "../log.ts";
import { ArrivingBytes } from "../origin/arriving-bytes.ts";
import type { ObjectInfo, ObjectOrigin } from "../origin/object-origin.ts";
import type { BlockPlacement } from "./block-placement.ts";
import { Semaphore } from "./singleflight.ts";

/** The bytes did not match the checksum recorded at the source: never cached. */
export class LineageMismatchError extends Error {
  override readonly name = "LineageMismatchError";
}

/** What fills count, in the reader's stats. */
export interface FillStats {
  bytesFromOrigin: number;
  blockMisses: number;
  coalescedMisses: number;
  verifiedObjects: number;
  lineageMismatches: number;
}

/**
 * A block on its way from the origin: its bytes as they arrive, and the whole block once it
 * has arrived, been checked (against the source checksum when it is the whole object) and
 * handed to the cache.
 */
export interface Fill {
  readonly bytes: Promise<ArrivingBytes>;
  landed: Promise<Uint8Array>;
  /** The block is a whole object with a source checksum: its last byte is served only once `landed` passed that check. */
  readonly checksEnd: boolean;
  /**
   * Who still uses the fill's memory: the fill itself until it is forgotten, its entry in
   * `landing` until the cache write ends, and every lease lent from it. At 0 the memory goes
   * back to its pool, so a holder is counted before it first awaits anything.
   */
  holders: number;
}

/** A landed block waiting for its cache write, and the fill it came from (whose memory it is). */
interface Landed {
  data: Uint8Array;
  fill: Fill;
}

export interface OriginFillsOptions {
  cache: BlockCache;
  origin: ObjectOrigin;
  logger: Logger;
  stats: FillStats;
  /** Origin requests running at once. */
  concurrency: number;
  placement?: BlockPlacement | undefined;
  /**
   * A fill that is a whole object is stored as a whole-object file at once (the mount passes
   * such files through): not written as a block first and rewritten when a lookup wants it.
   */
  wholeObjects?: boolean | undefined;
}

function toBytesBE(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value >>> 0);
  return out;
}

export class OriginFills {
  private readonly o: OriginFillsOptions;
  /** Blocks coming from the origin, by fill key: every reader of one joins its one request. */
  private readonly filling = new Map<string, Fill>();
  /**
   * Blocks fetched from the origin whose cache write has not finished yet. Without this, a
   * read (or read-ahead) arriving in that window misses both the fill (done) and the cache
   * (not yet written) and fetches the block again: measured 1.5× origin bytes on a cold
   * sequential read through the mount.
   */
  private readonly landing = new Map<string, Landed>();
  private readonly slots: Semaphore;

  constructor(options: OriginFillsOptions) {
    this.o = options;
    this.slots = new Semaphore(options.concurrency);
  }

  private get blockSizeBytes(): number {
    return this.o.cache.blockSizeBytes;
  }

  /** True while block `index` is coming from the origin or waiting for its cache write. */
  busy(info: ObjectInfo, index: number): boolean {
    const key = fillKey(info, index);
    return this.filling.has(key) || this.landing.has(key);
  }

  /** True while block `index` has arrived whole and its cache write runs. */
  hasLanded(info: ObjectInfo, index: number): boolean {
    return this.landing.has(fillKey(info, index));
  }

  /** Block `index` lent from its landing (fetched, cache write still running), counted as joined; undefined if it is not there. */
  landed(info: ObjectInfo, index: number, from = 0, to?: number): BlockLease | undefined {
    const landed = this.landing.get(fillKey(info, index));
    if (!landed) return undefined;
    this.o.stats.coalescedMisses++;
    return { data: to === undefined && from === 0 ? landed.data : landed.data.subarray(from, to), release: this.hold(landed.fill) };
  }

  /** The fill of this block in flight, if any, counted as joined. */
  joined(info: ObjectInfo, index: number): Fill | undefined {
    const found = this.filling.get(fillKey(info, index));
    if (found) this.o.stats.coalescedMisses++;
    return found;
  }

  /** The fill of this block in flight, or a new one: one origin request however many readers join. */
  fill(info: ObjectInfo, index: number): Fill {
    const found = this.joined(info, index);
    if (found) return found;
    this.o.stats.blockMisses++;
    const offset = index * this.blockSizeBytes;
    const length = Math.min(this.blockSizeBytes, info.size - offset);
    const { origin } = this.o;
    const bytes = this.slots.acquire().then((release) => {
      try {
        const arriving = origin.streamRange?.(info.bucket, info.key, info.etag, offset, length) ?? ArrivingBytes.from(length, origin.readRange(info.bucket, info.key, info.etag, offset, length));
        arriving.done.then(release, release);
        return arriving;
      } catch (error) {
        release();
        throw error;
      }
    });
    return this.track(info, index, bytes);
  }

  /** The whole block once the fill has landed (checked, handed to the cache). */
  whole(fill: Fill): Promise<BlockLease> {
    return this.lend(fill, () => fill.landed);
  }

  /**
   * Bytes [from, to) of the fill's block (offsets within the block) once they have arrived;
   * a piece reaching the end of an object checked at its source waits for that check.
   */
  piece(fill: Fill, info: ObjectInfo, index: number, from: number, to: number): Promise<BlockLease> {
    const blockStart = index * this.blockSizeBytes;
    if (fill.checksEnd && blockStart + to >= info.size) return this.lend(fill, async () => (await fill.landed).subarray(from, to));
    return this.lend(fill, async () => (await fill.bytes).slice(from, Math.min(to, info.size - blockStart)));
  }

  /** Counts one more holder of the fill's memory; the function given back ends that hold (once). */
  hold(fill: Fill): () => void {
    fill.holders++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      if (--fill.holders === 0) fill.bytes.then((arriving) => arriving.recycle(), () => undefined);
    };
  }

  /** A lease on bytes of the fill that `get` waits for: held from before the wait, given up if it fails. */
  private async lend(fill: Fill, get: () => Promise<Uint8Array>): Promise<BlockLease> {
    const release = this.hold(fill);
    try {
      return { data: await get(), release };
    } catch (error) {
      release();
      throw error;
    }
  }

  /**
   * A first block that came with the object's metadata (one request for both): checked and
   * stored like any fill, so the read that follows finds it. Failures only cost that saving.
   */
  landFirstBlock(info: ObjectInfo, first: ArrivingBytes): void {
    const key = fillKey(info, 0);
    if (this.landing.has(key) || this.filling.has(key) || this.o.cache.has(blockId(info, 0)) || first.length !== Math.min(this.blockSizeBytes, info.size)) {
      // Not kept, but the origin sent it all the same: `bytesBySource.origin` counts what came.
      first.done.then((data) => (this.o.stats.bytesFromOrigin += data.length), () => undefined).finally(() => first.recycle());
      return;
    }
    this.track(info, 0, Promise.resolve(first)).landed.catch((error: unknown) => {
      if (error instanceof LineageMismatchError) return; // logged as an error where it was found
      this.o.logger.warn("first block not kept", { bucket: info.bucket, key: info.key, error: error instanceof Error ? error.message : String(error) });
    });
  }

  /** Compares a whole object's CRC32C with the source's; throws LineageMismatchError. */
  verifyWhole(info: ObjectInfo, crc: number): void {
    const expected = lineageFromMetadata(info.metadata).crc32c;
    if (!expected) return;
    if (toBase64(toBytesBE(crc)) === expected) {
      this.o.stats.verifiedObjects++;
      return;
    }
    this.o.stats.lineageMismatches++;
    this.o.logger.error("object does not match its source checksum", { bucket: info.bucket, key: info.key, etag: info.etag, expectedCrc32c: expected });
    void this.o.cache.dropObject(info.bucket, info.key).catch(() => undefined);
    throw new LineageMismatchError(`${info.bucket}/${info.key} does not match the CRC32C recorded at its source`);
  }

  /** Registers a fill; once its bytes are all in, they are checked and stored (land), and the fill is forgotten. */
  private track(info: ObjectInfo, index: number, bytes: Promise<ArrivingBytes>): Fill {
    const key = fillKey(info, index);
    const fill: Fill = { bytes, landed: Promise.resolve(new Uint8Array(0)), checksEnd: index === 0 && info.size <= this.blockSizeBytes && lineageFromMetadata(info.metadata).crc32c !== undefined, holders: 0 };
    const ownHold = this.hold(fill);
    fill.landed = bytes.then((arriving) => arriving.done).then((data) => this.land(info, index, data, fill));
    this.filling.set(key, fill);
    // land() put the block in `landing` first: no moment in which a reader finds neither.
    const forget = () => {
      if (this.filling.get(key) === fill) this.filling.delete(key);
      ownHold();
    };
    fill.landed.then(forget, forget);
    bytes.catch(() => undefined); // failures reach the readers through `landed` and slice()
    return fill;
  }

  private land(info: ObjectInfo, index: number, data: Uint8Array, fill: Fill): Uint8Array {
    const { stats, placement, cache, logger } = this.o;
    stats.bytesFromOrigin += data.length;
    // Only an object with a source checksum has something to be checked against (the CRC was
    // computed for every whole-object fill and then dropped); `checksEnd` marks such a fill.
    if (fill.checksEnd) this.verifyWhole(info, crc32c(Buffer.from(data.buffer, data.byteOffset, data.length)));
    const id = blockId(info, index);
    const place = placement?.placeOf(id) ?? "own";
    if (place === "pass") return data;
    // The cache write reads `data` until it ends: the landing entry holds the memory till then.
    const key = fillKey(info, index);
    const release = this.hold(fill);
    this.landing.set(key, { data, fill });
    const whole = this.o.wholeObjects === true && index === 0 && data.length === info.size;
    (whole ? cache.putWhole({ bucket: info.bucket, key: info.key, etag: info.etag, size: info.size }, data) : cache.put(id, data))
      .then(() => {
        if (place !== "near") return;
        // Dropped near copies are best effort: a pinned one stays, a failed unlink is retried by eviction.
        for (const old of placement?.admitNear(id, data.length) ?? []) void cache.remove(old).catch(() => false);
      })
      .catch((error: unknown) => {
        logger.warn("cache write failed", { bucket: info.bucket, key: info.key, index, error: error instanceof Error ? error.message : String(error) });
      })
      .finally(() => {
        this.landing.delete(key);
        release();
      });
    return data;
  }
}

function fillKey(info: ObjectInfo, index: number): string {
  return `${info.bucket}\n${info.key}\n${info.etag}\n${index}`;
}

function blockId(info: ObjectInfo, index: number): BlockId {
  return { bucket: info.bucket, key: info.key, etag: info.etag, index };
}
