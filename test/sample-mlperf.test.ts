// MLPerf-shaped data sets: the library writes the documented shapes with deterministic,
// incompressible bytes, and `ferry sample --workload` (the real CLI) wires it with one-line flag errors.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { deflateSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MLPERF_SAMPLE_BYTES, MlperfOptionError, writeMlperfDataset } from "../sample/mlperf.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const NODE = join(ROOT, "node_modules", ".bin", "node");
const FERRY = join(ROOT, "bin", "ferry.js");

type Run = { code: number | null; stdout: string; stderr: string };

function ferry(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(NODE, [FERRY, "sample", ...args], { encoding: "utf8", timeout: 60_000 }, (error, stdout, stderr) => {
      // A non-zero exit is a result to check, not a failure of the test harness.
      if (error && typeof error.code !== "number") reject(error);
      else resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

const sha256 = async (path: string): Promise<string> => createHash("sha256").update(await readFile(path)).digest("hex");

let work = "";
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "ferry-mlperf-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("writeMlperfDataset", () => {
  it("packs resnet50 records of exactly 114,660 bytes, the same bytes for the same seed", async () => {
    const a = await writeMlperfDataset({ workload: "resnet50", outDir: join(work, "a"), files: 3, recordsPerFile: 5, seed: 7 });
    const b = await writeMlperfDataset({ workload: "resnet50", outDir: join(work, "b"), files: 3, recordsPerFile: 5, seed: 7 });
    const c = await writeMlperfDataset({ workload: "resnet50", outDir: join(work, "c"), files: 3, recordsPerFile: 5, seed: 8 });
    expect(MLPERF_SAMPLE_BYTES.resnet50).toBe(114_660);
    expect(a.sampleBytes).toBe(114_660);
    expect(a.samplesPerFile).toBe(5);
    expect(a.files.map((f) => f.name)).toEqual(["resnet50_000000.rec", "resnet50_000001.rec", "resnet50_000002.rec"]);
    expect(a.totalBytes).toBe(3 * 5 * 114_660);
    for (const [i, file] of a.files.entries()) {
      expect(file.bytes).toBe(5 * 114_660);
      expect((await stat(join(a.outDir, file.name))).size).toBe(5 * 114_660);
      const name = file.name;
      expect(await sha256(join(b.outDir, name))).toBe(await sha256(join(a.outDir, name)));
      expect(await sha256(join(c.outDir, name))).not.toBe(await sha256(join(a.outDir, name)));
      // Files differ from each other too: each has its own keystream.
      if (i > 0) expect(await sha256(join(a.outDir, name))).not.toBe(await sha256(join(a.outDir, a.files[0]?.name ?? "")));
    }
    // No temp files left behind.
    expect((await readdir(a.outDir)).filter((n) => n.startsWith("."))).toEqual([]);
  });

  it("writes incompressible bytes (deflate cannot shrink them)", async () => {
    const r = await writeMlperfDataset({ workload: "resnet50", outDir: join(work, "z"), files: 1, recordsPerFile: 2 });
    const bytes = await readFile(join(r.outDir, r.files[0]?.name ?? ""));
    expect(deflateSync(bytes).length).toBeGreaterThan(bytes.length * 0.99);
  });

  it("writes one 146,600,628-byte sample per unet3d file", async () => {
    const r = await writeMlperfDataset({ workload: "unet3d", outDir: join(work, "u"), files: 1 });
    expect(r.samplesPerFile).toBe(1);
    expect(r.files).toEqual([{ name: "unet3d_000000.bin", bytes: 146_600_628 }]);
    expect((await stat(join(r.outDir, "unet3d_000000.bin"))).size).toBe(146_600_628);
    await rm(r.outDir, { recursive: true });
  });

  it("rejects options out of range by name", async () => {
    await expect(writeMlperfDataset({ workload: "resnet50", outDir: join(work, "x"), files: 0 })).rejects.toBeInstanceOf(MlperfOptionError);
    await expect(writeMlperfDataset({ workload: "unet3d", outDir: join(work, "x"), files: 1, recordsPerFile: 4 })).rejects.toMatchObject({ option: "recordsPerFile" });
  });
});

describe("ferry sample --workload", () => {
  it("writes a resnet50 set and reports it as JSON; the same flags give the same bytes", async () => {
    const args = ["--workload", "resnet50", "--files", "2", "--records-per-file", "3", "--seed", "5", "--json"];
    const first = await ferry([...args, "--out", join(work, "cli1")]);
    const second = await ferry([...args, "--out", join(work, "cli2")]);
    expect(first.code).toBe(0);
    const summary = JSON.parse(first.stdout) as { workload: string; files: Array<{ name: string; bytes: number }>; totalBytes: number; sampleBytes: number };
    expect(summary.workload).toBe("resnet50");
    expect(summary.sampleBytes).toBe(114_660);
    expect(summary.files).toEqual([
      { name: "resnet50_000000.rec", bytes: 3 * 114_660 },
      { name: "resnet50_000001.rec", bytes: 3 * 114_660 },
    ]);
    expect(second.code).toBe(0);
    for (const f of summary.files) expect(await sha256(join(work, "cli2", f.name))).toBe(await sha256(join(work, "cli1", f.name)));
    // Library and CLI agree: the CLI is only wiring.
    const lib = await writeMlperfDataset({ workload: "resnet50", outDir: join(work, "lib"), files: 1, recordsPerFile: 3, seed: 5 });
    expect(await sha256(join(lib.outDir, "resnet50_000000.rec"))).toBe(await sha256(join(work, "cli1", "resnet50_000000.rec")));
  });

  it("still writes HDF5 trajectories by default", async () => {
    const r = await ferry(["--out", join(work, "traj"), "--episodes", "1", "--frames", "2", "--height", "16", "--width", "16", "--json"]);
    expect(r.code).toBe(0);
    expect(await readdir(join(work, "traj"))).toEqual(["episode_000000.hdf5"]);
  });

  it.each([
    [["--workload", "vgg"], /--workload must be one of trajectory, resnet50, unet3d/],
    [["--workload", "resnet50", "--files", "zero"], /--files must be a whole number/],
    [["--workload", "unet3d", "--records-per-file", "2"], /--records-per-file applies to --workload resnet50 only/],
    [["--workload", "resnet50", "--episodes", "2"], /--episodes applies to --workload trajectory only/],
    [["--files", "2"], /--files applies to --workload resnet50 or unet3d/],
    [["--workload", "resnet50"], /--out is required/],
  ])("rejects %j with a one-line usage error", async (args, message) => {
    const out = args.includes("--out") || args.join(" ") === "--workload resnet50" ? [] : ["--out", join(work, "never")];
    const r = await ferry([...args, ...out]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    await expect(stat(join(work, "never"))).rejects.toMatchObject({ code: "ENOENT" });
  });
});
