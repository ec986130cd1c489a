// The cache directory itself: creating and probing it at open (so a bad dir is one clear
// line from open(), not a later failed put), sweeping temp files left by a dead process,
// and listing one fan-out dir.
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CacheFaultError } from "./block-cache.ts";
import { BLOCKS_DIR, TMP_DIR } from "./block-format.ts";
import { errnoCode } from "./block-files.ts";
import type { CacheLogger } from "./cache-options.ts";

/** Creates `<dir>/blocks-vN/tmp` (N: the block format version) and proves it writable; throws CacheFaultError naming the dir and errno. */
export async function prepareCacheDir(dir: string): Promise<void> {
  const tmpDir = join(dir, BLOCKS_DIR, TMP_DIR);
  try {
    await mkdir(dir, { recursive: true });
    // One level at a time: a recursive mkdir reports a read-only filesystem as ENOENT.
    for (const d of [join(dir, BLOCKS_DIR), tmpDir]) {
      await mkdir(d).catch((err: unknown) => {
        if (errnoCode(err) !== "EEXIST") throw err;
      });
    }
    // Root ignores permission bits, and mkdir of existing dirs succeeds on a read-only mount: only a real write tells.
    const probe = join(tmpDir, `probe-${process.pid}`);
    await writeFile(probe, "");
    await rm(probe);
  } catch (err) {
    const code = errnoCode(err);
    const what =
      code === "ENOTDIR" || code === "EEXIST"
        ? "cache dir is not a directory"
        : code === "EACCES" || code === "EPERM" || code === "EROFS"
          ? "cache dir is not writable"
          : "cannot use cache dir";
    throw new CacheFaultError(`${what}: ${dir}${code === undefined ? "" : ` (${code})`}`, { cause: err });
  }
}

/** Removes every temp file: one agent owns the dir, so any found at open is from a dead process. */
export async function sweepTempFiles(tmpDir: string, logger: CacheLogger): Promise<void> {
  const names = await readdir(tmpDir);
  await Promise.all(names.map((n) => rm(join(tmpDir, n), { force: true, recursive: true })));
  if (names.length > 0) logger.info("stale temp files removed", { count: names.length, dir: tmpDir });
}

/**
 * Deletes block dirs of other format versions (`blocks-v1` after an upgrade to v2): their
 * blocks can never be read again, only take disk space. Runs in the background (a big old
 * cache takes minutes to delete); a failure is logged and retried at the next start.
 */
export async function removeOtherFormats(dir: string, logger: CacheLogger): Promise<void> {
  const old = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^blocks-v\d+$/.test(n) && n !== BLOCKS_DIR);
  for (const name of old) {
    const started = performance.now();
    try {
      await rm(join(dir, name), { recursive: true, force: true });
      logger.info("blocks of an older format removed", { dir: join(dir, name), ms: Math.round(performance.now() - started) });
    } catch (err) {
      logger.warn("cannot remove blocks of an older format", { dir: join(dir, name), code: errnoCode(err) });
    }
  }
}

/** File names in one fan-out dir ([] if it does not exist yet); a listing fault is a CacheFaultError. */
export async function listFanDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return [];
    throw new CacheFaultError(`cannot list blocks: ${dir}`, { cause: err });
  }
}
