// The training bench's data paths end to end: one real edge, the shaper, real agents, a
// two-agent pool, aws s3 sync, rclone and s3fs mounts over a tiny data set. Every path's
// location must give back the source bytes, and close() must leave no mount and no child
// process.
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { mountPoints } from "../bench/train/mounts.ts";
import { createDataPaths } from "../bench/train/paths.ts";
import type { SampleLocation } from "../bench/train/types.ts";
import { tinyDataSet } from "./helpers/tiny-data-set.ts";

const ALL_PATHS = ["agent-mount-cold", "agent-mount-warm", "agent-s3-cold", "agent-s3-warm", "agent-pool-peer", "edge-direct", "sync-then-local", "rclone-vfs", "s3fs", "local-disk"];

const SIZES = { "episode_000000.hdf5": 300_000, "episode_000001.hdf5": 5 * 2 ** 20 + 7, "part/episode_000002.hdf5": 1, "part/episode_000003.hdf5": 70_001 };

async function readThrough(location: SampleLocation, name: string): Promise<Buffer> {
  if (location.kind === "posix") return readFileSync(join(location.root, name));
  if (location.credentials) {
    const client = new S3Client({ endpoint: location.endpoint, region: "auto", forcePathStyle: true, credentials: location.credentials, maxAttempts: 1 });
    try {
      const object = await client.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.prefix + name }));
      return Buffer.from((await object.Body?.transformToByteArray()) ?? []);
    } finally {
      client.destroy();
    }
  }
  const response = await fetch(`${location.endpoint}/${location.bucket}/${location.prefix}${name}`);
  if (!response.ok) throw new Error(`unsigned GET failed: ${name}: ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}

/** Live descendants of this process (the edge's workerd, agents, rclone, s3fs would show here). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] === "Z") continue;
      const parent = Number(fields[1]);
      children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
    } catch {
      // The process ended while we looked.
    }
  }
  const out: number[] = [];
  const walk = (at: number) => {
    for (const child of children.get(at) ?? []) {
      out.push(child);
      walk(child);
    }
  };
  walk(pid);
  return out;
}

function installed(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

describe("training bench data paths", () => {
  const workDir = mkdtempSync(join(tmpdir(), "ferry-train-paths-"));
  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  it("every path reads back the source bytes, and close() leaves no mount or process", { timeout: 600_000 }, async () => {
    const before = new Set(descendants(process.pid));
    const dataSet = tinyDataSet(join(workDir, "source"), SIZES);
    const lines: string[] = [];
    const { paths, close } = await createDataPaths({
      dataSet,
      workDir: join(workDir, "scratch"),
      shaper: { firstByteMs: 30, streamMiBps: 100 },
      log: (line) => lines.push(line),
    });
    try {
      expect(paths.map((p) => p.name)).toEqual(ALL_PATHS);
      const fuse = existsSync("/dev/fuse");
      const mustRun = new Set(["agent-s3-cold", "agent-s3-warm", "edge-direct", "local-disk"]);
      if (fuse) mustRun.add("agent-mount-cold").add("agent-mount-warm").add("agent-pool-peer");
      if (installed("aws")) mustRun.add("sync-then-local");
      if (fuse && installed("rclone")) mustRun.add("rclone-vfs");
      if (fuse && installed("s3fs")) mustRun.add("s3fs");
      for (const path of paths) {
        if (path.skipped) {
          // Allowed only where the tool or FUSE is missing; say so in the test output.
          console.log(`skipped here: ${path.name}: ${path.skipped}`);
          expect(mustRun.has(path.name), `${path.name} skipped: ${path.skipped}`).toBe(false);
          continue;
        }
        const { location, setupSeconds } = await path.prepare();
        if (path.name === "sync-then-local") expect(setupSeconds).toBeGreaterThan(0);
        for (const file of dataSet.files) {
          const got = await readThrough(location, file.name);
          expect(got.equals(readFileSync(join(dataSet.root, file.name))), `${path.name}: ${file.name}`).toBe(true);
        }
      }
      // A second cold prepare replaces the agent (and its mount) with a fresh one.
      const coldMount = paths.find((p) => p.name === "agent-mount-cold");
      if (coldMount && !coldMount.skipped) {
        const { location } = await coldMount.prepare();
        const first = dataSet.files[0];
        if (first) expect((await readThrough(location, first.name)).length).toBe(first.bytes);
      }
    } finally {
      await close();
    }
    const scratch = join(workDir, "scratch");
    expect(mountPoints().filter((m) => m.startsWith(scratch))).toEqual([]);
    expect(descendants(process.pid).filter((pid) => !before.has(pid))).toEqual([]);
    expect(lines.some((l) => l.startsWith("upload:"))).toBe(true);
    // The pool path's joiner read its blocks from the holder, none from the origin.
    if (existsSync("/dev/fuse")) expect(lines.find((l) => l.startsWith("agent-pool-peer: the joiner read"))).toMatch(/read [1-9][\d.]* MiB from its peer .* and 0\.0 MiB of block data from the origin/);
  });
});
