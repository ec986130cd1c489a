// Files holding exactly one fully cached object version, handed to the kernel as FUSE
// passthrough backing files: reads of those files then go from the kernel straight to a
// plain file on the cache disk, never through this process nor through FUSE's page cache
// (which holds small pages: 256 MiB files read at 7.7 GB/s through it vs 16 GB/s from ext4's
// large folios, and 13–17 GB/s as passthrough; measured on this machine's 6.18 kernel).
// Made once per version, after the whole object is cached; until then opens read through
// FUSE. Two kinds:
// - the cache's own whole-object file (BlockCache.holdWholeFile: the blocks rewritten as
//   one file, data from offset 0), inside the cache's quota: no second copy. The cache never
//   evicts it while it backs a passthrough file (the kernel's reads of it bypass the
//   agent, so the cache's LRU cannot see them); together such files stay under a share of
//   the cache (`heldLimitBytes`), so fills always keep room.
// - where the cache cannot keep one (an object of about 3.5 GiB or more, no xattrs), a copy
//   in an unnamed (O_TMPFILE) file in the cache dir, so a crash leaves nothing behind; copies
//   stay under a budget outside the cache.
// Either kind unopened for ten minutes makes room for another, least recently opened first;
// one in use more recently is kept.
import { open } from "node:fs/promises";
import { fitsWholeFile } from "../cache/block-format.ts";
import type { Logger } from "../log.ts";
import type { ObjectInfo } from "../origin/object-origin.ts";
import type { ObjectReader } from "../read/object-reader.ts";
import { Semaphore } from "../read/singleflight.ts";

/**
 * Files made at once: each is a whole-file disk write (a copy, or the cache's whole-object
 * file assembled block by block), and a loader opening 32 files at once must not start 32.
 */
const MAKING_AT_ONCE = 4;
/** How long a copy must have gone unopened before another may take its room. */
const IDLE_BEFORE_DROP_MS = 10 * 60_000;

/** O_TMPFILE (with O_DIRECTORY, as Linux defines it) | O_RDWR. */
const O_TMPFILE_RDWR = 0o20200000 | 0o2;

export interface BackingRegistry {
  openBacking(fd: number): number;
  closeBacking(id: number): void;
}

export interface PassthroughStats {
  /** Files ready to pass through, and their bytes. */
  files: number;
  bytes: number;
  /** Of those, the cache's own whole-object files (the rest are copies under the budget). */
  cacheFiles: number;
  /** Opens answered as passthrough. */
  opens: number;
  copiesMade: number;
  copyFailures: number;
}

interface Backing {
  id: number;
  bytes: number;
  /** The cache's own whole-object file (held), or a copy under the budget. */
  kind: "cache" | "copy";
  info: ObjectInfo;
  opens: number;
  lastOpened: number;
}

export interface PassthroughOptions {
  /** Where copies live (unnamed): the cache dir. */
  dir: string;
  budgetBytes: number;
  /** Most bytes of the cache's whole-object files held as backings at once. */
  heldLimitBytes: number;
  /** Smaller objects read through FUSE's page cache, where a copy would not pay. */
  minBytes: number;
  reader: ObjectReader;
  registry: BackingRegistry;
  logger: Logger;
}

function versionKey(info: ObjectInfo): string {
  return `${info.bucket}\n${info.key}\n${info.etag}`;
}

export class PassthroughFiles {
  private readonly ready = new Map<string, Backing>();
  private readonly copying = new Map<string, Promise<void>>();
  /** Bytes of copies held by pin() (each until its unpin). */
  private pinnedBytes = 0;
  /** Bytes of ready copies plus copies in progress (the budget's use). */
  private reservedBytes = 0;
  /** Bytes of the cache's files held as backings, or being made (the held limit's use). */
  private heldBytes = 0;
  private readonly counters = { opens: 0, copiesMade: 0, copyFailures: 0 };
  private readonly making = new Semaphore(MAKING_AT_ONCE);
  private readonly options: PassthroughOptions;

