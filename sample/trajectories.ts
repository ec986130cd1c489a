// Generates a synthetic robot-trajectory dataset: one HDF5 file per episode, named
// `episode_NNNNNN.hdf5`. Same settings → byte-identical files. A file only ever appears under
// its final name complete: it is written to a hidden temp name in the same directory, then renamed.
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { loadHdf5, writeEpisodeFile } from "./episode-file.ts";
import { mix32 } from "./random.ts";
import { resolveSampleSettings } from "./settings.ts";
import type { SampleSettings } from "./settings.ts";
import { SampleWriteError } from "./write-error.ts";

export { SampleWriteError };

export { SAMPLE_DEFAULTS, SAMPLE_LIMITS, SampleOptionError, resolveSampleSettings } from "./settings.ts";
export type { SampleSettings } from "./settings.ts";

export type SampleFile = { path: string; bytes: number };

export type EpisodeProgress = SampleFile & {
  /** Index of the episode just written. */
  index: number;
  /** Episodes in the whole run. */
  total: number;
};

export type SampleOptions = Partial<SampleSettings> & {
  /** Directory for the episode files; created if missing. Existing episode files are replaced. */
  outDir: string;
  /** Called after each episode file is in place, e.g. to show progress. */
  onEpisode?: (progress: EpisodeProgress) => void;
};

export type SampleResult = {
  /** Absolute path of the output directory. */
  outDir: string;
  settings: Readonly<SampleSettings>;
  /** One entry per episode, in episode order. */
  files: SampleFile[];
  totalBytes: number;
};


export function episodeFileName(index: number): string {
  return `episode_${String(index).padStart(6, "0")}.hdf5`;
}

/** The cause in a few words: "ENOSPC: no space left on device" for fs errors (their paths are ours already). */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error); // h5wasm throws plain strings for some failures
  const isSystemError = "code" in error && typeof error.code === "string";
  return isSystemError ? (error.message.split(",")[0] ?? error.message) : error.message;
}

/** Writes the whole dataset, one episode at a time, and reports what it wrote. */
export async function writeTrajectoryDataset(options: SampleOptions): Promise<SampleResult> {
  const settings = resolveSampleSettings(options);
  const outDir = resolve(options.outDir);
  try {
    await mkdir(outDir, { recursive: true });
  } catch (cause) {
    throw new SampleWriteError(`cannot create output directory: ${outDir} (${describe(cause)})`, { path: outDir, cause });
  }
  await loadHdf5();

  const files: SampleFile[] = [];
  let totalBytes = 0;
  for (let index = 0; index < settings.episodes; index++) {
    const path = join(outDir, episodeFileName(index));
    // Hidden and pid-tagged, so a killed run leaves only an obvious leftover and two runs never share one.
    const tempPath = join(outDir, `.${episodeFileName(index)}.${process.pid}.tmp`);
    try {
      writeEpisodeFile(tempPath, {
        index,
        runSeed: settings.seed,
        episodeSeed: mix32(settings.seed, index),
        frames: settings.frames,
        cameras: settings.cameras,
        height: settings.height,
        width: settings.width,
      });
      await rename(tempPath, path);
    } catch (cause) {
      // The half-written temp file is useless; removing it is best effort since we are already failing.
      await rm(tempPath, { force: true }).catch(() => undefined);
      throw new SampleWriteError(`cannot write episode file: ${path} (${describe(cause)})`, { path, cause });
    }
    const { size: bytes } = await stat(path);
    files.push({ path, bytes });
    totalBytes += bytes;
    options.onEpisode?.({ path, bytes, index, total: settings.episodes });
  }
  return { outDir, settings, files, totalBytes };
}
