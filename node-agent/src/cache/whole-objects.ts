// Object versions kept as one whole-object file (data from offset 0, header in an xattr; see
// block-format.ts) instead of blocks: assembled from a version's verified blocks when the
// mount wants to pass a file through, or written at once from a fill that is a whole object.
// Either replaces the version's blocks. A held file (open for passthrough) is never evicted
// nor expired until every hold is released.
import { crc32c } from "@node-rs/crc32";
import type { BlockCache, BlockId, CachedObject } from "./block-cache.ts";
import { type BlockHashes, type BlockName, encodeHeader, fitsWholeFile, headerFromCrcs, namePrefix, WHOLE_OBJECT_INDEX, wholeChunkBytesFor } from "./block-format.ts";
import { errnoCode } from "./block-files.ts";
import { type BlockStore, NONE } from "./block-store.ts";
import type { CacheEviction } from "./cache-eviction.ts";
import type { CacheConfig } from "./cache-options.ts";
import { wholeFilesSupported, writeWholeFile } from "./whole-files.ts";

/** What whole-object files need from the block cache they live in. */
export interface WholeObjectsHost {
  readonly cfg: CacheConfig;
  readonly store: BlockStore;
  readonly eviction: CacheEviction;
  hashesOf(id: BlockId): BlockHashes;
  /** Resolves once the start-up scan has indexed what is on disk. */
  scanned(): Promise<void>;
  /** Records the key under every pin that covers it; true if one does. */
  recordPins(id: BlockId, h: BlockHashes): Promise<boolean>;
  lease: BlockCache["lease"];
  put: BlockCache["put"];
}

/** A whole-object file's bytes as they are written, and its header once they all are. */
interface WholeSource {
  parts: Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
  header: () => Buffer;
}

/** A block of the version went missing or changed size while it was being assembled. */
class BlockGone extends Error {}

export class WholeObjects {
  private readonly host: WholeObjectsHost;
  /** Holds by version stem (see hold). */
  private readonly holds = new Map<string, number>();
  /** In-flight whole-object files by name prefix: a second writer joins the first. */
  private readonly writing = new Map<string, Promise<string | undefined>>();
  /** False once this machine or filesystem has shown it cannot keep whole-object files (no koffi, no xattrs). */
  private supported = wholeFilesSupported();

  constructor(host: WholeObjectsHost) {
    this.host = host;
  }

  private get blockSizeBytes(): number {
    return this.host.cfg.blockSizeBytes;
  }

  /** Writes still running (close() waits for them). */
  inFlight(): Array<Promise<unknown>> {
    return [...this.writing.values()];
  }

  /** See BlockCache.holdWholeFile. */
  async hold(object: CachedObject): Promise<string | undefined> {
    if (!this.supported || !fitsWholeFile(object, this.blockSizeBytes)) return undefined;
    const { index } = this.host.store;
    const h = this.host.hashesOf({ ...object, index: WHOLE_OBJECT_INDEX });
    if (index.find(h.verHi, h.verLo, WHOLE_OBJECT_INDEX) === NONE && (await this.joined(h, () => this.assemble(object, h))) === undefined) return undefined;
    // Written files are held from the moment they are indexed (their blocks go after): no await since.
    const slot = index.find(h.verHi, h.verLo, WHOLE_OBJECT_INDEX);
    if (slot === NONE) return undefined;
    index.hold(slot);
    this.holds.set(h.stem, (this.holds.get(h.stem) ?? 0) + 1);
    return this.host.store.pathOf(index.nameOf(slot));
  }

  /** Ends one hold: after the last, the file is evictable again, as just used. */
  release(object: CachedObject): void {
    const h = this.host.hashesOf({ ...object, index: WHOLE_OBJECT_INDEX });
    const left = (this.holds.get(h.stem) ?? 0) - 1;
    if (left > 0) return void this.holds.set(h.stem, left);
    this.holds.delete(h.stem);
    const slot = this.host.store.index.find(h.verHi, h.verLo, WHOLE_OBJECT_INDEX);
    if (slot !== NONE) this.host.store.index.unhold(slot);
    this.host.eviction.startEviction();
  }

  /** See BlockCache.putWhole: a whole-object file, or blocks where one cannot be kept. */
  async put(object: CachedObject, data: Uint8Array): Promise<void> {
    if (data.length !== object.size) throw new RangeError(`whole object of ${object.size} bytes given ${data.length}`);
    if (!this.supported || !fitsWholeFile(object, this.blockSizeBytes)) return this.putBlocks(object, data);
    const { index } = this.host.store;
    const h = this.host.hashesOf({ ...object, index: WHOLE_OBJECT_INDEX });
    if (index.find(h.verHi, h.verLo, WHOLE_OBJECT_INDEX) !== NONE) return;
    const written = await this.joined(h, async () => {
      await this.host.scanned();
      if (index.find(h.verHi, h.verLo, WHOLE_OBJECT_INDEX) !== NONE) return undefined;
      const header = encodeHeader({ ...object, index: WHOLE_OBJECT_INDEX }, data, this.blockSizeBytes);
      return this.write(object, h, { parts: [data], header: () => header }, Math.floor(this.host.cfg.now() / 1000), false);
    });
    // Not written (no room without evicting, no xattrs after all): blocks, as put() stores them.
    if (written === undefined && index.find(h.verHi, h.verLo, WHOLE_OBJECT_INDEX) === NONE) await this.putBlocks(object, data);
  }