  constructor(options: PassthroughOptions) {
    this.options = options;
  }

  /**
   * For an open of `info`: the backing id to pass through (counted as one open until
   * release), or undefined to read through FUSE this time. Starts a copy when the whole
   * version is cached and fits the budget.
   */
  acquire(info: ObjectInfo): number | undefined {
    const backing = this.ready.get(versionKey(info));
    if (backing) {
      backing.opens++;
      backing.lastOpened = Date.now();
      this.counters.opens++;
      return backing.id;
    }
    this.prepare(info);
    return undefined;
  }

  /**
   * Starts a copy of `info` if it has none, is large enough, wholly cached and fits the
   * budget, so that later opens pass through. "not-cached" is worth asking again once the
   * blocks of a read just answered have landed; the other refusals are not.
   */
  prepare(info: ObjectInfo): "copying" | "too-small" | "not-cached" | "no-room" {
    if (info.size < this.options.minBytes) return "too-small";
    const key = versionKey(info);
    if (this.ready.has(key) || this.copying.has(key)) return "copying";
    if (!this.options.reader.holdsWhole(info)) return "not-cached";
    this.copying.set(key, this.make(key, info, false));
    return "copying";
  }

  /** The making of `info`'s passthrough file, while it runs. */
  whenMade(info: ObjectInfo): Promise<void> | undefined {
    return this.copying.get(versionKey(info));
  }

  /**
   * A backing of `info` for as long as the caller holds it (until unpin): for files whose
   * opens are answered elsewhere, which cannot tell when they end (see session.ts). Made now
   * if the whole version is cached; else why not (as prepare() says), copies pinned holding
   * at most half the budget.
   */
  async pin(info: ObjectInfo): Promise<number | "not-cached" | "no-room"> {
    const key = versionKey(info);
    if (!this.ready.has(key)) {
      let copying = this.copying.get(key);
      if (!copying) {
        if (!this.options.reader.holdsWhole(info)) return "not-cached";
        copying = this.make(key, info, true);
        this.copying.set(key, copying);
      }
      await copying;
    }
    const backing = this.ready.get(key);
    if (!backing) return "no-room"; // no file could be made (counted and logged)
    backing.opens++;
    backing.lastOpened = Date.now();
    if (backing.kind === "copy") this.pinnedBytes += backing.bytes;
    return backing.id;
  }

  /** Ends a pin() that returned a backing id. */
  unpin(info: ObjectInfo): void {
    const backing = this.ready.get(versionKey(info));
    if (!backing || backing.opens <= 0) return;
    backing.opens--;
    if (backing.kind === "copy") this.pinnedBytes -= backing.bytes;
  }

  /** Ends one open acquire() answered with a backing id. */
  release(info: ObjectInfo): void {
    const backing = this.ready.get(versionKey(info));
    if (backing && backing.opens > 0) backing.opens--;
  }

  stats(): PassthroughStats {
    let bytes = 0;
    let cacheFiles = 0;
    for (const b of this.ready.values()) {
      bytes += b.bytes;
      if (b.kind === "cache") cacheFiles++;
    }
    return { files: this.ready.size, bytes, cacheFiles, ...this.counters };
  }

  /** Drops every copy (files still open keep reading theirs until closed). */
  close(): void {
    for (const [key, backing] of this.ready) this.drop(key, backing);
  }

  /**
   * Reserves `bytes` of the budget (copies) or of the held limit (the cache's files),
   * dropping backings of that kind nobody opened for IDLE_BEFORE_DROP_MS (least recently
   * opened first); false if it cannot fit. Backings in use more recently are kept: when a
   * data set is larger than the room, an epoch over it would otherwise drop and remake them
   * in a cycle, a whole-file disk write per file read.
   */
  private makeRoom(kind: Backing["kind"], bytes: number): boolean {
    const limit = kind === "copy" ? this.options.budgetBytes : this.options.heldLimitBytes;
    const used = () => (kind === "copy" ? this.reservedBytes : this.heldBytes);
    if (bytes > limit) return false;
    if (used() + bytes > limit) {
      const before = Date.now() - IDLE_BEFORE_DROP_MS;
      const idle = [...this.ready].filter(([, b]) => b.kind === kind && b.opens === 0 && b.lastOpened < before).sort((a, b) => a[1].lastOpened - b[1].lastOpened);
      for (const [key, backing] of idle) {
        if (used() + bytes <= limit) break;
        this.drop(key, backing);
      }
      if (used() + bytes > limit) return false;
    }
    if (kind === "copy") this.reservedBytes += bytes;
    else this.heldBytes += bytes;
    return true;
  }

