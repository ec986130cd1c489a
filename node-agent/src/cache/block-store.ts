// The cache directory's files and their index entries: where a file lives, landing a written
// temp file under its name, finding a file the start-up scan has not indexed yet, and
// dropping a file with its entry (its bytes count as on disk until the unlink is done). The
// block cache, its eviction and its whole-object files all go through here for paths and
// index entries.
import { randomBytes } from "node:crypto";
import { mkdir, rename } from "node:fs/promises";
import { join } from "node:path";
import { type BlockHashes, blockName, type BlockName, BLOCKS_DIR, fanDir, namePrefix, parseBlockName, TMP_DIR, WHOLE_OBJECT_INDEX } from "./block-format.ts";
import { errnoCode, removeFile } from "./block-files.ts";
import { BlockIndex } from "./block-index.ts";
import { HeaderMemo } from "./block-reads.ts";
import { listFanDir } from "./cache-dir.ts";
import type { CacheConfig } from "./cache-options.ts";
import { CacheSpace } from "./cache-space.ts";
import { OpenFiles } from "./open-files.ts";

export const NONE = -1;
/** Block files kept open for warm reads (well under the usual 1024-descriptor soft limit). */
const OPEN_FILES = 256;
/** Headers kept for range reads: 4096 blocks of 4 MiB is a 16 GiB working set, for ~2 MB. */
const HEADER_MEMO_ENTRIES = 4096;
/** Block files up to this size are read without a thread-pool hop (see OpenFiles): small objects' blocks. */
const SYNC_READ_MAX_BYTES = 256 * 1024;
/** How stale the statfs-derived free-space bound may get. */
const STATFS_INTERVAL_MS = 1000;

/** The same file: names match in identity, and size and write time tell copies apart. */
export function sameFile(a: BlockName, b: BlockName): boolean {
  return a.fileBytes === b.fileBytes && a.writtenSec === b.writtenSec;
}

export class BlockStore {
  readonly blocksDir: string;
  readonly tmpDir: string;
  readonly index = new BlockIndex();
  readonly files = new OpenFiles({ maxOpen: OPEN_FILES, syncReadMaxBytes: SYNC_READ_MAX_BYTES });
  /** Checked headers of block files read in pieces (~0.5 KiB each for 4 MiB blocks). */
  readonly headers = new HeaderMemo(HEADER_MEMO_ENTRIES);
  readonly space: CacheSpace;
  private readonly logger: CacheConfig["logger"];
  /** Fan directories this process made or found made: renames into them need no mkdir first. */
  private readonly fanDirsMade = new Set<string>();

  constructor(cfg: CacheConfig) {
    this.blocksDir = join(cfg.dir, BLOCKS_DIR);
    this.tmpDir = join(this.blocksDir, TMP_DIR);
    this.logger = cfg.logger;
    this.space = new CacheSpace({ dir: this.blocksDir, quotaBytes: cfg.quotaBytes, minFreeRatio: cfg.minFreeRatio, statfsIntervalMs: STATFS_INTERVAL_MS, now: cfg.now, indexedBytes: () => this.index.usedBytes });
  }

  pathOf(n: BlockName): string {
    return `${this.blocksDir}/${fanDir(n.keyHi)}/${blockName(n)}`;
  }

  /** A fresh temp file path for a file of this version. */
  tempPath(h: BlockHashes): string {
    return join(this.tmpDir, `${h.stem}-${randomBytes(6).toString("hex")}`);
  }

  /** Removes a temp file a failed write left; a failure to is logged, not thrown. */
  async removeTemp(tmp: string): Promise<void> {
    const leftover = await removeFile(tmp);
    if (leftover !== undefined) this.logger.error("cannot remove temp file", { path: tmp, err: String(leftover) });
  }

  /** The indexed file holding block `index` of a version: its block file, else the version's whole-object file. */
  indexed(h: BlockHashes, index: number): BlockName | undefined {
    let slot = this.index.find(h.verHi, h.verLo, index);
    if (slot === NONE) slot = this.index.find(h.verHi, h.verLo, WHOLE_OBJECT_INDEX);
    return slot === NONE ? undefined : this.index.nameOf(slot);
  }

  /** Whether this file is held (a whole-object file open for passthrough): it expires only once released. */
  held(n: BlockName): boolean {
    const slot = this.index.find(n.verHi, n.verLo, n.index);
    return slot !== NONE && this.index.isHeld(slot);
  }

  async renameIntoPlace(tmp: string, name: BlockName): Promise<void> {
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

  /** Removes the index entry for exactly this file, if it is the indexed one; true if it was. */
  forget(n: BlockName): boolean {
    const slot = this.index.find(n.verHi, n.verLo, n.index);
    if (slot === NONE || !sameFile(this.index.nameOf(slot), n)) return false;
    this.index.remove(slot);
    return true;
  }

  /** Drops a file and its index entry. */
  async discard(n: BlockName): Promise<void> {
    this.forget(n);
    await this.unlinkCounted(n);
  }

  /** Unlinks a file whose bytes have left the index, counting them as on disk until gone. */
  async unlinkCounted(n: BlockName): Promise<void> {
    const path = this.pathOf(n);
    this.files.drop(path);
    this.headers.delete(path);
    const err = await this.space.unlinking(n.fileBytes, () => removeFile(path));
    if (err !== undefined) this.logger.error("cannot remove block file", { path, err: String(err) });
  }

  /** During the scan: a block not indexed yet is found by listing its fan-out dir. */
  async findOnDisk(h: BlockHashes, index: number): Promise<BlockName | undefined> {
    const names = await listFanDir(join(this.blocksDir, fanDir(h.keyHi)));
    const block = namePrefix(h.stem, index);
    const whole = namePrefix(h.stem, WHOLE_OBJECT_INDEX);
    const file = names.find((f) => f.startsWith(block)) ?? names.find((f) => f.startsWith(whole));
    return file === undefined ? undefined : parseBlockName(file);
  }
}
