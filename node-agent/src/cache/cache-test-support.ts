// Shared helpers for the cache's unit tests: real temp dirs, a recording logger, and a way
// to find the file a block was stored in (to corrupt it on purpose).
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BlockId } from "./block-cache.ts";
import { BLOCKS_DIR, blockHashes, fanDir, namePrefix } from "./block-format.ts";
import type { CacheLogger } from "./cache-options.ts";
import { DiskBlockCache, type DiskBlockCacheOptions } from "./disk-block-cache.ts";

export interface LogLine {
  level: "info" | "warn" | "error";
  msg: string;
  fields: Record<string, unknown>;
}

export function recordingLogger(): CacheLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine["level"]) => (msg: string, fields: Record<string, unknown> = {}) => {
    lines.push({ level, msg, fields });
  };
  return { lines, info: at("info"), warn: at("warn"), error: at("error") };
}

/** A fresh temp dir per test; `cleanup` removes all of them. */
export function tempDirs(): { make(): Promise<string>; cleanup(): Promise<void> } {
  const made: string[] = [];
  return {
    async make() {
      const d = await mkdtemp(join(tmpdir(), "ferry-cache-"));
      made.push(d);
      return d;
    },
    async cleanup() {
      await Promise.all(made.splice(0).map((d) => rm(d, { recursive: true, force: true })));
    },
  };
}

export function blockId(key: string, index = 0, etag = "etag-1", bucket = "datasets"): BlockId {
  return { bucket, key, etag, index };
}

export function bytes(n: number): Buffer {
  return randomBytes(n);
}

/** The path of the stored file of a block (found by listing its fan-out dir), or undefined. */
export async function blockFile(dir: string, id: BlockId): Promise<string | undefined> {
  const h = blockHashes(id.bucket, id.key, id.etag);
  const fan = join(dir, BLOCKS_DIR, fanDir(h.keyHi));
  const names = await readdir(fan).catch(() => [] as string[]);
  const f = names.find((n) => n.startsWith(namePrefix(h.stem, id.index)));
  return f === undefined ? undefined : join(fan, f);
}

/** Every block file under the cache dir. */
export async function allBlockFiles(dir: string): Promise<string[]> {
  const root = join(dir, BLOCKS_DIR);
  const out: string[] = [];
  for (const d of await readdir(root)) {
    if (d === "tmp") continue;
    for (const f of await readdir(join(root, d))) out.push(join(root, d, f));
  }
  return out;
}

/**
 * Opens caches with `defaults` under the options each call adds, waiting for each start-up
 * scan unless told not to; `closeAll` (for afterEach) closes every one opened since.
 */
export function cacheOpener(defaults: Omit<DiskBlockCacheOptions, "dir">): {
  cacheIn(dir: string, extra?: Partial<DiskBlockCacheOptions>, waitForScan?: boolean): Promise<DiskBlockCache>;
  closeAll(): Promise<void>;
} {
  const opened: DiskBlockCache[] = [];
  return {
    async cacheIn(dir, extra = {}, waitForScan = true) {
      const c = await DiskBlockCache.open({ ...defaults, ...extra, dir });
      opened.push(c);
      if (waitForScan) await c.ready();
      return c;
    },
    async closeAll() {
      await Promise.all(opened.splice(0).map((c) => c.close()));
    },
  };
}
