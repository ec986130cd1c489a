// `ferry sample`: parses flags, runs the synthetic dataset generator in sample/ (HDF5 trajectories,
// or MLPerf Storage-shaped files with --workload), and reports progress on stderr (a bar on a
// terminal, JSON lines otherwise) and a summary on stdout.
import { parseArgs } from "node:util";
import { CliError, UsageError } from "./cli-error.ts";
import { SAMPLE_DEFAULTS, SAMPLE_LIMITS } from "../sample/settings.ts";
import type { SampleSettings } from "../sample/settings.ts";
import type { EpisodeProgress, SampleResult } from "../sample/trajectories.ts";
import { SampleWriteError } from "../sample/write-error.ts";
import { MLPERF_LIMITS, MLPERF_SAMPLE_BYTES, RESNET50_DEFAULT_RECORDS_PER_FILE, writeMlperfDataset } from "../sample/mlperf.ts";
import type { MlperfResult, MlperfWorkload } from "../sample/mlperf.ts";

/** Files written by default for the MLPerf shapes: small enough for a laptop, enough to shard. */
const MLPERF_DEFAULT_FILES: Readonly<Record<MlperfWorkload, number>> = Object.freeze({ resnet50: 16, unet3d: 2 });

const HELP = `usage: ferry sample --out DIR [--workload trajectory|resnet50|unet3d] [options]

Write a synthetic dataset. The same flags always give byte-identical files.
  trajectory  robot trajectories: one HDF5 file per episode
              (DIR/episode_000000.hdf5, ...) with camera images, qpos and action
  resnet50    MLPerf Storage resnet50 shape: files of ${MLPERF_SAMPLE_BYTES.resnet50}-byte records
              back to back (DIR/resnet50_000000.rec, ...), incompressible bytes
  unet3d      MLPerf Storage unet3d shape: one ${MLPERF_SAMPLE_BYTES.unet3d}-byte sample
              (146.6 MB) per file (DIR/unet3d_000000.bin, ...), incompressible bytes

options:
  --out DIR        directory to write into (created if missing)   required
  --workload W     trajectory, resnet50 or unet3d                  default trajectory
  --seed S         seed (0 to ${SAMPLE_LIMITS.seed.max})                          default ${SAMPLE_DEFAULTS.seed}
  --json           print the summary as JSON: out, files, totalBytes and the settings
  -h, --help       show this help

trajectory options:
  --episodes N     episode files to write                          default ${SAMPLE_DEFAULTS.episodes}
  --frames N       time steps per episode                          default ${SAMPLE_DEFAULTS.frames}
  --cameras N      cameras per episode                             default ${SAMPLE_DEFAULTS.cameras}
  --height H       image height in pixels                          default ${SAMPLE_DEFAULTS.height}
  --width W        image width in pixels                           default ${SAMPLE_DEFAULTS.width}

resnet50 and unet3d options:
  --files N        files to write                   default ${MLPERF_DEFAULT_FILES.resnet50} (resnet50), ${MLPERF_DEFAULT_FILES.unet3d} (unet3d)
  --records-per-file N   resnet50 records per file                 default ${RESNET50_DEFAULT_RECORDS_PER_FILE}
`;

const WORKLOADS = ["trajectory", "resnet50", "unet3d"] as const;
type WorkloadName = (typeof WORKLOADS)[number];
const TRAJECTORY_ONLY = ["episodes", "frames", "cameras", "height", "width"] as const;

type MlperfFlags = { workload: MlperfWorkload; files: number; recordsPerFile: number | undefined; seed: number };
type Flags = { outDir: string; json: boolean; help: boolean; settings: SampleSettings; mlperf: MlperfFlags | undefined };

const NUMERIC_FLAGS = ["episodes", "frames", "cameras", "height", "width", "seed"] as const satisfies readonly (keyof SampleSettings)[];

function wholeNumber(flag: keyof SampleSettings, text: string | undefined): number {
  if (text === undefined) return SAMPLE_DEFAULTS[flag];
  return boundedNumber(flag, text, SAMPLE_LIMITS[flag]);
}

function boundedNumber(flag: string, text: string, { min, max }: { min: number; max: number }): number {
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max)) {
    throw new UsageError(`--${flag} must be a whole number from ${min} to ${max} (got ${JSON.stringify(text)})`);
  }
  return value;
}

function isParseArgsError(error: unknown): error is TypeError {
  return error instanceof TypeError && "code" in error && String(error.code).startsWith("ERR_PARSE_ARGS");
}

function parseFlags(argv: string[]): Flags {
  try {
    return checkFlags(argv);
  } catch (error) {
    // Node's parseArgs messages can span lines ("... is ambiguous.\nDid you forget ..."); keep one.
    if (isParseArgsError(error)) throw new UsageError(error.message.replace(/\s*\n\s*/g, " "));
    throw error;
  }
}

function isWorkload(text: string): text is WorkloadName {
  return (WORKLOADS as readonly string[]).includes(text);
}

