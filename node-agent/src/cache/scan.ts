// The start-up scan: lists the fan-out dirs of the blocks dir and hands each parsed file
// name to the index, reading no file contents (names carry identity hashes, index, size,
// write time). It yields to the event loop after every directory, so the cache serves while
// it runs. Files that are not block names, or sit in the wrong fan-out dir, are removed.
import { readdir } from "node:fs/promises";
import { TMP_DIR, fanDir, parseBlockName, type BlockName } from "./block-format.ts";
import { removeFile } from "./block-files.ts";
import type { CacheLogger } from "./cache-options.ts";

/** Directory listings in flight: enough to keep an NVMe queue busy, few enough to leave thread-pool room for reads. */
const SCAN_CONCURRENCY = 3;
const FAN_RE = /^[0-9a-f]{3}$/;

export interface ScanTarget {
  blocksDir: string;
  isClosed(): boolean;
  logger: CacheLogger;
  /** Indexes one block file; false if the file is a stale duplicate to remove. */
  onName(name: BlockName, file: string): boolean;
  /** Called once, early, with an estimate of the number of block files, so the index can grow once instead of doubling. */
  onEstimate(files: number): void;
}

/** Fan-out dirs listed before the total is estimated (of 4096). */
const ESTIMATE_AFTER_DIRS = 64;

export async function scanBlocks(t: ScanTarget): Promise<void> {
  let dirs: string[];
  try {
    dirs = await readdir(t.blocksDir);
  } catch (err) {
    // Nothing can be indexed; the cache still works for new blocks, and gets of old ones are misses.
    t.logger.error("block cache scan failed", { dir: t.blocksDir, err: String(err) });
    return;
  }
  const stray: string[] = [];
  for (const d of dirs) if (d !== TMP_DIR && !FAN_RE.test(d)) stray.push(`${t.blocksDir}/${d}`);
  const fans = dirs.filter((d) => FAN_RE.test(d));
  let next = 0;
  let listed = 0;
  let files = 0;
  const worker = async (): Promise<void> => {
    for (let d = fans[next++]; d !== undefined && !t.isClosed(); d = fans[next++]) {
      const dir = `${t.blocksDir}/${d}`;
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (err) {
        t.logger.error("cannot list block dir", { dir, err: String(err) });
        continue;
      }
      files += names.length;
      if (++listed === ESTIMATE_AFTER_DIRS && fans.length > 2 * ESTIMATE_AFTER_DIRS) t.onEstimate(Math.ceil((files / listed) * fans.length * 1.05));
      for (const file of names) {
        const name = parseBlockName(file);
        if (name === undefined || fanDir(name.keyHi) !== d || !t.onName(name, file)) stray.push(`${dir}/${file}`);
      }
    }
  };
  await Promise.all(Array.from({ length: SCAN_CONCURRENCY }, worker));
  for (const path of stray) {
    const err = await removeFile(path);
    if (err !== undefined) t.logger.warn("cannot remove stray file", { path, err: String(err) });
  }
  if (stray.length > 0) t.logger.info("stray files removed from block dir", { count: stray.length, dir: t.blocksDir });
}
