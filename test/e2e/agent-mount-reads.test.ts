// READs answered on the mount's reader thread (kernel driver, immutable dataset): once the
// main thread has served a block, later READs of it are read from the block file and checked
// there, byte-exact at odd offsets across block and chunk boundaries; a block file corrupted
// on disk is never served (the READ falls back to the main thread, which drops and refetches
// it). O_DIRECT opens make every read reach the agent instead of the kernel's page cache.
import { randomBytes } from "node:crypto";
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BLOCKS_DIR } from "../../node-agent/src/cache/block-format.ts";
import { startAgentProcess, type AgentProcess } from "../helpers/agent-process.ts";
import { startLocalEdge, type LocalEdge, type TestKey } from "../helpers/local-edge.ts";
import { readRange } from "../helpers/file-ranges.ts";
import { runOk } from "../helpers/real-clients.ts";

const scratch = mkdtempSync(join(tmpdir(), "ferry-reader-reads-"));
const mountPoint = join(scratch, "mnt");
const cacheDir = join(scratch, "cache");
let edge: LocalEdge;
let agent: AgentProcess | undefined;
let nodeKey: TestKey;
const agentArgs = ["--mount", mountPoint, "--block-size", "256KiB", "--metadata-ttl", "indefinite", "--passthrough-budget", "0"];
const BLOCK = 256 * 1024; // four 64 KiB chunks per block
const body = randomBytes(4 * BLOCK + 12_345);

interface Status {
  mount: { requests: Record<string, number>; readerReads: { reads: number; bytes: number } };
  cache: { corruptBlocks: number };
}

async function status(): Promise<Status> {
  return (await agent!.status()) as unknown as Status;
}

/** Reads `length` bytes at `offset` with O_DIRECT, so the read reaches the agent as a READ. */
function directRead(path: string, offset: number, length: number): Buffer {
  return readRange(path, offset, length, constants.O_DIRECT);
}

function blockFiles(): string[] {
  const root = join(cacheDir, BLOCKS_DIR);
  return readdirSync(root).filter((d) => d !== "tmp").flatMap((d) => readdirSync(join(root, d)).map((f) => join(root, d, f)));
}

beforeAll(async () => {
  edge = await startLocalEdge();
  const admin = await edge.createKey(["all:datasets"]);
  nodeKey = await edge.createKey(["read,list:datasets"], { name: "node" });
  await new S3Client({ endpoint: edge.url, region: "auto", forcePathStyle: true, credentials: admin }).send(new PutObjectCommand({ Bucket: "datasets", Key: "packs/records.bin", Body: body }));
  mkdirSync(mountPoint, { recursive: true });
  agent = await startAgentProcess({ edgeUrl: edge.url, key: nodeKey, cacheDir, args: agentArgs });
}, 120_000);

afterAll(async () => {
  await agent?.stop();
  await edge?.stop();
  if (readFileSync("/proc/mounts", "utf8").includes(mountPoint)) await runOk("fusermount", ["-uz", mountPoint]).catch(() => undefined);
  rmSync(scratch, { recursive: true, force: true });
});

describe("mount: READs on the reader thread", () => {
  const path = join(mountPoint, "datasets", "packs", "records.bin");
  const ranges = [[0, body.length], [1, 70_000], [BLOCK - 5, 10], [BLOCK * 2 - 100_000, 200_000], [65_536 * 3 + 7, 65_536], [body.length - 12_345, 12_345], [body.length - 1, 100]] as const;

  it("serves registered blocks from the reader thread, byte-exact at odd offsets, with no READ reaching the main thread", async () => {
    expect(directRead(path, 0, body.length).equals(body)).toBe(true); // cold: fills the cache
    // The main thread registers a block once it serves it from the cache: read until a whole
    // pass reaches it no more.
    for (let pass = 0, settled = false; pass < 20 && !settled; pass++) {
      const mainReads = (await status()).mount.requests["15"] ?? 0;
      expect(directRead(path, 0, body.length).equals(body)).toBe(true);
      await new Promise((r) => setTimeout(r, 50));
      settled = ((await status()).mount.requests["15"] ?? 0) === mainReads;
    }
    const before = await status();
    expect(before.mount.readerReads.reads).toBeGreaterThan(0);
    for (const [offset, length] of ranges) {
      expect(directRead(path, offset, length).equals(body.subarray(offset, offset + length))).toBe(true);
    }
    const after = await status();
    expect(after.mount.readerReads.reads).toBeGreaterThan(before.mount.readerReads.reads + ranges.length - 1);
    expect(after.mount.requests["15"] ?? 0).toBe(before.mount.requests["15"] ?? 0);
  }, 120_000);

  it("never serves a block file corrupted on disk: the READs fall back to the main thread, and a new agent drops and refetches the blocks", async () => {
    const files = blockFiles();
    expect(files.length).toBe(5);
    // Flip one byte in the last chunk of every block file (their data ends the file).
    for (const file of files) {
      const fd = openSync(file, "r+");
      const at = statSync(file).size - 3;
      const b = Buffer.alloc(1);
      readSync(fd, b, 0, 1, at);
      b[0] = (b[0] ?? 0) ^ 0x20;
      writeSync(fd, b, 0, 1, at);
      closeSync(fd);
    }
    const before = await status();
    for (const [offset, length] of ranges) {
      expect(directRead(path, offset, length).equals(body.subarray(offset, offset + length))).toBe(true);
    }
    expect(before.cache.corruptBlocks).toBe(0);
    // The reader thread found the bad chunks and handed those READs over (the main thread
    // answered them from the blocks it still holds in memory from the cold read, or found
    // the bad ones on disk itself).
    const fellBack = await status();
    expect(fellBack.mount.requests["15"] ?? 0).toBeGreaterThan(before.mount.requests["15"] ?? 0);
    // A new agent on the same cache dir reads the rest from disk: each bad block is dropped,
    // counted (by one agent or the other) and refetched.
    await agent?.stop();
    agent = await startAgentProcess({ edgeUrl: edge.url, key: nodeKey, cacheDir, args: agentArgs });
    for (const [offset, length] of ranges) {
      expect(directRead(path, offset, length).equals(body.subarray(offset, offset + length))).toBe(true);
    }
    expect(fellBack.cache.corruptBlocks + (await status()).cache.corruptBlocks).toBe(5);
  }, 120_000);
});
