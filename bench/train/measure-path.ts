// Measures one data path: a sweep of accelerator counts with every sample read checked against
// the source, then — when the sweep's runs did not between them read every sample — an
// explicit verification pass through the same path, so no number stands on unverified bytes.
// A wrong byte (VerificationError) ends the whole bench; any other failure marks the path failed.
import { sweep, verifyPass } from "./emulator.ts";
import { listSamples, VerificationError } from "./samples.ts";
import { summarizePath } from "./report.ts";
import type { DataPath, DataSet, PathResult, RunResult } from "./types.ts";

export interface MeasureOptions {
  path: DataPath & { skipped?: string };
  dataSet: DataSet;
  expected: ReadonlyMap<string, number>;
  steps: number;
  maxAccelerators: number;
  deadlineSeconds: number;
  onRun: (path: string, result: RunResult) => void;
  /** Ctrl-C: stop between steps and runs; the abort propagates, it is not a failed path. */
  signal?: AbortSignal;
  log: (line: string) => void;
}

/**
 * A run that reads more samples than the data set holds re-reads some, and a cache (the agent's,
 * rclone's, the page cache) may serve the repeats. Cold paths avoid it where the data set allows
 * (sweep's singleEpoch); where it does not (quick unet3d: 4 samples, batch 7) the cold path's
 * description says so rather than the number hiding it. Runs cut at the deadline inside a step
 * are named too, with what their numbers cover.
 */
function describeRuns(path: DataPath, runs: readonly RunResult[], dataSet: DataSet, total: number, deadlineSeconds: number): string {
  const notes: string[] = [];
  // Warm paths re-read by design; the report's header notes re-reads for every path once.
  const reread = path.firstEpoch ? runs.filter((r) => r.steps * r.accelerators * dataSet.workload.batchSize > total).map((r) => r.accelerators) : [];
  if (reread.length > 0) notes.push(`runs with ${[...new Set(reread)].join(", ")} accelerators read more than the ${total}-sample data set, so repeats may have come from a cache`);
  // A run cut inside a step is not measured like the others (emulator.ts, RunResult.basis): say so where its numbers appear.
  const cut = runs.filter((r) => r.cutAtDeadline === "mid-step");
  if (cut.length > 0) {
    const whole = cut.some((r) => r.basis === "whole-run");
    notes.push(
      `runs with ${[...new Set(cut.map((r) => r.accelerators))].join(", ")} accelerators cut at the ${deadlineSeconds} s deadline inside a step (reads in flight finished, verified): ` +
        `AU = compute of completed steps ÷ wall time, MiB/s = verified bytes read ÷ wall time${whole ? ", over the whole run (start-up included) when no measured step completed" : ""}`,
    );
  }
  if (notes.length === 0) return path.description;
  // Before "; origin: …", which the Markdown table drops (report.ts withoutOrigin): the notes must show there.
  const at = path.description.indexOf("; origin:");
  const [head, tail] = at < 0 ? [path.description, ""] : [path.description.slice(0, at), path.description.slice(at)];
  return `${head} [${notes.join("; ")}]${tail}`;
}

export async function measurePath(options: MeasureOptions): Promise<PathResult> {
  const { path, dataSet, expected } = options;
  if (path.skipped) return summarizePath({ name: path.name, description: path.description, runs: [], skipped: path.skipped });
  const verified = new Set<string>();
  let setupSeconds: number | undefined;
  const runs: RunResult[] = [];
  try {
    const swept = await sweep({
      dataSet,
      steps: options.steps,
      maxAccelerators: options.maxAccelerators,
      deadlineSeconds: options.deadlineSeconds,
      verify: expected,
      singleEpoch: path.firstEpoch === true,
      ...(options.signal ? { signal: options.signal } : {}),
      onVerified: (key) => verified.add(key),
      async prepare() {
        const prepared = await path.prepare();
        // The first run's setup (a cold copy for sync-then-local) is what a job pays once.
        setupSeconds ??= prepared.setupSeconds;
        return prepared.location;
      },
      onRun: (result) => {
        runs.push(result);
        options.onRun(path.name, result);
      },
    });
    const total = listSamples(dataSet).length;
    if (verified.size < total) {
      options.signal?.throwIfAborted();
      const started = performance.now();
      const { location } = await path.prepare();
      const count = await verifyPass({ location, dataSet, expected, concurrency: dataSet.workload.readThreads });
      options.log(`${path.name}: runs read ${verified.size} of ${total} samples; verification pass read all ${count} in ${((performance.now() - started) / 1000).toFixed(1)} s, every one matched`);
    } else {
      options.log(`${path.name}: runs read and verified all ${total} samples`);
    }
    return summarizePath({ name: path.name, description: describeRuns(path, swept, dataSet, total, options.deadlineSeconds), runs: swept, ...(setupSeconds !== undefined ? { setupSeconds } : {}) });
  } catch (error) {
    if (error instanceof VerificationError || options.signal?.aborted) throw error;
    const reason = (error instanceof Error ? error.message : String(error)).split("\n")[0]?.slice(0, 300) ?? "";
    options.log(`${path.name}: failed after ${runs.length} runs: ${reason}`);
    // Runs before the failure were verified sample by sample but not over a full pass: not reported.
    return summarizePath({ name: path.name, description: path.description, runs: [], skipped: `failed: ${reason}` });
  }
}
