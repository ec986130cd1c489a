// The mount's own kernel driver (the default as root): large cached files reopen as FUSE
// passthrough files (the kernel reads a copy on the cache disk; no read reaches the agent),
// small files of an immutable dataset open on the reader thread, folders page through
// READDIR, a rewrite in R2 is still seen after the TTL, and the libfuse driver still mounts.
import { randomBytes } from "node:crypto";
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgentProcess, type AgentProcess } from "../helpers/agent-process.ts";
import { startLocalEdge, type LocalEdge, type TestKey } from "../helpers/local-edge.ts";
import { cleanUpMountTests, mounted } from "../helpers/mount-fixture.ts";
import { readRange } from "../helpers/file-ranges.ts";
import { canDropCaches, dropCaches } from "../helpers/drop-caches.ts";
import { runOk } from "../helpers/real-clients.ts";
import { projectRoot } from "../../scripts/lib/edge-process.ts";

const scratch = mkdtempSync(join(tmpdir(), "ferry-passthrough-"));
const mountPoint = join(scratch, "mnt");
let edge: LocalEdge;
let nodeKey: TestKey;
let writer: S3Client;

interface MountStatus {
  driver: string;
  inodes: number;
  requests: Record<string, number>;
  fastOpens: { opens: number; passthrough: number };
  passthrough: { files: number; cacheFiles: number; opens: number; copiesMade: number; copyFailures: number } | null;
}

const READ_OPCODE = "15";

async function mountStatus(agent: AgentProcess): Promise<MountStatus> {
  return (await agent.status()).mount as MountStatus;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function put(key: string, body: Buffer): Promise<void> {
  await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: key, Body: body }));
}

beforeAll(async () => {
  edge = await startLocalEdge();
  const admin = await edge.createKey(["all:datasets"]);
  nodeKey = await edge.createKey(["read,list:datasets"], { name: "node" });
  writer = new S3Client({ endpoint: edge.url, region: "auto", forcePathStyle: true, credentials: admin });
  mkdirSync(mountPoint, { recursive: true });
}, 120_000);

afterAll(() => cleanUpMountTests({ edge, mountPoint, scratch }));

function startMountedAgent(args: string[]): Promise<AgentProcess> {
  // 64 KiB blocks: files from 128 KiB (two blocks) up are passthrough candidates.
  return startAgentProcess({ edgeUrl: edge.url, key: nodeKey, cacheDir: join(scratch, "cache"), args: ["--mount", mountPoint, "--block-size", "64KiB", ...args] });
}

