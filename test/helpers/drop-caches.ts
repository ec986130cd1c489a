// The kernel's page cache (and dentries, inodes) dropped for a test that must read from disk,
// or learn that this machine refuses (not root, or a read-only /proc/sys).
import { accessSync, constants, writeFileSync } from "node:fs";

export function canDropCaches(): boolean {
  try {
    accessSync("/proc/sys/vm/drop_caches", constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export function dropCaches(): void {
  writeFileSync("/proc/sys/vm/drop_caches", "3");
}