/** The MLPerf-shaped flags, or undefined for trajectories; flags of the other kind are usage errors, not silently ignored. */
function mlperfFlags(values: Record<string, string | boolean | undefined>, settings: SampleSettings): MlperfFlags | undefined {
  const workload = typeof values.workload === "string" ? values.workload : "trajectory";
  if (!isWorkload(workload)) throw new UsageError(`--workload must be one of ${WORKLOADS.join(", ")} (got ${JSON.stringify(workload)})`);
  const text = (flag: string): string | undefined => (typeof values[flag] === "string" ? values[flag] : undefined);
  if (workload === "trajectory") {
    for (const flag of ["files", "records-per-file"]) {
      if (text(flag) !== undefined) throw new UsageError(`--${flag} applies to --workload resnet50 or unet3d (trajectory files are set with --episodes)`);
    }
    return undefined;
  }
  for (const flag of TRAJECTORY_ONLY) {
    if (text(flag) !== undefined) throw new UsageError(`--${flag} applies to --workload trajectory only (use --files for ${workload})`);
  }
  const filesText = text("files");
  const recordsText = text("records-per-file");
  if (workload === "unet3d" && recordsText !== undefined) throw new UsageError("--records-per-file applies to --workload resnet50 only (a unet3d file holds one sample)");
  return {
    workload,
    files: filesText === undefined ? MLPERF_DEFAULT_FILES[workload] : boundedNumber("files", filesText, MLPERF_LIMITS.files),
    recordsPerFile: recordsText === undefined ? undefined : boundedNumber("records-per-file", recordsText, MLPERF_LIMITS.recordsPerFile),
    seed: settings.seed,
  };
}

function checkFlags(argv: string[]): Flags {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      out: { type: "string", short: "o" },
      episodes: { type: "string" },
      frames: { type: "string" },
      cameras: { type: "string" },
      height: { type: "string" },
      width: { type: "string" },
      seed: { type: "string" },
      workload: { type: "string" },
      files: { type: "string" },
      "records-per-file": { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const settings = { ...SAMPLE_DEFAULTS };
  if (values.help) return { outDir: "", json: false, help: true, settings, mlperf: undefined };
  for (const flag of NUMERIC_FLAGS) settings[flag] = wholeNumber(flag, values[flag]);
  const mlperf = mlperfFlags(values, settings);
  const outDir = values.out ?? "";
  if (outDir === "") throw new UsageError(`--out is required: the directory to write ${mlperf ? "sample" : "episode"} files into`);
  return { outDir, json: values.json, help: values.help, settings, mlperf };
}

/** Progress on stderr: a redrawn bar for people, one JSON object per line for machines. */
function progressReporter(stream: NodeJS.WriteStream, total: number): { onEpisode(p: EpisodeProgress): void; finish(): void } {
  if (!stream.isTTY) {
    return {
      onEpisode: (p) => stream.write(JSON.stringify({ event: "episode", index: p.index, done: p.index + 1, total: p.total, path: p.path, bytes: p.bytes }) + "\n"),
      finish: () => undefined,
    };
  }
  const width = 30;
  const draw = (done: number): void => {
    const filled = Math.round((width * done) / total);
    stream.write(`\rwriting [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total} episodes`);
  };
  draw(0); // big episodes take a while; show at once that work has started
  return {
    onEpisode: (p) => draw(p.index + 1),
    finish: () => stream.write("\r\x1b[K"), // erase the bar so the summary stands alone
  };
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit] ?? "TiB"}`;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

function summary(result: SampleResult): string {
  const s = result.settings;
  return (
    `wrote ${plural(result.files.length, "episode")} to ${result.outDir}: ${plural(s.cameras, "camera")} x ${plural(s.frames, "frame")} ` +
    `of ${s.width}x${s.height}, ${formatBytes(result.totalBytes)} (seed ${s.seed})`
  );
}

/** Progress for MLPerf-shaped files: the same two forms as for episodes. */
function fileProgress(stream: NodeJS.WriteStream): (p: { index: number; total: number; file: { name: string; bytes: number } }) => void {
  if (!stream.isTTY) return (p) => stream.write(JSON.stringify({ event: "file", index: p.index, done: p.index + 1, total: p.total, name: p.file.name, bytes: p.file.bytes }) + "\n");
  return (p) => stream.write(`\rwriting ${p.index + 1}/${p.total} files${p.index + 1 === p.total ? "\r\x1b[K" : ""}`);
}

async function runMlperf(outDir: string, json: boolean, mlperf: MlperfFlags): Promise<void> {
  let result: MlperfResult;
  try {
    result = await writeMlperfDataset({ ...mlperf, outDir, onFile: fileProgress(process.stderr) });
  } catch (error) {
    if (error instanceof SampleWriteError) throw new CliError(error.message, { cause: error });
    throw error;
  }
  if (json) {
    const { outDir: out, files, totalBytes, sampleBytes, samplesPerFile } = result;
    process.stdout.write(JSON.stringify({ out, workload: mlperf.workload, files, totalBytes, sampleBytes, samplesPerFile, seed: mlperf.seed }) + "\n");
  } else {
    process.stdout.write(
      `wrote ${plural(result.files.length, "file")} to ${result.outDir}: ${mlperf.workload}, ${plural(result.samplesPerFile, "sample")} of ${result.sampleBytes} bytes per file, ` +
        `${formatBytes(result.totalBytes)} (seed ${mlperf.seed})\n`,
    );
  }
}

export async function run(argv: string[]): Promise<void> {
  const flags = parseFlags(argv);
  if (flags.help) {
    process.stdout.write(HELP);
    return;
  }
  if (flags.mlperf) return runMlperf(flags.outDir, flags.json, flags.mlperf);
  // Loaded only now: it pulls in the HDF5 WebAssembly module (~0.3 s), which flag errors and --help skip.
  const { writeTrajectoryDataset } = await import("../sample/trajectories.ts");
  const progress = progressReporter(process.stderr, flags.settings.episodes);
  let result: SampleResult;
  try {
    result = await writeTrajectoryDataset({ ...flags.settings, outDir: flags.outDir, onEpisode: progress.onEpisode });
  } catch (error) {
    if (error instanceof SampleWriteError) throw new CliError(error.message, { cause: error });
    throw error;
  } finally {
    progress.finish();
  }
  if (flags.json) {
    const { outDir: out, files, totalBytes } = result;
    process.stdout.write(JSON.stringify({ out, episodes: files.length, files, totalBytes }) + "\n");
  } else {
    process.stdout.write(summary(result) + "\n");
  }
}
