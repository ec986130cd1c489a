// Making room in the block cache: a put reserves its bytes first, evicting the least recently
// used unpinned blocks if it must; background eviction runs from the high watermark down to
// the low one; a timer re-checks free space (other writers can shrink it without any put)
// and sweeps blocks past their TTL. An evicted block leaves the index before its file is
// unlinked, and its bytes count as on disk until the unlink is done (CacheSpace), so the
// quota is never exceeded. No slot number is kept across an await.
import { CacheFaultError, type BlockId } from "./block-cache.ts";
import type { BlockName } from "./block-format.ts";
import type { BlockIndex } from "./block-index.ts";
import type { CacheConfig } from "./cache-options.ts";
import type { CacheSpace } from "./cache-space.ts";

const NONE = -1;
/** How often free space is re-checked (and expired blocks swept) without any put. */
const MAINTENANCE_MS = 10_000;
/** Unlinks in flight at once during eviction, so eviction never crowds reads out of libuv's thread pool. */
const UNLINK_CONCURRENCY = 8;

/** What eviction needs from the cache it makes room in. */
export interface EvictionHost {
  readonly cfg: CacheConfig;
  readonly index: BlockIndex;
  readonly space: CacheSpace;
  readonly counters: { evictedBlocks: number; expiredBlocks: number; writeFailures: number };
  /** Unlinks a file whose bytes have left the index, counting them as on disk until gone. */
  unlinkCounted(n: BlockName): Promise<void>;
  /** Removes the index entry for exactly this file, if it is the indexed one; true if it was. */
  forget(n: BlockName): boolean;
  isClosed(): boolean;
}

export class CacheEviction {
  private readonly host: EvictionHost;
  private evicting: Promise<void> | undefined;
  private sweeping: Promise<void> | undefined;
  private maintaining: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(host: EvictionHost) {
    this.host = host;
  }

  /** Starts the maintenance timer (more often with a short TTL, so expired blocks go in time). */
  startTimer(): void {
    const ttl = this.host.cfg.ttlSeconds;
    const everyMs = ttl === undefined ? MAINTENANCE_MS : Math.min(MAINTENANCE_MS, Math.max(1000, (ttl * 1000) / 4));
    this.timer = setInterval(() => this.maintain(), everyMs);
    this.timer.unref();
  }

  /**
   * Reserves room for a file of `bytes`, evicting unpinned blocks if needed; throws if it
   * cannot (the ledger, CacheSpace, takes each reservation in the tick its check succeeds).
   */
  async reserve(bytes: number, id: BlockId): Promise<void> {
    const { space, index } = this.host;
    await space.refresh();
    for (;;) {
      if (space.tryReserve(bytes)) return;
      if (index.oldest() !== NONE) {
        await this.evict(() => space.limitBytes() - bytes);
        if (space.tryReserve(bytes)) return;
      }
      // Nothing left to evict now: wait for in-flight writes (evictable once done) or unlinks, unless there are none.
      if (space.settled) break;
      await space.whenChanged();
    }
    this.host.counters.writeFailures++;
    throw new CacheFaultError(`cache full (quota or minimum free space reached, nothing evictable): ${this.host.cfg.dir} for ${id.bucket}/${id.key} #${id.index}`);
  }

  /** Starts background eviction down to the low watermark if above the high one. */
  startEviction(): void {
    const { space, cfg } = this.host;
    const limit = space.limitBytes();
    if (this.evicting !== undefined || this.host.isClosed() || space.diskBytes() <= limit * cfg.highWatermark) return;
    this.evicting = this.evict(() => space.limitBytes() * cfg.lowWatermark)
      .catch((err: unknown) => cfg.logger.error("eviction failed", { err: String(err) }))
      .finally(() => (this.evicting = undefined));
  }

  /** True when the block's TTL has passed (it is a miss, and the sweep removes it). */
  expired(n: BlockName): boolean {
    const ttl = this.host.cfg.ttlSeconds;
    return ttl !== undefined && n.writtenSec + ttl <= this.host.cfg.now() / 1000;
  }

  /** Resolves when the background eviction and TTL sweep running now (if any) have finished. */
  async whenIdle(): Promise<void> {
    await Promise.allSettled([this.evicting, this.sweeping]);
  }

  /** Stops the timer and waits for whatever still runs. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    await Promise.allSettled([this.evicting, this.sweeping, this.maintaining]);
  }

  /** Evicts least recently used unpinned blocks until disk bytes are at most target(). */
  private async evict(target: () => number): Promise<void> {
    const { space, index, counters } = this.host;
    const batch: Promise<void>[] = [];
    while (space.indexedAndReservedBytes() > target()) {
      const slot = index.oldest();
      if (slot === NONE) break;
      const name = index.nameOf(slot);
      index.remove(slot);
      counters.evictedBlocks++;
      batch.push(this.host.unlinkCounted(name));
      if (batch.length >= UNLINK_CONCURRENCY) await Promise.all(batch.splice(0));
    }
    await Promise.all(batch);
  }

  private maintain(): void {
    if (this.maintaining !== undefined || this.host.isClosed()) return;
    this.maintaining = this.host.space
      .refresh()
      .then(() => this.startEviction())
      .catch((err: unknown) => this.host.cfg.logger.error("free space check failed", { err: String(err) }))
      .finally(() => (this.maintaining = undefined));
    this.startSweep();
  }

  private startSweep(): void {
    const { cfg, index, counters } = this.host;
    const ttl = cfg.ttlSeconds;
    if (ttl === undefined || this.sweeping !== undefined || this.host.isClosed()) return;
    this.sweeping = (async () => {
      const cutoff = Math.floor(cfg.now() / 1000 - ttl);
      // A held file expires once released (a later sweep): its reader still needs it.
      const names = index.writtenBefore(cutoff + 1).filter((s) => !index.isHeld(s)).map((s) => index.nameOf(s));
      for (let i = 0; i < names.length; i += UNLINK_CONCURRENCY) {
        await Promise.all(
          names.slice(i, i + UNLINK_CONCURRENCY).map(async (n) => {
            if (!this.host.forget(n)) return;
            counters.expiredBlocks++;
            await this.host.unlinkCounted(n);
          }),
        );
      }
    })()
      .catch((err: unknown) => cfg.logger.error("ttl sweep failed", { err: String(err) }))
      .finally(() => (this.sweeping = undefined));
  }
}