describe("mount: kernel driver", () => {
  it("reopens a large cached file as a passthrough file: byte-exact at odd offsets, no read reaching the agent", async () => {
    const body = randomBytes(3 * 1024 * 1024 + 4321);
    await put("large/passthrough.bin", body);
    const agent = await startMountedAgent([]);
    try {
      const path = join(mountPoint, "datasets", "large", "passthrough.bin");
      expect(readFileSync(path).equals(body)).toBe(true); // cold: through FUSE, filling the cache
      const ready = await waitFor("a passthrough copy", async () => ((await mountStatus(agent)).passthrough?.files ?? 0) >= 1 || undefined);
      expect(ready).toBe(true);
      const readsBefore = (await mountStatus(agent)).requests[READ_OPCODE] ?? 0;
      for (const [offset, length] of [[0, body.length], [1, 65_535], [65_536 * 7 + 3, 200_001], [body.length - 10, 10], [body.length - 1, 50]] as const) {
        expect(readRange(path, offset, length).equals(body.subarray(offset, offset + length))).toBe(true);
      }
      const after = await mountStatus(agent);
      expect(after.driver).toBe("kernel");
      expect(after.passthrough?.opens).toBeGreaterThanOrEqual(5);
      expect(after.passthrough?.copyFailures).toBe(0);
      // Every one of those reads went from the kernel to the copy on the cache disk.
      expect(after.requests[READ_OPCODE] ?? 0).toBe(readsBefore);
    } finally {
      expect(await agent.stop()).toBe(0);
    }
    expect(mounted(mountPoint)).toBe(false);
  }, 120_000);

  it("a file of an immutable dataset warmed through S3 reads through the mount with the reader thread answering up to its end, then gets its passthrough copy", async () => {
    const body = randomBytes(2 * 1024 * 1024); // two 1 MiB blocks
    await put("large/warmed.bin", body);
    const agent = await startMountedAgent(["--block-size", "1MiB", "--metadata-ttl", "indefinite"]);
    try {
      // Looked up before it is cached (the kernel keeps the entry): a lookup of a wholly cached
      // file would have its passthrough file ready for the open, and no READ would reach the agent.
      const path = join(mountPoint, "datasets", "large", "warmed.bin");
      expect(statSync(path).size).toBe(body.length);
      const got = Buffer.from(await (await fetch(`${agent.url}/datasets/large/warmed.bin`)).arrayBuffer());
      expect(got.equals(body)).toBe(true); // the whole object is cached now
      // O_DIRECT reads of 256 KiB on one open file: the first READ of each block reaches the
      // event loop (which registers the block), the next ones the reader thread. The file's
      // last piece is read after a pause, so the reader thread surely answers it: the event
      // loop never sees the end of the file.
      const PIECE = 256 * 1024;
      const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECT);
      const readPiece = (at: number) => {
        const piece = Buffer.alloc(PIECE);
        expect(readSync(fd, piece, 0, PIECE, at)).toBe(PIECE);
        expect(piece.equals(body.subarray(at, at + PIECE))).toBe(true);
      };
      try {
        for (let at = 0; at < body.length - PIECE; at += PIECE) readPiece(at);
        await new Promise((r) => setTimeout(r, 300));
        const before = (await agent.status()).mount as { readerReads: { reads: number } };
        readPiece(body.length - PIECE);
        const after = (await agent.status()).mount as { readerReads: { reads: number } };
        expect(after.readerReads.reads).toBe(before.readerReads.reads + 1);
      } finally {
        closeSync(fd);
      }
      await waitFor("a passthrough copy", async () => ((await mountStatus(agent)).passthrough?.files ?? 0) >= 1 || undefined);
      expect(readRange(path, 12_345, 100_000).equals(body.subarray(12_345, 112_345))).toBe(true);
      expect((await mountStatus(agent)).passthrough?.opens).toBeGreaterThanOrEqual(1);
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  }, 120_000);

  it("serves a same-size rewrite of a passed-through file once the metadata TTL has passed, never a mix", async () => {
    const [before, after] = [randomBytes(512 * 1024), randomBytes(512 * 1024)];
    await put("large/rewritten.bin", before);
    const agent = await startMountedAgent(["--metadata-ttl", "1"]);
    try {
      const path = join(mountPoint, "datasets", "large", "rewritten.bin");
      expect(readFileSync(path).equals(before)).toBe(true);
      await waitFor("a passthrough copy", async () => ((await mountStatus(agent)).passthrough?.files ?? 0) >= 1 || undefined);
      expect(readFileSync(path).equals(before)).toBe(true);
      expect((await mountStatus(agent)).passthrough?.opens).toBeGreaterThanOrEqual(1);
      await put("large/rewritten.bin", after);
      let seen = Buffer.alloc(0);
      for (let i = 0; i < 40 && !seen.equals(after); i++) {
        await new Promise((r) => setTimeout(r, 1000));
        seen = readFileSync(path);
        expect(seen.equals(before) || seen.equals(after)).toBe(true);
      }
      expect(seen.equals(after)).toBe(true);
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  }, 120_000);

  it("opens small files of an immutable dataset on the reader thread, then as passthrough copies, byte-exact every time", async () => {
    const files = Array.from({ length: 30 }, (_, i) => ({ key: `small/img_${String(i).padStart(3, "0")}.bin`, body: randomBytes(20_000 + i * 997) }));
    for (const f of files) await put(f.key, f.body);
    const agent = await startMountedAgent(["--metadata-ttl", "indefinite"]);
    try {
      for (const f of files) expect(readFileSync(join(mountPoint, "datasets", f.key)).equals(f.body)).toBe(true);
      await waitFor("copies of the small files", async () => ((await mountStatus(agent)).passthrough?.files ?? 0) >= files.length || undefined);
      for (let round = 0; round < 3; round++) for (const f of files) expect(readFileSync(join(mountPoint, "datasets", f.key)).equals(f.body)).toBe(true);
      const status = await mountStatus(agent);
      expect(status.fastOpens.opens).toBeGreaterThanOrEqual(files.length * 4);
      expect(status.fastOpens.passthrough).toBeGreaterThanOrEqual(files.length * 3);
      // No open of these files took the main thread's path.
      expect(status.requests["14"] ?? 0).toBe(0);
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  }, 120_000);

  it("passes cached files through as the cache's own files: no second copy on disk, none refetched after a restart", async () => {
    // 24 files of ~100 KB (two 64 KiB blocks each) in a 4 MiB cache: the default 10% budget
    // (410 KiB) would hold copies of only a few; the cache's own whole-object files need none.
    const files = Array.from({ length: 24 }, (_, i) => ({ key: `whole/rec_${String(i).padStart(3, "0")}.bin`, body: randomBytes(100_000 + i * 313) }));
    for (const f of files) await put(f.key, f.body);
    const total = files.reduce((n, f) => n + f.body.length, 0);
    const cacheDir = join(scratch, "whole-cache");
    const args = ["--mount", mountPoint, "--block-size", "64KiB", "--cache-size", "4MiB", "--metadata-ttl", "indefinite"];
    let agent = await startAgentProcess({ edgeUrl: edge.url, key: nodeKey, cacheDir, args });
    try {
      for (const f of files) expect(readFileSync(join(mountPoint, "datasets", f.key)).equals(f.body)).toBe(true);
      await waitFor("every file passed through", async () => ((await mountStatus(agent)).passthrough?.cacheFiles ?? 0) >= files.length || undefined);
      const pt = (await mountStatus(agent)).passthrough;
      expect(pt).toMatchObject({ files: files.length, cacheFiles: files.length, copiesMade: 0, copyFailures: 0 });
      // The cache holds each file once, as its bytes and nothing more (no block headers, no copy beside it).
      const cache = (await agent.status()).cache as { usedBytes: number; blocks: number };
      expect(cache).toMatchObject({ usedBytes: total, blocks: files.length });
      const before = (await mountStatus(agent)).fastOpens.passthrough;
      for (const f of files) expect(readFileSync(join(mountPoint, "datasets", f.key)).equals(f.body)).toBe(true);
      expect((await mountStatus(agent)).fastOpens.passthrough - before).toBe(files.length);
    } finally {
      expect(await agent.stop()).toBe(0);
    }
    agent = await startAgentProcess({ edgeUrl: edge.url, key: nodeKey, cacheDir, args });
    try {
      for (const f of files) expect(readFileSync(join(mountPoint, "datasets", f.key)).equals(f.body)).toBe(true);
      await waitFor("every file passed through again", async () => ((await mountStatus(agent)).passthrough?.cacheFiles ?? 0) >= files.length || undefined);
      for (const f of files) expect(readFileSync(join(mountPoint, "datasets", f.key)).equals(f.body)).toBe(true);
      const bytesBySource = (await agent.status()).bytesBySource as { origin: number };
      expect(bytesBySource.origin).toBe(0);
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  }, 120_000);

  it("ferry warm leaves a mounted dataset in the form the mount passes through: every file's first open passes through", async () => {
    const files = Array.from({ length: 12 }, (_, i) => ({ key: `warmed/rec_${String(i).padStart(3, "0")}.bin`, body: randomBytes(90_000 + i * 501) }));
    for (const f of files) await put(f.key, f.body);
    const args = ["--mount", mountPoint, "--block-size", "64KiB", "--metadata-ttl", "indefinite"];
    const agent = await startAgentProcess({ edgeUrl: edge.url, key: nodeKey, cacheDir: join(scratch, "warmed-cache"), args });
    try {
      const warm = await runOk(process.execPath, [join(projectRoot, "bin", "ferry.js"), "warm", "s3://datasets/warmed/", "--agent", agent.url, "--json"]);
      expect(JSON.parse(warm.stdout.trim().split("\n").at(-1) ?? "{}")).toMatchObject({ state: "done", files: files.length });
      expect((await agent.status()).cache).toMatchObject({ blocks: files.length, usedBytes: files.reduce((n, f) => n + f.body.length, 0) });
      const before = await mountStatus(agent);
      // One open per file held while it is read, as a loader keeping its files open does.
      for (const f of files) {
        const fd = openSync(join(mountPoint, "datasets", f.key), "r");
        try {
          const got = Buffer.alloc(f.body.length);
          expect(readSync(fd, got, 0, got.length, 0)).toBe(f.body.length);
          expect(got.equals(f.body)).toBe(true);
        } finally {
          closeSync(fd);
        }
      }
      const after = await mountStatus(agent);
      expect(after.fastOpens.passthrough - before.fastOpens.passthrough).toBe(files.length);
      expect((after.requests[READ_OPCODE] ?? 0) - (before.requests[READ_OPCODE] ?? 0)).toBe(0);
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  }, 120_000);

  it("ferry warm of large files (several blocks each): every file's first open passes through, no READ reaches the agent", async () => {
    // A loader keeps each file open for the whole run, so a first open read through FUSE would be one for good.
    const files = Array.from({ length: 4 }, (_, i) => ({ key: `warmed-large/sample_${i}.bin`, body: randomBytes(300_000 + i * 4099) }));
    for (const f of files) await put(f.key, f.body);
    const agent = await startAgentProcess({ edgeUrl: edge.url, key: nodeKey, cacheDir: join(scratch, "warmed-large-cache"), args: ["--mount", mountPoint, "--block-size", "64KiB"] });
    try {
      await runOk(process.execPath, [join(projectRoot, "bin", "ferry.js"), "warm", "s3://datasets/warmed-large/", "--agent", agent.url, "--json"]);
      const before = await mountStatus(agent);
      for (const f of files) {
        const fd = openSync(join(mountPoint, "datasets", f.key), "r");
        try {
          const got = Buffer.alloc(f.body.length);
          expect(readSync(fd, got, 0, got.length, 0)).toBe(f.body.length);
          expect(got.equals(f.body)).toBe(true);
        } finally {
          closeSync(fd);
        }
      }
      const after = await mountStatus(agent);
      expect((after.passthrough?.opens ?? 0) - (before.passthrough?.opens ?? 0)).toBe(files.length);
      expect((after.requests[READ_OPCODE] ?? 0) - (before.requests[READ_OPCODE] ?? 0)).toBe(0);
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  }, 120_000);

  it("pins a copy for a small file read in pieces that never reach its end (random records), once all its blocks are cached", async () => {
    // Two 64 KiB blocks, so a fast-open file; listed first, so its lookup knows no version yet.
    const files = [0, 1].map((i) => ({ key: `records/pack_${i}.rec`, body: randomBytes(100_000 + i) }));
    for (const f of files) await put(f.key, f.body);
    const agent = await startMountedAgent(["--metadata-ttl", "indefinite"]);
    try {
      expect(readdirSync(join(mountPoint, "datasets", "records")).sort()).toEqual(["pack_0.rec", "pack_1.rec"]);
      for (const f of files) {
        // O_DIRECT: no read-ahead carries a READ to the last byte. One record from each block.
        const fd = openSync(join(mountPoint, "datasets", f.key), constants.O_RDONLY | constants.O_DIRECT);
        try {
          for (const at of [4096, 65_536 + 8192]) {
            const record = Buffer.alloc(4096);
            expect(readSync(fd, record, 0, record.length, at)).toBe(record.length);
            expect(record.equals(f.body.subarray(at, at + record.length))).toBe(true);
          }
        } finally {
          closeSync(fd);
        }
      }
      await waitFor("copies of both files", async () => ((await mountStatus(agent)).passthrough?.files ?? 0) >= files.length || undefined);
      const before = (await mountStatus(agent)).fastOpens.passthrough;
      for (const f of files) expect(readFileSync(join(mountPoint, "datasets", f.key)).equals(f.body)).toBe(true);
      expect((await mountStatus(agent)).fastOpens.passthrough - before).toBe(files.length);
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  }, 120_000);

  // Needs a writable /proc/sys/vm/drop_caches (root, not a read-only /proc): only a real drop makes the kernel forget inodes.
  it.skipIf(!canDropCaches())("passes small files through from their first open after the kernel forgot their inodes (a page-cache drop)", async () => {
    const files = Array.from({ length: 20 }, (_, i) => ({ key: `forgotten/rec_${String(i).padStart(3, "0")}.bin`, body: randomBytes(30_000 + i * 101) }));
    for (const f of files) await put(f.key, f.body);
    const agent = await startMountedAgent(["--metadata-ttl", "indefinite"]);
    try {
      for (const f of files) expect(readFileSync(join(mountPoint, "datasets", f.key)).equals(f.body)).toBe(true);
      await waitFor("copies of the files", async () => ((await mountStatus(agent)).passthrough?.files ?? 0) >= files.length || undefined);
      // What a training bench does before each run, and the kernel's memory pressure at any time.
      dropCaches();
      await waitFor("the kernel to forget the files' inodes", async () => (await mountStatus(agent)).inodes < files.length || undefined);
      const before = (await mountStatus(agent)).fastOpens.passthrough;
      // One open per file, held while it is read, as a loader keeping its files open would.
      for (const f of files) {
        const fd = openSync(join(mountPoint, "datasets", f.key), "r");
        try {
          const got = Buffer.alloc(f.body.length);
          expect(readSync(fd, got, 0, got.length, 0)).toBe(got.length);
          expect(got.equals(f.body)).toBe(true);
        } finally {
          closeSync(fd);
        }
      }
      expect((await mountStatus(agent)).fastOpens.passthrough - before).toBe(files.length);
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  }, 120_000);

  it("lists a folder larger than one READDIR reply, with file types", async () => {
    const names = Array.from({ length: 150 }, (_, i) => `${"long-episode-name-".repeat(4)}${String(i).padStart(4, "0")}.h5`);
    await Promise.all(names.map((name) => put(`many/${name}`, Buffer.from(name))));
    await put("many/sub/inner.bin", Buffer.from("x"));
    const agent = await startMountedAgent([]);
    try {
      const entries = readdirSync(join(mountPoint, "datasets", "many"), { withFileTypes: true });
      expect(entries.filter((e) => e.isFile()).map((e) => e.name).sort()).toEqual([...names].sort());
      expect(entries.filter((e) => e.isDirectory()).map((e) => e.name)).toEqual(["sub"]);
      expect(readFileSync(join(mountPoint, "datasets", "many", names[77] ?? "")).toString()).toBe(names[77]);
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  }, 120_000);

  it("stops on SIGTERM while a file on the mount is held open: detached, and the open file fails instead of hanging", async () => {
    const body = randomBytes(200_000);
    await put("held/open.bin", body);
    const agent = await startMountedAgent([]);
    const path = join(mountPoint, "datasets", "held", "open.bin");
    const fd = openSync(path, "r");
    try {
      const first = Buffer.alloc(1000);
      expect(readSync(fd, first, 0, 1000, 0)).toBe(1000);
      expect(first.equals(body.subarray(0, 1000))).toBe(true);
      const started = Date.now();
      expect(await agent.stop()).toBe(0);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(mounted(mountPoint)).toBe(false);
      // Pages already read may still be cached; a read the kernel must ask for fails.
      expect(() => readSync(fd, Buffer.alloc(1000), 0, 1000, 150_000)).toThrow(/ENOTCONN|EIO|ECONNABORTED/);
    } finally {
      closeSync(fd);
    }
  }, 120_000);

  it("--mount-driver libfuse still mounts through fuse-native", async () => {
    const body = randomBytes(300_000);
    await put("large/libfuse.bin", body);
    const agent = await startMountedAgent(["--mount-driver", "libfuse"]);
    try {
      expect(readFileSync(join(mountPoint, "datasets", "large", "libfuse.bin")).equals(body)).toBe(true);
      expect((await mountStatus(agent)).driver).toBe("libfuse");
    } finally {
      expect(await agent.stop()).toBe(0);
    }
    expect(mounted(mountPoint)).toBe(false);
  }, 120_000);
});