  /** Runs `write` for this version unless one runs already, then joins that one. */
  private joined(h: BlockHashes, write: () => Promise<string | undefined>): Promise<string | undefined> {
    const key = namePrefix(h.stem, WHOLE_OBJECT_INDEX);
    let p = this.writing.get(key);
    if (p === undefined) {
      p = write().finally(() => this.writing.delete(key));
      this.writing.set(key, p);
    }
    return p;
  }

  private async putBlocks(object: CachedObject, data: Uint8Array): Promise<void> {
    const bs = this.blockSizeBytes;
    for (let i = 0; i * bs < Math.max(1, object.size); i++) await this.host.put({ ...object, index: i }, data.subarray(i * bs, (i + 1) * bs));
  }

  /**
   * Assembles the version's verified blocks into a whole-object file, held, then drops the
   * blocks. Streams one block at a time (a 1 GiB object never sits in memory), taking the
   * file's chunk CRCs as the blocks go by. Keeps the oldest block's write time, so a TTL
   * counts from when the data was fetched.
   */
  private async assemble(object: CachedObject, h: BlockHashes): Promise<string | undefined> {
    await this.host.scanned();
    const bs = this.blockSizeBytes;
    const { index } = this.host.store;
    const blocks = Math.ceil(object.size / bs);
    let writtenSec = Math.floor(this.host.cfg.now() / 1000);
    for (let i = 0; i < blocks; i++) {
      const slot = index.find(h.verHi, h.verLo, i);
      if (slot === NONE) return undefined;
      writtenSec = Math.min(writtenSec, index.nameOf(slot).writtenSec);
    }
    const fitted = wholeChunkBytesFor(object, bs);
    if (fitted === undefined) return undefined;
    const chunkBytes = fitted;
    const crcs = new Uint32Array(Math.ceil(object.size / chunkBytes));
    const lease = this.host.lease;
    async function* parts(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < blocks; i++) {
        const held = await lease({ bucket: object.bucket, key: object.key, etag: object.etag, index: i });
        if (held === undefined) throw new BlockGone();
        try {
          const data = Buffer.from(held.data.buffer, held.data.byteOffset, held.data.length);
          if (data.length !== Math.min(bs, object.size - i * bs)) throw new BlockGone();
          // Chunks divide the block size: block i's chunks are whole, from chunk i·bs/chunkBytes.
          const first = (i * bs) / chunkBytes;
          for (let c = 0; c * chunkBytes < data.length; c++) crcs[first + c] = crc32c(data.subarray(c * chunkBytes, (c + 1) * chunkBytes));
          yield data;
        } finally {
          held.release();
        }
      }
    }
    const id: BlockId = { bucket: object.bucket, key: object.key, etag: object.etag, index: WHOLE_OBJECT_INDEX };
    return this.write(object, h, { parts: parts(), header: () => headerFromCrcs(id, object.size, chunkBytes, bs, crcs) }, writtenSec, true);
  }

  /**
   * Writes `source`, all of a version, as its whole-object file, then drops its blocks; held
   * (for a passthrough open) or not. Undefined, nothing changed, when it cannot.
   */
  private async write(object: CachedObject, h: BlockHashes, source: WholeSource, writtenSec: number, hold: boolean): Promise<string | undefined> {
    const { store, eviction, cfg } = this.host;
    const id: BlockId = { bucket: object.bucket, key: object.key, etag: object.etag, index: WHOLE_OBJECT_INDEX };
    const name: BlockName = { ...h, index: WHOLE_OBJECT_INDEX, fileBytes: object.size, writtenSec };
    try {
      await eviction.reserve(object.size, id);
    } catch {
      return undefined; // no room: the blocks serve as before
    }
    const tmp = store.tempPath(h);
    try {
      let header: Buffer | undefined;
      await writeWholeFile(tmp, source.parts, () => (header = source.header()));
      if (header === undefined) throw new Error("whole-object file written without its header");
      const pinned = await this.host.recordPins(id, h);
      await store.renameIntoPlace(tmp, name);
      store.headers.set(store.pathOf(name), { bytes: header, headerLength: header.length, dataLength: object.size, chunkBytes: header.readUInt32LE(16) });
      const slot = store.index.add(name, pinned, true);
      if (hold) store.index.hold(slot);
    } catch (err) {
      await store.removeTemp(tmp);
      // Evicted or found bad while it was copied: the blocks that are left serve as before.
      if (err instanceof BlockGone) return undefined;
      const code = errnoCode(err);
      if (code === "ENOSPC") store.space.invalidate();
      // A filesystem without user xattrs: blocks only from now on, said once.
      if (code === "EOPNOTSUPP" || code === "ENOTSUP") this.supported = false;
      cfg.logger.warn("whole-object file not written; its blocks stay", { bucket: object.bucket, key: object.key, code });
      return undefined;
    } finally {
      store.space.release(object.size);
    }
    for (let i = 0; i < Math.ceil(object.size / this.blockSizeBytes); i++) {
      const slot = store.index.find(h.verHi, h.verLo, i);
      if (slot !== NONE) await store.discard(store.index.nameOf(slot));
    }
    eviction.startEviction();
    return store.pathOf(name);
  }
}
