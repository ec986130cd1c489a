// The block cache's disk-space ledger on a real directory (statfs of the test machine's disk;
// the quota here is far below its free space, so the quota is the limit).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CacheSpace } from "./cache-space.ts";

const dir = mkdtempSync(join(tmpdir(), "ferry-cache-space-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ledger(indexed: { bytes: number }): CacheSpace {
  return new CacheSpace({ dir, quotaBytes: 1000, minFreeRatio: 0, statfsIntervalMs: 60_000, now: Date.now, indexedBytes: () => indexed.bytes });
}

describe("CacheSpace", () => {
  it("reserves only what fits beside the indexed bytes, and never lets reservations together overshoot", async () => {
    const indexed = { bytes: 600 };
    const space = ledger(indexed);
    await space.refresh();
    expect(space.limitBytes()).toBe(1000);
    expect(space.tryReserve(300)).toBe(true);
    expect(space.tryReserve(200)).toBe(false); // 600 + 300 + 200 > 1000
    expect(space.tryReserve(100)).toBe(true);
    expect(space.diskBytes()).toBe(1000);
    expect(space.settled).toBe(false);
    // A write lands: its bytes move from the reservation into the index.
    space.release(300);
    indexed.bytes += 300;
    expect(space.diskBytes()).toBe(1000);
    expect(space.indexedAndReservedBytes()).toBe(1000);
    space.release(100);
    expect(space.settled).toBe(true);
  });

  it("counts a file being unlinked as on disk until the unlink returns, then wakes a waiting write", async () => {
    const indexed = { bytes: 900 };
    const space = ledger(indexed);
    await space.refresh();
    let finishUnlink = (): void => undefined;
    indexed.bytes -= 500; // evicted: out of the index, its file not yet gone
    const unlinked = space.unlinking(500, () => new Promise<void>((resolve) => (finishUnlink = resolve)));
    expect(space.diskBytes()).toBe(900);
    expect(space.indexedAndReservedBytes()).toBe(400);
    expect(space.tryReserve(200)).toBe(false);
    expect(space.settled).toBe(false);
    const woken = space.whenChanged();
    finishUnlink();
    await unlinked;
    await woken;
    expect(space.tryReserve(200)).toBe(true);
  });
});
