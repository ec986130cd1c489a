// Emulates training the way MLPerf Storage's DLIO does: every emulated accelerator has its own
// pool of `readThreads` readers that fetch its next batch while the current one "computes"
// (a sleep of the published H100 time), and a barrier ends each step when every accelerator has
// finished computing. AU = compute time ÷ wall time over all steps but the first (the first
// step pays for start-up, not for the data path). No result comes from bytes that failed a check.
// A run past its deadline starts no new read; RunResult.cutAtDeadline and basis say what its
// numbers then cover.
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
  /**
   * Bounds hopeless runs: once this much wall time has passed no new read is issued (reads in
   * flight finish and are still verified), and the run ends after the current step, or as soon
   * as those reads are done when the current step cannot complete. The result says so
   * (`cutAtDeadline`) and what its AU and MiB/s were computed over (`basis`).
   */
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
  /** Checked before every new read: true once the run ends or passes its deadline. */
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
  const deadlineMs = options.deadlineSeconds === undefined ? Infinity : options.deadlineSeconds * 1000;
  let stop = false;
  let cut = false; // the deadline passed: no new read starts
  let verifiedSamples = 0;
  // Bytes of every sample read (and checked) so far: a run cut inside a step reports its rate from these.
  let deliveredBytes = 0;
  const started = performance.now();
  const feeds = Array.from({ length: accelerators }, (_, a) =>
    acceleratorFeed({
      batches: plan.map((perAccelerator) => (perAccelerator[a] ?? []).map((i) => samples[i] ?? { key: "", file: "", offset: 0, length: 0 })),
      readThreads,
      prefetchBatches: options.prefetchBatches ?? 1,
      reader,
      verify: options.verify,
      onSample: (sample, verified) => {
        deliveredBytes += sample.length;
        if (verified) {
          verifiedSamples++;
          options.onVerified?.(sample.key);
        }
      },
      stopped: () => stop || cut,
    }),
  );
  // Settles once every reader has stopped: after a cut, a step whose batch is still missing
  // samples can never complete, and this is when the run gives up on it.
  const drained = Promise.all(feeds.map((f) => f.done)).then(() => "drained" as const);
  // A slow path (whole 146.6 MB unet3d samples at tens of MiB/s) can spend a minute in one
  // step, so the deadline is enforced per read, not only between steps. Waking every feed
  // matters: a reader parked ahead of its prefetch window would otherwise wait for a step that
  // another feed can no longer complete, and `drained` would never settle.
  const deadlineTimer = Number.isFinite(deadlineMs)
    ? setTimeout(() => {
        cut = true;
        for (const feed of feeds) feed.computing(Number.MAX_SAFE_INTEGER);
      }, deadlineMs)
    : undefined;
  let stepsDone = 0;
  let measuredFrom: number | undefined; // end of step 0
  let measuredDeliveredFrom = 0; // deliveredBytes at the end of step 0
  let endedAt = started;
  let endedDelivered = 0;
  let cutAtDeadline: RunResult["cutAtDeadline"];
  try {
    for (let step = 0; step < options.steps; step++) {
      const ready = Promise.all(feeds.map((feed) => feed.batch(step))).then(() => "ready" as const);
      // When the readers drained first, give `ready` one macrotask to settle (its last sample
      // may have landed just before the readers stopped); still missing then, it never will.
      if ((await Promise.race([ready, drained])) === "drained" && (await Promise.race([ready, sleep(0).then(() => "missing" as const)])) === "missing") {
        // Readers stopped at the deadline and this step's batch is incomplete: end here.
        cutAtDeadline = "mid-step";
        endedAt = performance.now();
        endedDelivered = deliveredBytes;
        break;
      }
      await Promise.all(
        feeds.map(async (feed) => {
          feed.computing(step);
          await computeFor(computeSeconds * 1000);
        }),
      );
      stepsDone = step + 1;
      endedAt = performance.now();
      endedDelivered = deliveredBytes;
      if (step === 0) {
        measuredFrom = endedAt;
        measuredDeliveredFrom = deliveredBytes;
      }
      const elapsedSeconds = (endedAt - started) / 1000;
      options.onStep?.({ step, steps: options.steps, elapsedSeconds });
      options.signal?.throwIfAborted();
      if (step + 1 < options.steps && cut) {
        cutAtDeadline = "between-steps";
        break;
      }
    }
  } finally {
    clearTimeout(deadlineTimer);
    stop = true;
    for (const feed of feeds) feed.computing(Number.MAX_SAFE_INTEGER); // wake waiting workers so they see `stop`
    await drained;
    await reader.close();
  }
  // What the numbers are computed over. DLIO's rule: every completed step but the first, from
  // the end of step 0 to the end of the last completed step (reads still in flight after it
  // are prefetch no accelerator waited for). A run cut inside a step also counts the time it
  // spent stalled until its in-flight reads finished, with no compute credited for the
  // unfinished step: AU can only be understated, never reach the bar by being cut.
  // With no measured step at all (cut during step 0 or 1, e.g. edge-direct reading whole
  // 146.6 MB unet3d samples at tens of MiB/s), the window is the whole run, start-up included:
  // AU = compute of the steps completed (often none: 0) ÷ wall time, and MiB/s = the verified
  // bytes the run read ÷ wall time, i.e. the path's real read rate in that run.
  let computedSteps: number;
  let windowSeconds: number;
  let windowBytes: number;
  let basis: RunResult["basis"];
  if (measuredFrom !== undefined && stepsDone >= 2) {
    computedSteps = stepsDone - 1;
    windowSeconds = (endedAt - measuredFrom) / 1000;
    if (cutAtDeadline === "mid-step") {
      windowBytes = endedDelivered - measuredDeliveredFrom;
      basis = "measured-steps-and-stall";
    } else {
      // Throughput as DLIO reports it: the bytes of the batches consumed in the measured steps.
      windowBytes = 0;
      for (const perAccelerator of plan.slice(1, stepsDone)) for (const batch of perAccelerator) for (const i of batch) windowBytes += samples[i]?.length ?? 0;
      basis = "measured-steps";
    }
  } else {
    computedSteps = stepsDone;
    windowSeconds = (endedAt - started) / 1000;
    windowBytes = endedDelivered;
    basis = "whole-run";
  }
  const wallSeconds = Math.max(windowSeconds, 1e-6);
  return {
    accelerators,
    // Nominal compute, not measured sleeps: a busy event loop oversleeps, which must not look like utilisation.
    au: Math.min(1, (computedSteps * computeSeconds) / wallSeconds),
    mibPerSec: windowBytes / (1024 * 1024) / wallSeconds,
    samplesPerSec: (computedSteps * accelerators * batchSize) / wallSeconds,
    steps: stepsDone,
    wallSeconds,
    verifiedSamples,
    ...(cutAtDeadline ? { cutAtDeadline, basis } : {}),
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

/**
 * Sleeps at least `ms` by performance.now(). Node's timers run on libuv's millisecond-truncated
 * loop clock and can fire up to a millisecond early by the monotonic clock the window is measured
 * with, which would let a step look shorter than its compute (CI saw 0.1497 s for 3 × 50 ms).
 */
async function computeFor(ms: number): Promise<void> {
  const until = performance.now() + ms;
  for (let left = ms; left > 0; left = until - performance.now()) await sleep(left);
}
