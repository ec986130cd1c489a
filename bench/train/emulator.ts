// Emulates training the way MLPerf Storage's DLIO does: every emulated accelerator has its own
// pool of `readThreads` readers that fetch its next batch while the current one "computes"
// (a sleep of the published H100 time), and a barrier ends each step when every accelerator has
// finished computing. AU = compute time ÷ wall time over all steps but the first (the first
// step pays for start-up, not for the data path). No result comes from bytes that failed a check.
import { setTimeout as sleep } from "node:timers/promises";
import { openReader } from "./readers.ts";
import type { SampleReader } from "./readers.ts";
import { assignSamples, deferred, listSamples, VerificationError } from "./samples.ts";
import type { Deferred, Sample } from "./samples.ts";
import type { DataSet, RunResult, SampleLocation } from "./types.ts";

export interface TrainingOptions {
  location: SampleLocation;
  dataSet: DataSet;
  accelerators: number;
  /** Steps to run, the first included (it is excluded from AU); at least 2. */
  steps: number;
  /** Expected CRC32C per sample key (samples.ts sampleKey); when given every sample read is checked. */
  verify?: ReadonlyMap<string, number>;
  /** Called with each verified sample key, so a caller can tell when a full pass was covered. */
  onVerified?: (key: string) => void;
  /** Shuffle seed; default 0. The same seed gives the same assignment on every path. */
  seed?: number;
  /** Batches read ahead of the one computing (DLIO/PyTorch prefetch); default 1. */
  prefetchBatches?: number;
  /** Stop after the step that crosses this much wall time (≥ 2 steps always run), to bound hopeless runs. */
  deadlineSeconds?: number;
  onStep?: (progress: { step: number; steps: number; elapsedSeconds: number }) => void;
  /** Aborts the run at the next step boundary (Ctrl-C): it throws the signal's reason. */
  signal?: AbortSignal;
}

/** One accelerator's reader pool: reads its samples in order, at most `prefetchBatches` batches ahead of compute. */
function acceleratorFeed(options: {
  batches: Sample[][];
  readThreads: number;
  prefetchBatches: number;
  reader: SampleReader;
  verify: ReadonlyMap<string, number> | undefined;
  onSample: (sample: Sample, verified: boolean) => void;
  stopped: () => boolean;
}): { batch(step: number): Promise<void>; computing(step: number): void; done: Promise<unknown> } {
  const { batches, reader, verify } = options;
  const ready: Array<Deferred<void>> = batches.map(() => deferred<void>());
  const remaining = batches.map((b) => b.length);
  let allowedBatch = options.prefetchBatches; // batches 0..allowedBatch may be read now
  let waiting: Array<() => void> = [];
  let next = 0;
  const flat = batches.flatMap((batch, step) => batch.map((sample) => ({ sample, step })));

  const worker = async (): Promise<void> => {
    while (!options.stopped() && next < flat.length) {
      const item = flat[next];
      if (!item) break;
      if (item.step > allowedBatch) {
        await new Promise<void>((resolve) => waiting.push(resolve));
        continue;
      }
      next++;
      try {
        const { crc32c } = await reader.read(item.sample, { checksum: verify !== undefined });
        if (verify) {
          const expected = verify.get(item.sample.key);
          if (expected === undefined || crc32c !== expected) throw new VerificationError(item.sample.key, expected, crc32c ?? 0);
        }
        options.onSample(item.sample, verify !== undefined);
        const left = (remaining[item.step] ?? 1) - 1;
        remaining[item.step] = left;
        if (left === 0) ready[item.step]?.resolve();
      } catch (error) {
        for (const d of ready) d.reject(error);
        throw error;
      }
    }
  };
  const workers = Array.from({ length: options.readThreads }, () => worker());
  return {
    batch: (step) => ready[step]?.promise ?? Promise.resolve(),
    computing(step) {
      allowedBatch = Math.max(allowedBatch, step + options.prefetchBatches);
      const wake = waiting;
      waiting = [];
      for (const resolve of wake) resolve();
    },
    done: Promise.allSettled(workers),
  };
}

