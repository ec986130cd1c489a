// Drops the kernel's page cache (and dentries/inodes) so a "cold" or "NVMe-warm" read is not
// served from RAM. Needs root and a writable /proc/sys/vm (containers often refuse): the
// caller records whether it worked and says so in the output instead of failing the run.
import { openSync, writeSync, closeSync } from "node:fs";
import { execFileSync } from "node:child_process";

/** Syncs, then writes 3 to /proc/sys/vm/drop_caches. True when the kernel took it. */
export function dropPageCache(): boolean {
  try {
    // Dirty pages cannot be dropped; flush them first so the drop is complete.
    execFileSync("sync", { stdio: "ignore", timeout: 60_000 });
  } catch {
    // No `sync` binary: the drop below still evicts all clean pages.
  }
  try {
    const fd = openSync("/proc/sys/vm/drop_caches", "w");
    try {
      writeSync(fd, "3\n");
    } finally {
      closeSync(fd);
    }
    return true;
  } catch {
    // Not root, or /proc/sys is read-only here: the caller reports "page cache not dropped".
    return false;
  }
}
