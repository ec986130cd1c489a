// `ferry sample` end to end: runs the real CLI into temp directories and checks the HDF5 files
// with h5py (an independent reader), byte-level determinism, flag errors and a killed run.
import { execFile, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
// Node 24 from the `node` devDependency; the system node may be too old to strip types.
const NODE = join(ROOT, "node_modules", ".bin", "node");
const FERRY = join(ROOT, "bin", "ferry.js");
// Debian's python has h5py; the python first on PATH may not.
const PYTHON = "/usr/bin/python3";

// Flag errors must stop the run before it writes; if one did not, it writes here, not into the repo.
const UNUSED_OUT = join(tmpdir(), `ferry-sample-unused-${process.pid}`);
const SMALL = ["--episodes", "3", "--frames", "6", "--cameras", "2", "--height", "24", "--width", "32"];

type Run = { code: number | null; stdout: string; stderr: string };

function ferry(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(NODE, [FERRY, "sample", ...args], { encoding: "utf8", timeout: 30_000 }, (error, stdout, stderr) => {
      // A non-zero exit is a result to check, not a failure of the test harness.
      if (error && typeof error.code !== "number") reject(error);
      else resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Facts about one episode file as h5py sees them, for the assertions below. */
const INSPECT = `
import h5py, json, sys, numpy as np
out = []
for path in sys.argv[1:]:
    with h5py.File(path, "r") as f:
        cams = f["observations/images"]
        qpos = f["observations/qpos"][()]
        action = f["action"][()]
        images = {}
        for name in sorted(cams):
            d = cams[name]
            a = d[()].astype(np.int16)
            images[name] = {
                "shape": list(d.shape), "dtype": str(d.dtype), "chunks": list(d.chunks or []),
                "compression": d.compression, "min": int(a.min()), "max": int(a.max()),
                # neighbouring pixels differ little in camera-like images, ~85 in uniform noise
                "meanNeighbourDiff": float(np.abs(np.diff(a, axis=2)).mean()),
                "framesDiffer": bool((a[1:] != a[:-1]).any()) if len(a) > 1 else True,
            }
        out.append({
            "images": images,
            "qpos": {"shape": list(qpos.shape), "dtype": str(qpos.dtype), "finite": bool(np.isfinite(qpos).all())},
            "action": {"shape": list(action.shape), "dtype": str(action.dtype), "finite": bool(np.isfinite(action).all())},
            "actionVsNextQpos": float(np.abs(action[:-1] - qpos[1:]).max()) if len(qpos) > 1 else 0.0,
            "attrs": {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()},
        })
print(json.dumps(out))
`;

function inspect(paths: string[]): unknown[] {
  const result = spawnSync(PYTHON, ["-c", INSPECT, ...paths], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`h5py could not read the files: ${result.stderr || String(result.error)}`);
  return JSON.parse(result.stdout) as unknown[];
}

async function hashes(dir: string): Promise<Record<string, string>> {
  const entries: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) {
    entries[name] = createHash("sha256").update(await readFile(join(dir, name))).digest("hex");
  }
  return entries;
}

describe("ferry sample", () => {
  let base = "";
  let first: Run;
  const dir = (name: string): string => join(base, name);

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), "ferry-sample-"));
    first = await ferry(["--out", dir("a"), ...SMALL, "--seed", "7", "--json"]);
  });
  afterAll(async () => {
    if (base) await rm(base, { recursive: true, force: true });
  });

  it("writes one complete HDF5 file per episode and reports them", async () => {
    expect(first.stderr).not.toMatch(/error/i);
    expect(first.code).toBe(0);
    const summary = JSON.parse(first.stdout) as { out: string; episodes: number; files: { path: string; bytes: number }[]; totalBytes: number };
    expect(summary.out).toBe(dir("a"));
    expect(summary.episodes).toBe(3);
    expect(summary.files.map((f) => f.path)).toEqual([0, 1, 2].map((i) => join(dir("a"), `episode_00000${i}.hdf5`)));
    for (const file of summary.files) expect((await stat(file.path)).size).toBe(file.bytes);
    expect(summary.totalBytes).toBe(summary.files.reduce((sum, f) => sum + f.bytes, 0));
    // Nothing else is left behind: no temp files.
    expect((await readdir(dir("a"))).sort()).toEqual(["episode_000000.hdf5", "episode_000001.hdf5", "episode_000002.hdf5"]);
    // stderr is not a TTY here, so progress is one JSON line per episode.
    const progress = first.stderr.trim().split("\n").map((line) => JSON.parse(line) as { event: string; done: number; total: number });
    expect(progress.map((p) => [p.event, p.done, p.total])).toEqual([["episode", 1, 3], ["episode", 2, 3], ["episode", 3, 3]]);
  });

  it("lays the files out as robot-learning loaders expect", () => {
    const episodes = inspect([0, 1, 2].map((i) => join(dir("a"), `episode_00000${i}.hdf5`))) as {
      images: Record<string, { shape: number[]; dtype: string; chunks: number[]; compression: string; min: number; max: number; meanNeighbourDiff: number; framesDiffer: boolean }>;
      qpos: { shape: number[]; dtype: string; finite: boolean };
      action: { shape: number[]; dtype: string; finite: boolean };
      actionVsNextQpos: number;
      attrs: Record<string, unknown>;
    }[];
    episodes.forEach((episode, index) => {
      expect(Object.keys(episode.images)).toEqual(["cam0", "cam1"]);
      for (const image of Object.values(episode.images)) {
        expect(image).toMatchObject({ shape: [6, 24, 32, 3], dtype: "uint8", chunks: [1, 24, 32, 3], compression: "gzip" });
        expect(image.max - image.min).toBeGreaterThan(30); // not a constant picture
        expect(image.meanNeighbourDiff).toBeLessThan(15); // and not noise
        expect(image.framesDiffer).toBe(true);
      }
      expect(episode.qpos).toEqual({ shape: [6, 14], dtype: "float32", finite: true });
      expect(episode.action).toEqual({ shape: [6, 14], dtype: "float32", finite: true });
      expect(episode.actionVsNextQpos).toBeLessThan(0.01);
      const { robot, task, success, episode_index, seed } = episode.attrs;
      expect(typeof robot).toBe("string");
      expect(typeof task).toBe("string");
      expect([0, 1, true, false]).toContain(success);
      expect(episode_index).toBe(index);
      expect(seed).toBe(7);
    });
  });

  it("writes byte-identical files for the same seed and different ones for another seed", async () => {
    // Over a second between the two seed-7 runs, so a timestamp in the files would show as a difference.
    const [other] = await Promise.all([ferry(["--out", dir("other"), ...SMALL, "--seed", "8"]), sleep(1100)]);
    expect(other.code).toBe(0);
    expect((await ferry(["--out", dir("same"), ...SMALL, "--seed", "7"])).code).toBe(0);
    const a = await hashes(dir("a"));
    expect(await hashes(dir("same"))).toEqual(a);
    const otherHashes = await hashes(dir("other"));
    expect(Object.keys(otherHashes)).toEqual(Object.keys(a));
    for (const name of Object.keys(a)) expect(otherHashes[name]).not.toBe(a[name]);
  });

  it.concurrent.each([
    [["--out", UNUSED_OUT, "--episodes", "0"], "--episodes"],
    [["--out", UNUSED_OUT, "--frames", "abc"], "--frames"],
    [["--out", UNUSED_OUT, "--cameras", "1.5"], "--cameras"],
    [["--out", UNUSED_OUT, "--seed=-1"], "--seed"],
    [["--out", UNUSED_OUT, "--height", "99999"], "--height"],
    [["--episodes", "2"], "--out"],
    [["--out", UNUSED_OUT, "--colour", "red"], "--colour"],
  ])("rejects %j with exit code 2 and one line naming %s", async (args, flag) => {
    const run = await ferry(args);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(run.stderr).toContain(flag);
  });

  it("leaves only complete files under final names when killed mid-run", async () => {
    const out = dir("killed");
    const child = spawn(NODE, [FERRY, "sample", "--out", out, "--episodes", "500", "--frames", "4", "--height", "16", "--width", "16"]);
    await new Promise<void>((resolve, reject) => {
      let lines = 0;
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
        lines += chunk.split("\n").length - 1;
        if (lines >= 3) child.kill("SIGKILL");
      });
      child.on("exit", () => resolve());
      child.on("error", reject);
    });
    const finals = (await readdir(out)).filter((name) => !name.startsWith(".")).sort();
    expect(finals.length).toBeGreaterThanOrEqual(3);
    expect(finals.length).toBeLessThan(500);
    // Every file under a final name opens and holds every frame.
    const episodes = inspect(finals.map((name) => join(out, name))) as { images: Record<string, { shape: number[] }> }[];
    for (const episode of episodes) expect(episode.images["cam0"]?.shape).toEqual([4, 16, 16, 3]);
  });
});
