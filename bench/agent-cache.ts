// Benchmark of the node agent's block cache (not a test; no assertions):
//   node --expose-gc bench/agent-cache.ts [--dir DIR] [--scan-blocks 200000] [--cold]
// Prints index bytes per block (1,000,000 synthetic entries, and after a real scan),
// time to the first get after open, full scan time (extrapolated to 1,000,000 blocks),
// get/put throughput for 4 MiB and 114 KiB blocks, and get throughput by block size.
// --cold drops the kernel's page/dentry caches before the scan (root only).
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { BlockId } from "../node-agent/src/cache/block-cache.ts";
import { BLOCKS_DIR, blockHashes, blockName, encodeHeader, fanDir } from "../node-agent/src/cache/block-format.ts";
import { BlockIndex } from "../node-agent/src/cache/block-index.ts";
import { DiskBlockCache } from "../node-agent/src/cache/disk-block-cache.ts";

const { values: args } = parseArgs({
  strict: false,
  options: {
    dir: { type: "string" },
    "scan-blocks": { type: "string", default: "200000" },
    cold: { type: "boolean", default: false },
  },
});
const MiB = 1024 * 1024;
const gc = (globalThis as { gc?: () => void }).gc;

function heapBytes(): number {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function row(label: string, value: string): void {
  console.log(`${label.padEnd(52)} ${value}`);
}

/** A realistic key: dataset/run/episode/file, ~50 characters. */
function keyOf(i: number): string {
  return `robots/run-${String(i % 97).padStart(3, "0")}/episode_${String(i).padStart(7, "0")}/traj.h5`;
}

export function syntheticIndexBytesPerBlock(n: number): number {
  const before = heapBytes();
  const ix = new BlockIndex();
  for (let i = 0; i < n; i++) {
    const h = blockHashes("datasets", keyOf(i >>> 1), "0123456789abcdef0123456789abcdef");
    ix.add({ ...h, index: i & 1, fileBytes: 4 * MiB + 100, writtenSec: 1_800_000_000 }, false, true);
  }
  const after = heapBytes();
  if (ix.blockCount !== n) throw new Error("index lost entries");
  return (after - before) / n;
}

/** Writes n small, valid block files straight into the layout (as a long-running agent would have left them). */
function populate(dir: string, n: number): BlockId[] {
  const ids: BlockId[] = [];
  const made = new Set<string>();
  const data = Buffer.alloc(16, 7);
  for (let i = 0; i < n; i++) {
    const id = { bucket: "datasets", key: keyOf(i), etag: "0123456789abcdef0123456789abcdef", index: 0 };
    const h = blockHashes(id.bucket, id.key, id.etag);
    const header = encodeHeader(id, data, 4 * MiB);
    const fan = join(dir, BLOCKS_DIR, fanDir(h.keyHi));
    if (!made.has(fan)) {
      mkdirSync(fan, { recursive: true });
      made.add(fan);
    }
    writeFileSync(join(fan, blockName({ ...h, index: 0, fileBytes: header.length + data.length, writtenSec: 1_800_000_000 })), Buffer.concat([header, data]));
    ids.push(id);
  }
  return ids;
}

export interface ScanResult {
  firstGetMs: number;
  hit: boolean;
  servedDuringScan: boolean;
  /** Full scan time scaled to 1,000,000 blocks. */
  per1MSeconds: number;
}

export async function scanBench(base: string, n: number): Promise<ScanResult> {
  const dir = join(base, "scan");
  const t0 = performance.now();
  const ids = populate(dir, n);
  row(`populate ${n} block files`, `${((performance.now() - t0) / 1000).toFixed(1)} s`);
  if (args.cold) {
    try {
      await writeFile("/proc/sys/vm/drop_caches", "3");
    } catch {
      console.log("(--cold ignored: cannot write /proc/sys/vm/drop_caches)");
    }
  }
  const before = heapBytes();
  const started = performance.now();
  const cache = await DiskBlockCache.open({ dir, quotaBytes: 2 ** 40, minFreeRatio: 0 });
  const opened = performance.now();
  const probe = ids[Math.floor(n * 0.9)];
  const got = probe === undefined ? undefined : await cache.get(probe);
  const firstGet = performance.now();
  const servedDuringScan = cache.stats().scanning;
  await cache.ready();
  const scanned = performance.now();
  const s = cache.stats();
  row("open() returned after", `${(opened - started).toFixed(1)} ms`);
  row(`first get (a block near the end) done after`, `${(firstGet - started).toFixed(1)} ms (${got === undefined ? "MISS" : "hit"}, scan still running: ${servedDuringScan})`);
  row(`full scan of ${s.blocks} blocks`, `${((scanned - started) / 1000).toFixed(2)} s`);
  row("scan time per 100k blocks", `${((scanned - started) / (n / 100_000) / 1000).toFixed(2)} s`);
  row("extrapolated scan of 1,000,000 blocks", `${(((scanned - started) / n) * 1000).toFixed(1)} s (target <= 10 s)`);
  row("heap+arrays per block after the real scan", `${((heapBytes() - before) / n).toFixed(0)} B (stats.indexBytes ${(s.indexBytes / n).toFixed(0)} B)`);
  await cache.close();
  await rm(dir, { recursive: true, force: true });
  return { firstGetMs: firstGet - started, hit: got !== undefined, servedDuringScan, per1MSeconds: ((scanned - started) / n) * 1000 };
}

async function throughput(base: string, label: string, blockBytes: number, totalBytes: number, concurrency: number): Promise<void> {
  const dir = join(base, `tp-${blockBytes}`);
  const cache = await DiskBlockCache.open({ dir, blockSizeBytes: Math.max(blockBytes, 4096), quotaBytes: 8 * totalBytes, minFreeRatio: 0 });
  await cache.ready();
  const n = Math.max(1, Math.floor(totalBytes / blockBytes));
  const data = randomBytes(blockBytes);
  const ids = Array.from({ length: n }, (_, i) => ({ bucket: "datasets", key: keyOf(i), etag: "e", index: 0 }));
  const run = async (op: (id: BlockId) => Promise<unknown>): Promise<number> => {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let id = ids[next++]; id !== undefined; id = ids[next++]) await op(id);
      }),
    );
    return (performance.now() - t0) / 1000;
  };
  const putS = await run((id) => cache.put(id, data));
  await run((id) => cache.get(id)); // warm the page cache
  let getS = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 3; r++) getS = Math.min(getS, await run((id) => cache.get(id)));
  if (cache.stats().hits !== 4 * n) throw new Error(`expected every get to hit: ${JSON.stringify(cache.stats())}`);
  const mib = (n * blockBytes) / MiB;
  row(`${label} put (c=${concurrency})`, `${(mib / putS).toFixed(0)} MiB/s, ${(n / putS).toFixed(0)} blocks/s`);
  row(`${label} get, page-cached (c=${concurrency})`, `${(mib / getS).toFixed(0)} MiB/s, ${(n / getS).toFixed(0)} blocks/s`);
  await cache.close();
  await rm(dir, { recursive: true, force: true });
}

// Run as a script (bench/agent.ts imports the functions above).
if (import.meta.main) {
const base = typeof args.dir === "string" ? args.dir : await mkdtemp(join(tmpdir(), "ferry-bench-cache-"));
try {
  console.log(`block cache benchmark in ${base}${gc === undefined ? " (run with --expose-gc for exact memory)" : ""}`);
  row("index bytes per block, 1,000,000 synthetic entries", `${syntheticIndexBytesPerBlock(1_000_000).toFixed(0)} B (target <= 300 B)`);
  await scanBench(base, Number(args["scan-blocks"]));
  for (const c of [1, 4]) {
    await throughput(base, "4 MiB blocks", 4 * MiB, 512 * MiB, c);
    await throughput(base, "114 KiB blocks", 114 * 1024, 256 * MiB, c);
  }
  for (const size of [1, 2, 4, 8, 16]) await throughput(base, `${size} MiB blocks`, size * MiB, 512 * MiB, 4);
} finally {
  if (args.dir === undefined) await rm(base, { recursive: true, force: true });
}
}
