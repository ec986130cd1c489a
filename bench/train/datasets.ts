// Generates the data set one bench run reads on every path, sized for --quick or the full run,
// and describes it as a DataSet (names relative to its root, the workload's real sample size).
import { basename, join } from "node:path";
import { writeMlperfDataset } from "../../sample/mlperf.ts";
import { writeTrajectoryDataset } from "../../sample/trajectories.ts";
import type { DataSet, Workload } from "./types.ts";
import { WORKLOADS } from "./workloads.ts";

/**
 * Files per workload. Quick: enough files to shard across readers, small enough to generate,
 * upload and read 9 times within the 5-minute budget (resnet50 117 MiB, unet3d 559 MiB,
 * trajectory ≈ 60 MB); quick unet3d holds fewer samples than one batch of 7, so its cold runs
 * re-read samples (the report says so). Full: resnet50 1.8 GiB, unet3d 6.6 GiB (a cold epoch
 * of 6 steps for one accelerator), trajectory ≈ 640 MB; still below this machine's RAM, so the
 * cold paths rely on dropping the page cache, not on size.
 */
export const DATA_SET_FILES: Readonly<Record<"quick" | "full", Readonly<Record<Workload["name"], number>>>> = Object.freeze({
  quick: Object.freeze({ resnet50: 16, unet3d: 4, trajectory: 48 }),
  full: Object.freeze({ resnet50: 256, unet3d: 48, trajectory: 512 }),
});

export async function generateDataSet(options: { workload: Workload["name"]; dir: string; files: number; seed?: number }): Promise<DataSet> {
  const root = join(options.dir, options.workload);
  const seed = options.seed ?? 0;
  const base = WORKLOADS[options.workload];
  if (options.workload === "trajectory") {
    const result = await writeTrajectoryDataset({ outDir: root, episodes: options.files, seed });
    const files = result.files.map((f) => ({ name: basename(f.path), bytes: f.bytes }));
    // Episodes differ in size (gzip); the emulator reads each whole, sampleBytes is their mean.
    const workload: Workload = { ...base, sampleBytes: Math.round(result.totalBytes / files.length) };
    return { workload, root, files, totalBytes: result.totalBytes };
  }
  const result = await writeMlperfDataset({ workload: options.workload, outDir: root, files: options.files, seed, ...(options.workload === "resnet50" ? { recordsPerFile: base.samplesPerFile } : {}) });
  return { workload: { ...base, sampleBytes: result.sampleBytes, samplesPerFile: result.samplesPerFile }, root, files: result.files, totalBytes: result.totalBytes };
}
