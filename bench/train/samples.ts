// Samples of a data set as the emulator sees them (a byte range of one file), the seeded
// shuffle that assigns them to accelerators, and the bench's errors. Within one epoch no
// sample is read twice, so accelerators of one step always read disjoint samples as long as
// the data set holds at least accelerators × batchSize samples.
import { createRandom, mix32 } from "../../sample/random.ts";
import type { DataSet } from "./types.ts";

export interface Sample {
  /** Stable id across runs and paths: "<file name>#<record index>"; the key of expected checksums. */
  key: string;
  /** File name relative to the data set root / S3 prefix. */
  file: string;
  offset: number;
  length: number;
}

export function sampleKey(file: string, record: number): string {
  return `${file}#${record}`;
}

/**
 * Every sample in file order. A file holding one sample is read whole (trajectory episodes
 * differ in size); a packed file holds floor(bytes / sampleBytes) records back to back.
 */
export function listSamples(dataSet: DataSet): Sample[] {
  const { sampleBytes, samplesPerFile } = dataSet.workload;
  const samples: Sample[] = [];
  for (const file of dataSet.files) {
    if (samplesPerFile <= 1) {
      samples.push({ key: sampleKey(file.name, 0), file: file.name, offset: 0, length: file.bytes });
      continue;
    }
    const records = Math.min(samplesPerFile, Math.floor(file.bytes / sampleBytes));
    for (let record = 0; record < records; record++) {
      samples.push({ key: sampleKey(file.name, record), file: file.name, offset: record * sampleBytes, length: sampleBytes });
    }
  }
  return samples;
}

/** Fisher–Yates with the sample generator's seeded PRNG: the same seed gives the same order everywhere. */
export function permutation(count: number, seed: number): Uint32Array {
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  const random = createRandom(seed);
  for (let i = count - 1; i > 0; i--) {
    const j = random.below(i + 1);
    const a = order[i] ?? 0;
    order[i] = order[j] ?? 0;
    order[j] = a;
  }
  return order;
}

/**
 * Sample indices for [step][accelerator][slot]: a fresh permutation per epoch (as DLIO shuffles
 * per epoch), dealt out step by step, accelerator by accelerator. Samples repeat only once an
 * epoch is used up.
 */
export function assignSamples(options: { sampleCount: number; accelerators: number; batchSize: number; steps: number; seed: number }): number[][][] {
  const { sampleCount, accelerators, batchSize, steps, seed } = options;
  if (sampleCount < 1) throw new RangeError("cannot assign samples: the data set is empty");
  const epochs = new Map<number, Uint32Array>();
  const at = (position: number): number => {
    const epoch = Math.floor(position / sampleCount);
    let order = epochs.get(epoch);
    if (!order) {
      order = permutation(sampleCount, mix32(seed, epoch));
      epochs.set(epoch, order);
    }
    return order[position % sampleCount] ?? 0;
  };
  const plan: number[][][] = [];
  let position = 0;
  for (let step = 0; step < steps; step++) {
    const perAccelerator: number[][] = [];
    for (let a = 0; a < accelerators; a++) {
      const batch: number[] = [];
      for (let slot = 0; slot < batchSize; slot++) batch.push(at(position++));
      perAccelerator.push(batch);
    }
    plan.push(perAccelerator);
  }
  return plan;
}

/** Reading a sample failed (HTTP status, short file, network); `sample` is the key. */
export class SampleReadError extends Error {
  override readonly name = "SampleReadError";
  readonly sample: string;

  constructor(message: string, options: { sample: string; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.sample = options.sample;
  }
}

/** The bytes read differ from the source: the bench must stop and write nothing. */
export class VerificationError extends Error {
  override readonly name = "VerificationError";
  readonly sample: string;
  readonly expected: number | undefined;
  readonly actual: number;

  constructor(sample: string, expected: number | undefined, actual: number) {
    super(
      expected === undefined
        ? `cannot verify sample: ${sample} (no expected checksum)`
        : `checksum mismatch: ${sample} (expected crc32c ${expected.toString(16)}, read ${actual.toString(16)})`,
    );
    this.sample = sample;
    this.expected = expected;
    this.actual = actual;
  }
}

/** A promise with its settle functions, for hand-offs between reader workers and the step loop. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve: (value: T) => void = () => undefined;
  let reject: (error: unknown) => void = () => undefined;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A batch can fail before the step loop awaits it; the loop still sees the rejection when it does.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}
