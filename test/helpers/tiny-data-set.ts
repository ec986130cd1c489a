// A few random files on disk, described as a bench:train data set: what the training
// bench's set-up and data-path tests upload and read back.
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { DataSet, Workload } from "../../bench/train/types.ts";

/** Writes `sizes` (name → bytes, names may hold folders) under `root`, random bytes each. */
export function tinyDataSet(root: string, sizes: Record<string, number>): DataSet {
  const workload: Workload = { name: "trajectory", sampleBytes: 0, samplesPerFile: 1, batchSize: 1, computeSeconds: 0, readThreads: 1 };
  const files = Object.entries(sizes).map(([name, bytes]) => {
    mkdirSync(dirname(join(root, name)), { recursive: true });
    writeFileSync(join(root, name), randomBytes(bytes));
    return { name, bytes };
  });
  return { workload, root, files, totalBytes: files.reduce((sum, f) => sum + f.bytes, 0) };
}
