// The real-loader part of the bench (trajectory workload): a PyTorch DataLoader reading the
// episodes with h5py through the agent's mount and from local disk, and with boto3 through
// the agent's S3 endpoint — the samples/s a user would check first. A loader result counts only
// when it verified at least one full pass of the data set; otherwise it is left out and logged.
import { runTorchLoader, torchUnavailable } from "./torch-loader.ts";
import type { DataPath, DataSet, LoaderResult } from "./types.ts";

/** Which path each loader reads; the loader kind follows from the location (POSIX → h5py, S3 → boto3). */
const LOADER_PATHS = ["agent-mount-warm", "agent-s3-warm", "local-disk"] as const;

/** DataLoader workers: one per core of this 2-core machine; more only adds contention here. */
const NUM_WORKERS = 2;

export async function runLoaders(options: { paths: ReadonlyArray<DataPath & { skipped?: string }>; dataSet: DataSet; expectedSamples: number; log: (line: string) => void }): Promise<LoaderResult[]> {
  const wanted = options.paths.filter((p) => (LOADER_PATHS as readonly string[]).includes(p.name) && !p.skipped);
  if (wanted.length === 0) return [];
  const unavailable = await torchUnavailable();
  if (unavailable) {
    options.log(`PyTorch loaders not run: ${unavailable}`);
    return [];
  }
  const results: LoaderResult[] = [];
  for (const path of wanted) {
    try {
      const { location } = await path.prepare();
      const result = await runTorchLoader({ location, dataSet: options.dataSet, pathName: path.name, numWorkers: NUM_WORKERS });
      if (result.verifiedSamples < options.expectedSamples) {
        options.log(`${path.name} ${result.loader}: verified ${result.verifiedSamples} of ${options.expectedSamples} samples, less than a full pass: result left out`);
        continue;
      }
      options.log(`${path.name} ${result.loader} DataLoader (${result.numWorkers} workers): ${result.samplesPerSec.toFixed(1)} samples/s, ${result.mibPerSec.toFixed(1)} MiB/s, ${result.verifiedSamples} samples verified`);
      results.push(result);
    } catch (error) {
      // Left out of the results, never reported from unchecked bytes; the log says why.
      options.log(`${path.name}: PyTorch loader failed, result left out: ${(error instanceof Error ? error.message : String(error)).split("\n")[0] ?? ""}`);
    }
  }
  return results;
}
