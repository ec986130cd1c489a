// The agent's POSIX view through real FUSE: plain fs reads, h5py opening an HDF5 trajectory
// through the mount, writes refused, kill -9 with the mount in use then a new agent
// recovering the stale mount point, and SIGTERM unmounting cleanly.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTrajectoryDataset } from "../../sample/trajectories.ts";
import { startAgentProcess, type AgentProcess } from "../helpers/agent-process.ts";
import { startLocalEdge, type LocalEdge, type TestKey } from "../helpers/local-edge.ts";
import { cleanUpMountTests, mounted } from "../helpers/mount-fixture.ts";
import { SYSTEM_PYTHON, runOk } from "../helpers/real-clients.ts";

const scratch = mkdtempSync(join(tmpdir(), "ferry-mount-"));
const mountPoint = join(scratch, "mnt");
let edge: LocalEdge;
let nodeKey: TestKey;
let writer: S3Client;
let sampleFiles: string[] = [];

async function startMountedAgent(extraArgs: string[] = [], key: TestKey = nodeKey): Promise<AgentProcess> {
  return startAgentProcess({ edgeUrl: edge.url, key, cacheDir: join(scratch, "cache"), args: ["--mount", mountPoint, "--block-size", "256KiB", ...extraArgs] });
}

const H5_READ = `
import h5py, sys, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    frame = f["/observations/images/cam0"][3]
    qpos = f["/observations/qpos"][:]
    print(frame.shape[0], frame.shape[1], frame.shape[2], int(frame.astype(np.int64).sum()), qpos.shape[0], f.attrs["robot"])
`;

beforeAll(async () => {
  edge = await startLocalEdge();
  const admin = await edge.createKey(["all:datasets"]);
  nodeKey = await edge.createKey(["read,list:datasets"], { name: "node" });
  writer = new S3Client({ endpoint: edge.url, region: "auto", forcePathStyle: true, credentials: admin });
  const sample = await writeTrajectoryDataset({ outDir: join(scratch, "sample"), episodes: 3, frames: 12 });
  sampleFiles = sample.files.map((f) => f.path);
  for (const file of sampleFiles) await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: `robots/${basename(file)}`, Body: readFileSync(file) }));
  mkdirSync(mountPoint, { recursive: true });
}, 180_000);

afterAll(() => cleanUpMountTests({ edge, mountPoint, scratch }));

