// The disk-space ledger of the block cache: the bytes it may hold (the quota, or less when
// the filesystem must keep its minimum free), and the bytes it holds or will: indexed blocks,
// room reserved by writes in flight, and files being unlinked (still on disk until the unlink
// returns). Invariant: a reservation succeeds only if every counted byte plus it fits the limit,
// checked and taken in one tick, so concurrent writes can never together overshoot it. Which
// blocks to evict to make room is the cache's decision, not this ledger's.
import { FreeSpaceBound } from "./free-space.ts";

export interface CacheSpaceOptions {
  /** The filesystem to keep free space on. */
  dir: string;
  quotaBytes: number;
  minFreeRatio: number;
  /** How stale the statfs-derived free-space bound may get. */
  statfsIntervalMs: number;
  now: () => number;
  /** Bytes of the blocks in the index. */
  indexedBytes: () => number;
}

export class CacheSpace {
  private readonly options: CacheSpaceOptions;
  private readonly freeSpace: FreeSpaceBound;
  private reservedBytes = 0;
  private unlinkingBytes = 0;
  /** Writes waiting for room that in-flight writes or unlinks may free. */
  private readonly waiters: Array<() => void> = [];

  constructor(options: CacheSpaceOptions) {
    this.options = options;
    this.freeSpace = new FreeSpaceBound({ dir: options.dir, minFreeRatio: options.minFreeRatio, intervalMs: options.statfsIntervalMs, now: options.now });
  }

  /** Bytes on disk now or soon: indexed, reserved by writes in flight, and being unlinked. */
  diskBytes(): number {
    return this.options.indexedBytes() + this.reservedBytes + this.unlinkingBytes;
  }

  /** Indexed bytes plus reservations: what eviction brings down (bytes being unlinked are already on their way out). */
  indexedAndReservedBytes(): number {
    return this.options.indexedBytes() + this.reservedBytes;
  }

  /** Most bytes the cache may hold: the quota, or less to keep the filesystem's minimum free. */
  limitBytes(): number {
    return Math.min(this.options.quotaBytes, this.freeSpace.bytes);
  }

  /** Re-reads free space if the last check is older than the interval. */
  refresh(): Promise<void> {
    return this.freeSpace.refresh(() => this.diskBytes());
  }

  /** After ENOSPC: the next refresh checks the filesystem again. */
  invalidate(): void {
    this.freeSpace.invalidate();
  }

  /** Takes `bytes` of room if they fit now; false if not. */
  tryReserve(bytes: number): boolean {
    if (this.diskBytes() + bytes > this.limitBytes()) return false;
    this.reservedBytes += bytes;
    return true;
  }

  /** Gives back a reservation once its write has landed in the index or failed. */
  release(bytes: number): void {
    this.reservedBytes -= bytes;
    this.changed();
  }

  /** Counts `bytes` as on disk while `unlink` runs (they leave the index before the file goes). */
  async unlinking<T>(bytes: number, unlink: () => Promise<T>): Promise<T> {
    this.unlinkingBytes += bytes;
    try {
      return await unlink();
    } finally {
      this.unlinkingBytes -= bytes;
      this.changed();
    }
  }

  /** True when no write or unlink in flight could free room for a waiting write. */
  get settled(): boolean {
    return this.reservedBytes === 0 && this.unlinkingBytes === 0;
  }

  /** Resolves at the next release or finished unlink. */
  whenChanged(): Promise<void> {
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private changed(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }
}