export async function runTraining(options: TrainingOptions): Promise<RunResult> {
  const { dataSet, accelerators } = options;
  const { batchSize, computeSeconds, readThreads } = dataSet.workload;
  if (!(Number.isInteger(accelerators) && accelerators >= 1)) throw new RangeError(`accelerators must be a whole number ≥ 1 (got ${accelerators})`);
  if (!(Number.isInteger(options.steps) && options.steps >= 2)) throw new RangeError(`steps must be a whole number ≥ 2 (got ${options.steps}): the first step is not measured`);
  const samples = listSamples(dataSet);
  const plan = assignSamples({ sampleCount: samples.length, accelerators, batchSize, steps: options.steps, seed: options.seed ?? 0 });
  const reader = openReader(options.location, { concurrency: accelerators * readThreads });
  let stop = false;
  let measuredFrom = 0;
  let verifiedSamples = 0;
  const feeds = Array.from({ length: accelerators }, (_, a) =>
    acceleratorFeed({
      batches: plan.map((perAccelerator) => (perAccelerator[a] ?? []).map((i) => samples[i] ?? { key: "", file: "", offset: 0, length: 0 })),
      readThreads,
      prefetchBatches: options.prefetchBatches ?? 1,
      reader,
      verify: options.verify,
      onSample: (sample, verified) => {
        if (verified) {
          verifiedSamples++;
          options.onVerified?.(sample.key);
        }
      },
      stopped: () => stop,
    }),
  );
  const started = performance.now();
  let stepsDone = 0;
  try {
    for (let step = 0; step < options.steps; step++) {
      await Promise.all(
        feeds.map(async (feed) => {
          await feed.batch(step);
          feed.computing(step);
          await sleep(computeSeconds * 1000);
        }),
      );
      stepsDone = step + 1;
      if (step === 0) measuredFrom = performance.now();
      const elapsedSeconds = (performance.now() - started) / 1000;
      options.onStep?.({ step, steps: options.steps, elapsedSeconds });
      options.signal?.throwIfAborted();
      if (options.deadlineSeconds !== undefined && stepsDone >= 2 && elapsedSeconds > options.deadlineSeconds) break;
    }
  } finally {
    stop = true;
    for (const feed of feeds) feed.computing(Number.MAX_SAFE_INTEGER); // wake waiting workers so they see `stop`
    await Promise.all(feeds.map((f) => f.done));
    await reader.close();
  }
  const wallSeconds = (performance.now() - measuredFrom) / 1000;
  const measuredSteps = stepsDone - 1;
  // Throughput as DLIO reports it: the bytes of the batches consumed in the measured steps.
  let measuredBytes = 0;
  for (const perAccelerator of plan.slice(1, stepsDone)) for (const batch of perAccelerator) for (const i of batch) measuredBytes += samples[i]?.length ?? 0;
  return {
    accelerators,
    // Nominal compute, not measured sleeps: a busy event loop oversleeps, which must not look like utilisation.
    au: Math.min(1, (measuredSteps * computeSeconds) / wallSeconds),
    mibPerSec: measuredBytes / (1024 * 1024) / wallSeconds,
    samplesPerSec: (measuredSteps * accelerators * batchSize) / wallSeconds,
    steps: stepsDone,
    wallSeconds,
    verifiedSamples,
  };
}

/** Reads every sample of the data set once through `location` and checks it; returns how many. */
export async function verifyPass(options: { location: SampleLocation; dataSet: DataSet; expected: ReadonlyMap<string, number>; concurrency?: number }): Promise<number> {
  const samples = listSamples(options.dataSet);
  const concurrency = options.concurrency ?? 8;
  const reader = openReader(options.location, { concurrency });
  let next = 0;
  let failed = false;
  try {
    const worker = async (): Promise<void> => {
      for (let sample = samples[next++]; sample && !failed; sample = samples[next++]) {
        const { crc32c } = await reader.read(sample, { checksum: true }).catch((error: unknown) => {
          failed = true;
          throw error;
        });
        const expected = options.expected.get(sample.key);
        if (expected === undefined || crc32c !== expected) {
          failed = true;
          throw new VerificationError(sample.key, expected, crc32c ?? 0);
        }
      }
    };
    // allSettled: the reader is closed only once no worker still uses it.
    const settled = await Promise.allSettled(Array.from({ length: concurrency }, () => worker()));
    for (const result of settled) if (result.status === "rejected") throw result.reason;
  } finally {
    await reader.close();
  }
  return samples.length;
}

