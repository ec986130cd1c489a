// The kernel driver's page-cache mode (`--mount-mode page-cache`, immutable datasets): the
// kernel opens files by itself and keeps their pages, so a file read again sends no request
// to the agent at all (no OPEN, no READ, no RELEASE); pages the kernel dropped come back
// from the NVMe cache, never from the origin; a new agent after kill -9 takes the stale mount
// back; bytes are exact every time.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgentProcess, type AgentProcess, type AgentProcessOptions } from "../helpers/agent-process.ts";
import { startLocalEdge, type LocalEdge } from "../helpers/local-edge.ts";
import { readRange } from "../helpers/file-ranges.ts";
import { canDropCaches, dropCaches } from "../helpers/drop-caches.ts";
import { runOk } from "../helpers/real-clients.ts";

const scratch = mkdtempSync(join(tmpdir(), "ferry-page-cache-"));
const mountPoint = join(scratch, "mnt");
let edge: LocalEdge;
let agent: AgentProcess;
let agentOptions: AgentProcessOptions;
// Small files (one or two 64 KiB blocks, like ImageFolder samples) and one of many blocks.
const episode = { key: "episodes/ep_000.h5", body: randomBytes(1_500_000 + 77) };
const files = [...Array.from({ length: 24 }, (_, i) => ({ key: `images/img_${String(i).padStart(3, "0")}.jpg`, body: randomBytes(9_000 + i * 4_099) })), episode];

interface PageCacheStatus {
  mount: { driver: string; mode: string; requests: Record<string, number>; fastOpens: { opens: number; declined: number }; readerReads: { reads: number } };
  bytesBySource: { origin: number; cache: number };
}

async function status(): Promise<PageCacheStatus> {
  return (await agent.status()) as unknown as PageCacheStatus;
}

/** Every request that reached the agent for file data: OPENs (answered or declined), READs on either thread. */
function dataRequests(s: PageCacheStatus): number {
  return (s.mount.requests["14"] ?? 0) + (s.mount.requests["15"] ?? 0) + s.mount.fastOpens.opens + s.mount.fastOpens.declined + s.mount.readerReads.reads;
}

function readAll(): void {
  for (const f of files) expect(readFileSync(join(mountPoint, "datasets", f.key)).equals(f.body), f.key).toBe(true);
}

beforeAll(async () => {
  edge = await startLocalEdge();
  const admin = await edge.createKey(["all:datasets"]);
  const nodeKey = await edge.createKey(["read,list:datasets"], { name: "node" });
  const writer = new S3Client({ endpoint: edge.url, region: "auto", forcePathStyle: true, credentials: admin });
  for (const f of files) await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: f.key, Body: f.body }));
  mkdirSync(mountPoint, { recursive: true });
  agentOptions = { edgeUrl: edge.url, key: nodeKey, cacheDir: join(scratch, "cache"), args: ["--mount", mountPoint, "--mount-mode", "page-cache", "--metadata-ttl", "indefinite", "--block-size", "64KiB"] };
  agent = await startAgentProcess(agentOptions);
}, 120_000);

afterAll(async () => {
  if (agent) expect(await agent.stop()).toBe(0);
  await edge?.stop();
  if (readFileSync("/proc/mounts", "utf8").includes(` ${mountPoint} `)) await runOk("fusermount", ["-uz", mountPoint]).catch(() => undefined);
  rmSync(scratch, { recursive: true, force: true });
});

describe("mount: page-cache mode", () => {
  it("reads cold byte-exact, with one open declined and none answered: the kernel opens files by itself", async () => {
    readAll();
    const s = await status();
    expect(s.mount).toMatchObject({ driver: "kernel", mode: "page-cache" });
    // Files are read one after another: the first OPEN is declined, and no other is sent.
    expect(s.mount.fastOpens.declined).toBe(1);
    expect(s.mount.fastOpens.opens).toBe(0);
    expect(s.mount.requests["14"] ?? 0).toBe(0);
    expect(s.bytesBySource.origin).toBeGreaterThanOrEqual(files.reduce((n, f) => n + f.body.length, 0));
    for (const f of files) expect(statSync(join(mountPoint, "datasets", f.key)).size).toBe(f.body.length);
  }, 60_000);

  it("reads the same files again, whole and at odd offsets, with no request reaching the agent", async () => {
    const before = dataRequests(await status());
    for (let round = 0; round < 3; round++) readAll();
    const path = join(mountPoint, "datasets", episode.key);
    for (const [offset, length] of [[1, 65_535], [65_536 * 7 + 3, 200_001], [episode.body.length - 10, 10], [episode.body.length - 1, 50]] as const) {
      expect(readRange(path, offset, length).equals(episode.body.subarray(offset, offset + length))).toBe(true);
    }
    expect(dataRequests(await status())).toBe(before);
  }, 60_000);

  // Needs a writable /proc/sys/vm/drop_caches (root, not a read-only /proc).
  it.skipIf(!canDropCaches())("after the kernel drops its pages, reads them again from the NVMe cache, byte-exact, none from the origin", async () => {
    const before = await status();
    dropCaches();
    readAll();
    const after = await status();
    expect(after.bytesBySource.origin).toBe(before.bytesBySource.origin);
    expect(after.bytesBySource.cache).toBeGreaterThan(before.bytesBySource.cache);
    expect(after.mount.requests["14"] ?? 0).toBe(0);
  }, 60_000);

  it("after kill -9 with a file held open, a new agent takes the mount point back and serves its cache, byte-exact", async () => {
    const holder = spawn("sh", ["-c", 'exec 3< "$1"; sleep 30', "sh", join(mountPoint, "datasets", episode.key)], { stdio: "ignore" });
    await new Promise((r) => setTimeout(r, 300));
    await agent.kill9();
    holder.kill("SIGKILL");
    agent = await startAgentProcess(agentOptions);
    expect(agent.output()).toContain("detaching the FUSE mount already at the mount point");
    readAll();
    const s = await status();
    expect(s.mount.mode).toBe("page-cache");
    expect(s.bytesBySource.origin).toBe(0);
  }, 60_000);
});