  private drop(key: string, backing: Backing): void {
    this.ready.delete(key);
    this.options.registry.closeBacking(backing.id);
    if (backing.kind === "copy") this.reservedBytes -= backing.bytes;
    else {
      this.heldBytes -= backing.bytes;
      this.options.reader.releaseWholeFile(backing.info);
    }
  }

  /** Registers the cache's whole-object file of the version, else a copy if the budget has room (pinned copies at most half of it). */
  private async make(key: string, info: ObjectInfo, forPin: boolean): Promise<void> {
    const release = await this.making.acquire();
    try {
      if (fitsWholeFile(info, this.options.reader.blockSizeBytes) && this.makeRoom("cache", info.size)) {
        if (await this.useCacheFile(key, info)) return;
        this.heldBytes -= info.size;
      }
      if (forPin && this.pinnedBytes + info.size > this.options.budgetBytes / 2) return;
      if (this.makeRoom("copy", info.size)) await this.copy(key, info);
    } finally {
      release();
      this.copying.delete(key);
    }
  }

  /** Holds the cache's whole-object file of this version and registers it with the kernel; false if the cache keeps none. */
  private async useCacheFile(key: string, info: ObjectInfo): Promise<boolean> {
    let held = false;
    let file;
    try {
      const path = await this.options.reader.holdWholeFile(info);
      if (path === undefined) return false;
      held = true;
      file = await open(path, "r");
      const id = this.options.registry.openBacking(file.fd);
      this.ready.set(key, { id, bytes: info.size, kind: "cache", info, opens: 0, lastOpened: Date.now() });
      return true;
    } catch (error) {
      if (held) this.options.reader.releaseWholeFile(info);
      this.options.logger.debug("whole-object file not usable for passthrough", { bucket: info.bucket, key: info.key, error: error instanceof Error ? error.message : String(error) });
      return false;
    } finally {
      await file?.close().catch(() => undefined);
    }
  }

  /** Copies the version's verified blocks into an unnamed file and registers it with the kernel. */
  private async copy(key: string, info: ObjectInfo): Promise<void> {
    const started = performance.now();
    const file = await open(this.options.dir, O_TMPFILE_RDWR, 0o600).catch((error: unknown) => error as Error);
    try {
      if (file instanceof Error) throw file;
      let at = 0;
      for await (const lease of this.options.reader.read(info, 0, info.size)) {
        try {
          await file.write(lease.data, 0, lease.data.length, at);
          at += lease.data.length;
        } finally {
          lease.release();
        }
      }
      if (at !== info.size) throw new Error(`copied ${at} of ${info.size} bytes`);
      const id = this.options.registry.openBacking(file.fd);
      this.ready.set(key, { id, bytes: info.size, kind: "copy", info, opens: 0, lastOpened: Date.now() });
      this.counters.copiesMade++;
      this.options.logger.debug("passthrough copy ready", { bucket: info.bucket, key: info.key, bytes: info.size, ms: Math.round(performance.now() - started) });
    } catch (error) {
      this.reservedBytes -= info.size;
      this.counters.copyFailures++;
      this.options.logger.warn("passthrough copy failed; the file reads through FUSE", { bucket: info.bucket, key: info.key, error: error instanceof Error ? error.message : String(error) });
    } finally {
      if (!(file instanceof Error)) await file.close().catch(() => undefined);
    }
  }
}