/** CRC32C of every sample, read from the data set's own directory: the truth every path is checked against. */
export async function expectedChecksums(dataSet: DataSet): Promise<Map<string, number>> {
  const reader = openReader({ kind: "posix", root: dataSet.root }, { concurrency: 4 });
  const expected = new Map<string, number>();
  try {
    for (const sample of listSamples(dataSet)) expected.set(sample.key, (await reader.read(sample, { checksum: true })).crc32c ?? 0);
  } finally {
    await reader.close();
  }
  return expected;
}

export interface SweepOptions extends Omit<TrainingOptions, "location" | "accelerators"> {
  /** Makes the path ready and says where to read; called before every run (cold paths reset here). */
  prepare: () => Promise<SampleLocation>;
  /** Highest accelerator count tried (the doubling stops there). */
  maxAccelerators: number;
  /** AU a count must reach to be "supported"; default 0.9 (MLPerf Storage's bar). */
  threshold?: number;
  /** Called after each run, e.g. to print a progress line. */
  onRun?: (result: RunResult) => void;
  /**
   * Cold paths: cap each run at one epoch (never below 2 steps), so no sample is read twice and
   * the run measures a cold cache, not one it filled itself a few steps earlier.
   */
  singleEpoch?: boolean;
  /** Run a fail within 0.1 of the bar once more and keep the better run; default true. */
  confirmBorderline?: boolean;
}

/** Largest accelerator count whose run held AU ≥ threshold; 0 when none did. */
export function acceleratorsSupported(runs: readonly RunResult[], threshold = 0.9): number {
  return runs.reduce((best, r) => (r.au >= threshold && r.accelerators > best ? r.accelerators : best), 0);
}

/**
 * Doubles the accelerator count (1, 2, 4, …) until a run falls below the threshold, then
 * bisects between the last pass and the first fail until they are neighbours. A fail within
 * 0.1 of the bar is run once more and the better run kept: a 2-core machine is noisy, and one
 * unlucky run should not decide the result. Returns every run, in the order run.
 */
export async function sweep(options: SweepOptions): Promise<RunResult[]> {
  const threshold = options.threshold ?? 0.9;
  const runs: RunResult[] = [];
  const sampleCount = listSamples(options.dataSet).length;
  const stepsFor = (accelerators: number): number =>
    options.singleEpoch ? Math.max(2, Math.min(options.steps, Math.floor(sampleCount / (accelerators * options.dataSet.workload.batchSize)))) : options.steps;
  const measure = async (accelerators: number): Promise<boolean> => {
    options.signal?.throwIfAborted(); // never prepare (start agents, mounts) once interrupted
    const steps = stepsFor(accelerators);
    let result = await runTraining({ ...options, steps, location: await options.prepare(), accelerators });
    runs.push(result);
    options.onRun?.(result);
    if ((options.confirmBorderline ?? true) && result.au < threshold && result.au >= threshold - 0.1) {
      options.signal?.throwIfAborted();
      const again = await runTraining({ ...options, steps, location: await options.prepare(), accelerators });
      runs.push(again);
      options.onRun?.(again);
      if (again.au > result.au) result = again;
    }
    return result.au >= threshold;
  };
  let pass = 0;
  let fail: number | undefined;
  for (let n = 1; n <= options.maxAccelerators; n = n * 2 > options.maxAccelerators && n < options.maxAccelerators ? options.maxAccelerators : n * 2) {
    if (await measure(n)) pass = n;
    else {
      fail = n;
      break;
    }
  }
  while (fail !== undefined && fail - pass > 1) {
    const mid = Math.floor((pass + fail) / 2);
    if (await measure(mid)) pass = mid;
    else fail = mid;
  }
  return runs;
}