describe("POSIX view", () => {
  it("reads with plain fs and h5py, refuses writes, survives kill -9 and unmounts on SIGTERM", async () => {
    let agent = await startMountedAgent();
    try {
      // Only the buckets the node key has grants on are visible.
      expect(readdirSync(mountPoint)).toEqual(["datasets"]);
      const dir = join(mountPoint, "datasets", "robots");
      expect(readdirSync(dir).sort()).toEqual(sampleFiles.map((f) => basename(f)).sort());
      const first = sampleFiles[0] ?? "";
      const viaMount = join(dir, basename(first));
      expect(statSync(viaMount).size).toBe(statSync(first).size);
      expect(readFileSync(viaMount).equals(readFileSync(first))).toBe(true);
      expect(() => writeFileSync(join(dir, "new.bin"), "x")).toThrow(/EROFS|read-only/);
      expect(() => writeFileSync(viaMount, "x")).toThrow(/EROFS|read-only/);
      expect(readFileSync(viaMount).equals(readFileSync(first))).toBe(true);
      expect(existsSync(join(dir, "missing.hdf5"))).toBe(false);

      const [throughMount, local] = await Promise.all([runOk(SYSTEM_PYTHON, ["-c", H5_READ, join(dir, basename(sampleFiles[1] ?? ""))]), runOk(SYSTEM_PYTHON, ["-c", H5_READ, sampleFiles[1] ?? ""])]);
      expect(throughMount.stdout).toBe(local.stdout);
      expect(throughMount.stdout.split(" ")[4]).toBe("12");

      // kill -9 with a reader holding a file open: the mount goes stale under it.
      const holder = spawn(SYSTEM_PYTHON, ["-c", "import sys,time; f=open(sys.argv[1],'rb'); f.read(10); time.sleep(30)", viaMount], { stdio: "ignore" });
      await new Promise((r) => setTimeout(r, 500));
      await agent.kill9();
      holder.kill("SIGKILL");
      agent = await startMountedAgent();
      expect(readFileSync(join(dir, basename(sampleFiles[2] ?? ""))).equals(readFileSync(sampleFiles[2] ?? ""))).toBe(true);
    } finally {
      const code = await agent.stop();
      expect(code, agent.output().slice(-3000)).toBe(0);
    }
    expect(mounted(mountPoint)).toBe(false);
  }, 120_000);

  it("serves a same-size rewrite in R2 through the mount once the metadata TTL has passed", async () => {
    const agent = await startMountedAgent(["--metadata-ttl", "1"]);
    try {
      // Two files of one folder: the second one's attributes come from a folder listing, not a HEAD.
      const keys = ["robots/rewritten-a.bin", "robots/rewritten-b.bin"];
      const paths = keys.map((key) => join(mountPoint, "datasets", key));
      const [before, after] = [Buffer.alloc(300_000, 0x41), Buffer.alloc(300_000, 0x42)];
      for (const key of keys) await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: key, Body: before }));
      for (const path of paths) expect(readFileSync(path).equals(before)).toBe(true);
      for (const key of keys) await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: key, Body: after }));
      // Past the agent's TTL and the kernel's attribute timeout, a new open sees the new version, never a mix.
      let seen = paths.map(() => Buffer.alloc(0));
      for (let i = 0; i < 40 && !seen.every((s) => s.equals(after)); i++) {
        await new Promise((r) => setTimeout(r, 2000));
        seen = paths.map((path) => readFileSync(path));
        for (const s of seen) expect(s.equals(before) || s.equals(after)).toBe(true);
      }
      for (const s of seen) expect(s.equals(after)).toBe(true);
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  }, 150_000);

  it("a job that opens files by path (no readdir) pays one folder listing and one origin request per small file, not a HEAD and a GET each", async () => {
    const files = Array.from({ length: 24 }, (_, i) => ({ name: `episode_${String(i).padStart(3, "0")}.bin`, body: randomBytes(3000 + i * 101) }));
    for (const f of files) await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: `bypath/${f.name}`, Body: f.body }));
    const agent = await startMountedAgent(["--metadata-ttl", "indefinite"]);
    try {
      for (const f of files) expect(readFileSync(join(mountPoint, "datasets", "bypath", f.name)).equals(f.body)).toBe(true);
      expect(existsSync(join(mountPoint, "datasets", "bypath", "absent.bin"))).toBe(false);
      const status = (await agent.status()) as { metadata: { headMisses: number; listMisses: number }; reader: { blockMisses: number } };
      // The first lookup HEADs while the folder is listed; every later file is known from the
      // listing, and its read fetches metadata and bytes in one GET: counted as a metadata
      // miss, with no block fetch of its own (before: a HEAD and a block miss per file).
      expect(status.metadata.listMisses).toBeLessThanOrEqual(4);
      expect(status.metadata.headMisses).toBeLessThanOrEqual(files.length + 2);
      expect(status.reader.blockMisses).toBeLessThanOrEqual(1);
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  }, 120_000);

  it("with --metadata-ttl indefinite (opens answered off the event loop) and a key granted one prefix, reads every file byte-exact, many times over", async () => {
    // The key may not HEAD "robots" (outside its grant): the folder must still resolve by listing.
    const prefixKey = await edge.createKey(["read,list:datasets/robots/"], { name: "prefix-node" });
    const agent = await startMountedAgent(["--metadata-ttl", "indefinite"], prefixKey);
    try {
      const dir = join(mountPoint, "datasets", "robots");
      expect(statSync(dir).isDirectory()).toBe(true);
      expect(readdirSync(dir).sort()).toEqual(expect.arrayContaining(sampleFiles.map((f) => basename(f))));
      for (let round = 0; round < 3; round++) {
        for (const file of sampleFiles) expect(readFileSync(join(dir, basename(file))).equals(readFileSync(file))).toBe(true);
      }
      expect(() => writeFileSync(join(dir, basename(sampleFiles[0] ?? "")), "x")).toThrow(/EROFS|read-only/);
    } finally {
      expect(await agent.stop()).toBe(0);
    }
    expect(mounted(mountPoint)).toBe(false);
  }, 120_000);
});
