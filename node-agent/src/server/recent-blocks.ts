// Pieces of blocks for the POSIX view and ranged GETs, which ask for a few hundred KiB at a
// time. A block already in the cache is read piece by piece (the cache reads and checks
// only the chunks a piece spans); a block that must come from the origin streams in, each
// piece lent once it has arrived. A block this node would not keep (a pool's) is filled
// whole and held, as a verified lease, so the requests that follow for the rest of it do
// not fetch it again. Invariants: a held block was verified when
// leased and is immutable until released; it is released only when no copy out of it is in
// progress (users = 0) and it has left the LRU; at most `maxBlocks` are held, bounding memory.
import type { BlockLease } from "../cache/block-cache.ts";
import type { ObjectInfo } from "../origin/object-origin.ts";
import type { ObjectReader } from "../read/object-reader.ts";

interface Held {
  key: string;
  lease: BlockLease;
  users: number;
  /** Still in the LRU (may be handed to new readers). */
  listed: boolean;
}

interface Loading {
  promise: Promise<Held>;
  joined: { count: number };
}

export class RecentBlocks {
  private readonly reader: ObjectReader;
  private readonly maxBlocks: number;
  private readonly held = new Map<string, Held>();
  /** Loads in flight, so concurrent kernel requests for one block make one read. */
  private readonly loading = new Map<string, Loading>();

  constructor(options: { reader: ObjectReader; maxBlocks: number }) {
    this.reader = options.reader;
    this.maxBlocks = options.maxBlocks;
  }

  /**
   * Copies bytes [position, position + length) of `info` (within its size) into `into`
   * and returns how many were copied.
   */
  async copy(info: ObjectInfo, position: number, length: number, into: Buffer): Promise<number> {
    let written = 0;
    while (written < length) {
      const piece = await this.lend(info, position + written, Math.min(length - written, this.reader.blockSizeBytes - ((position + written) % this.reader.blockSizeBytes)));
      into.set(piece.data, written);
      written += piece.data.length;
      piece.release();
    }
    return written;
  }

  /**
   * Bytes [position, position + length) of one block of `info`, lent without a copy (a socket
   * writes straight from them): release() once they are no longer needed.
   */
  async lend(info: ObjectInfo, position: number, length: number): Promise<BlockLease> {
    const bs = this.reader.blockSizeBytes;
    const index = Math.floor(position / bs);
    const from = position - index * bs;
    const key = `${info.bucket}\n${info.key}\n${info.etag}\n${index}`;
    if (!this.held.has(key) && !this.loading.has(key)) {
      // A cached block is read piece by piece; one not cached streams in from the origin, and
      // each piece is lent as soon as it has arrived. Only a block this node would not keep
      // (a pool's) is read whole and held here.
      const piece = this.reader.holdsBlock(info, index) ? await this.reader.piece(info, index, from, from + length) : await this.reader.streamPiece(info, index, from, from + length);
      if (piece?.data.length === length) return piece;
      if (piece) {
        piece.release();
        // A block shorter than its place in the object says: never pad, fail the read.
        throw new RangeError(`block ${index} of ${info.bucket}/${info.key} is short`);
      }
    }
    const block = await this.acquire(info, index, key);
    if (from + length > block.lease.data.length) {
      this.unhold(block);
      throw new RangeError(`block ${index} of ${info.bucket}/${info.key} is short`);
    }
    let held = true;
    return {
      data: block.lease.data.subarray(from, from + length),
      release: () => {
        if (held) this.unhold(block);
        held = false;
      },
    };
  }

  /** Releases every block not being copied from right now (the rest go when their copy ends). */
  clear(): void {
    for (const h of [...this.held.values()]) this.unlist(h);
  }

  private async acquire(info: ObjectInfo, index: number, key: string): Promise<Held> {
    const found = this.held.get(key);
    if (found !== undefined) {
      this.held.delete(key);
      this.held.set(key, found); // most recently used last
      found.users++;
      return found;
    }
    let load = this.loading.get(key);
    if (load === undefined) {
      const joined = { count: 0 };
      // Everyone who joined before the block arrived holds it from that moment: none can
      // see it released between its arrival and their copy.
      const promise = this.load(info, index).then(
        (lease) => {
          this.loading.delete(key);
          const h: Held = { key, lease, users: joined.count, listed: true };
          this.held.set(key, h);
          for (const old of this.held.values()) {
            if (this.held.size <= this.maxBlocks) break;
            this.unlist(old);
          }
          return h;
        },
        (error: unknown) => {
          this.loading.delete(key);
          throw error;
        },
      );
      load = { promise, joined };
      this.loading.set(key, load);
    }
    load.joined.count++;
    return load.promise;
  }

  /** One whole block through the reader's read path, so a sequential reader still gets read-ahead. */
  private async load(info: ObjectInfo, index: number): Promise<BlockLease> {
    const offset = index * this.reader.blockSizeBytes;
    const chunks = this.reader.read(info, offset, Math.min(this.reader.blockSizeBytes, info.size - offset), { wholeBlocks: true });
    const first = await chunks.next();
    if (first.done) throw new RangeError(`no block ${index} in ${info.bucket}/${info.key}`);
    try {
      // Running the generator to its end is what starts the read-ahead.
      await chunks.next();
    } catch (error) {
      first.value.release();
      throw error;
    }
    return first.value;
  }

  private unhold(h: Held): void {
    h.users--;
    if (!h.listed && h.users === 0) h.lease.release();
  }

  private unlist(h: Held): void {
    if (!h.listed) return;
    h.listed = false;
    if (this.held.get(h.key) === h) this.held.delete(h.key);
    if (h.users === 0) h.lease.release();
  }
}
