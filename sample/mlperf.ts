// Generates MLPerf Storage-shaped data sets (the shapes DLIO uses): resnet50-like files of
// records packed back to back, and unet3d-like files holding one large sample each. The bytes
// are an AES-128-CTR keystream keyed by (seed, workload, file index): incompressible like real
// JPEG/NumPy payloads, about 1 GB/s per core, and the same seed always gives the same bytes.
// A file only ever appears under its final name complete (temp name in the same directory, then rename).
import { createCipheriv, createHash } from "node:crypto";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { SampleFile } from "../bench/train/types.ts";
import { SampleWriteError } from "./write-error.ts";

export type MlperfWorkload = "resnet50" | "unet3d";

/**
 * Bytes per sample, from DLIO's MLPerf Storage configs: resnet50 `record_length_bytes: 114660`
 * (an ImageNet JPEG record); unet3d `record_length_bytes: 146600628` (the KiTS19 mean, 146.6 MB
 * in decimal units = 139.8 MiB). DLIO draws unet3d sizes around that mean; we use the mean for
 * every file so a sample's range is known without a listing.
 */
export const MLPERF_SAMPLE_BYTES: Readonly<Record<MlperfWorkload, number>> = Object.freeze({ resnet50: 114_660, unet3d: 146_600_628 });

/**
 * Records per resnet50 file. DLIO packs 1251 per TFRecord file; 64 (7.3 MB files) keeps a data set
 * of a few thousand records spread over enough files to shard across readers on a small machine.
 */
export const RESNET50_DEFAULT_RECORDS_PER_FILE = 64;

export const MLPERF_LIMITS = Object.freeze({ files: { min: 1, max: 1_000_000 }, recordsPerFile: { min: 1, max: 100_000 }, seed: { min: 0, max: 4_294_967_295 } });

export type MlperfOptions = {
  workload: MlperfWorkload;
  /** Directory for the files; created if missing. Existing files of the same names are replaced. */
  outDir: string;
  /** Files to write. */
  files: number;
  /** resnet50 only: records per file. Default RESNET50_DEFAULT_RECORDS_PER_FILE; unet3d is always 1. */
  recordsPerFile?: number;
  /** Same seed, same bytes. Default 0. */
  seed?: number;
  /** Called after each file is in place, e.g. to show progress. */
  onFile?: (progress: { index: number; total: number; file: SampleFile }) => void;
};

export type MlperfResult = { outDir: string; files: SampleFile[]; totalBytes: number; sampleBytes: number; samplesPerFile: number };

/** An option out of range; `option` names it so the CLI can point at its own flag. */
export class MlperfOptionError extends RangeError {
  override readonly name = "MlperfOptionError";
  readonly option: keyof typeof MLPERF_LIMITS;

  constructor(option: keyof typeof MLPERF_LIMITS, message: string) {
    super(message);
    this.option = option;
  }
}


export function mlperfFileName(workload: MlperfWorkload, index: number): string {
  // DLIO writes .tfrecord / .npz; ours hold no such framing, so the extension says "raw bytes".
  return `${workload}_${String(index).padStart(6, "0")}.${workload === "resnet50" ? "rec" : "bin"}`;
}

function checked(option: keyof typeof MLPERF_LIMITS, value: number): number {
  const { min, max } = MLPERF_LIMITS[option];
  if (!Number.isInteger(value) || value < min || value > max) throw new MlperfOptionError(option, `${option} must be a whole number from ${min} to ${max} (got ${value})`);
  return value;
}

// 8 MiB per write: big enough for the disk, small enough that a 146.6 MB file never sits in memory.
const CHUNK_BYTES = 8 * 1024 * 1024;

/** The keystream of one file: a key per (workload, seed, file), so files are unrelated and any one can be regenerated alone. */
function fileCipher(workload: MlperfWorkload, seed: number, index: number): { update(zeros: Uint8Array): Buffer } {
  const key = createHash("sha256").update(`ferry-mlperf-v1/${workload}/${seed}/${index}`).digest().subarray(0, 16);
  return createCipheriv("aes-128-ctr", key, Buffer.alloc(16));
}

async function writeOneFile(path: string, tempPath: string, bytes: number, cipher: { update(zeros: Uint8Array): Buffer }, zeros: Uint8Array): Promise<void> {
  const handle = await open(tempPath, "w");
  try {
    for (let written = 0; written < bytes; ) {
      const length = Math.min(CHUNK_BYTES, bytes - written);
      const chunk = cipher.update(length === zeros.length ? zeros : zeros.subarray(0, length));
      await handle.write(chunk, 0, chunk.length, written);
      written += length;
    }
  } finally {
    await handle.close();
  }
  await rename(tempPath, path);
}

/** Writes the whole data set, one file at a time, and reports what it wrote (names relative to outDir). */
export async function writeMlperfDataset(options: MlperfOptions): Promise<MlperfResult> {
  const files = checked("files", options.files);
  const seed = checked("seed", options.seed ?? 0);
  const samplesPerFile = options.workload === "resnet50" ? checked("recordsPerFile", options.recordsPerFile ?? RESNET50_DEFAULT_RECORDS_PER_FILE) : 1;
  if (options.workload === "unet3d" && options.recordsPerFile !== undefined && options.recordsPerFile !== 1) {
    throw new MlperfOptionError("recordsPerFile", `recordsPerFile applies to resnet50 only; unet3d files hold one sample (got ${options.recordsPerFile})`);
  }
  const sampleBytes = MLPERF_SAMPLE_BYTES[options.workload];
  const fileBytes = sampleBytes * samplesPerFile;
  const outDir = resolve(options.outDir);
  try {
    await mkdir(outDir, { recursive: true });
  } catch (cause) {
    throw new SampleWriteError(`cannot create output directory: ${outDir}`, { path: outDir, cause });
  }
  const zeros = new Uint8Array(Math.min(CHUNK_BYTES, fileBytes));
  const written: SampleFile[] = [];
  for (let index = 0; index < files; index++) {
    const name = mlperfFileName(options.workload, index);
    const path = join(outDir, name);
    // Hidden and pid-tagged, so a killed run leaves only an obvious leftover and two runs never share one.
    const tempPath = join(outDir, `.${name}.${process.pid}.tmp`);
    try {
      await writeOneFile(path, tempPath, fileBytes, fileCipher(options.workload, seed, index), zeros);
    } catch (cause) {
      // The half-written temp file is useless; removing it is best effort since we are already failing.
      await rm(tempPath, { force: true }).catch(() => undefined);
      const reason = cause instanceof Error ? (cause.message.split(",")[0] ?? cause.message) : String(cause);
      throw new SampleWriteError(`cannot write sample file: ${path} (${reason})`, { path, cause });
    }
    const file = { name, bytes: fileBytes };
    written.push(file);
    options.onFile?.({ index, total: files, file });
  }
  return { outDir, files: written, totalBytes: fileBytes * files, sampleBytes, samplesPerFile };
}
