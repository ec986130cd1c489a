// `ferry sample`: parses flags, runs the synthetic dataset generator in sample/, and reports
// progress on stderr (a bar on a terminal, JSON lines otherwise) and a summary on stdout.
import { parseArgs } from "node:util";
import { CliError, UsageError } from "./cli-error.ts";
import { SAMPLE_DEFAULTS, SAMPLE_LIMITS } from "../sample/settings.ts";
import type { SampleSettings } from "../sample/settings.ts";
import type { EpisodeProgress, SampleResult } from "../sample/trajectories.ts";

const HELP = `usage: ferry sample --out DIR [options]

Write a synthetic robot-trajectory dataset: one HDF5 file per episode
(DIR/episode_000000.hdf5, ...) with camera images, qpos and action.
The same flags always give byte-identical files.

options:
  --out DIR        directory to write into (created if missing)   required
  --episodes N     episode files to write                          default ${SAMPLE_DEFAULTS.episodes}
  --frames N       time steps per episode                          default ${SAMPLE_DEFAULTS.frames}
  --cameras N      cameras per episode                             default ${SAMPLE_DEFAULTS.cameras}
  --height H       image height in pixels                          default ${SAMPLE_DEFAULTS.height}
  --width W        image width in pixels                           default ${SAMPLE_DEFAULTS.width}
  --seed S         seed (0 to ${SAMPLE_LIMITS.seed.max})                          default ${SAMPLE_DEFAULTS.seed}
  --json           print the summary as JSON: {out, episodes, files, totalBytes}
  -h, --help       show this help
`;

const NUMERIC_FLAGS = ["episodes", "frames", "cameras", "height", "width", "seed"] as const satisfies readonly (keyof SampleSettings)[];

function wholeNumber(flag: keyof SampleSettings, text: string | undefined): number {
  if (text === undefined) return SAMPLE_DEFAULTS[flag];
  const { min, max } = SAMPLE_LIMITS[flag];
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max)) {
    throw new UsageError(`--${flag} must be a whole number from ${min} to ${max} (got ${JSON.stringify(text)})`);
  }
  return value;
}

function isParseArgsError(error: unknown): error is TypeError {
  return error instanceof TypeError && "code" in error && String(error.code).startsWith("ERR_PARSE_ARGS");
}

function parseFlags(argv: string[]): { outDir: string; json: boolean; help: boolean; settings: SampleSettings } {
  try {
    return checkFlags(argv);
  } catch (error) {
    // Node's parseArgs messages can span lines ("... is ambiguous.\nDid you forget ..."); keep one.
    if (isParseArgsError(error)) throw new UsageError(error.message.replace(/\s*\n\s*/g, " "));
    throw error;
  }
}

function checkFlags(argv: string[]): { outDir: string; json: boolean; help: boolean; settings: SampleSettings } {
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
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const settings = { ...SAMPLE_DEFAULTS };
  if (values.help) return { outDir: "", json: false, help: true, settings };
  for (const flag of NUMERIC_FLAGS) settings[flag] = wholeNumber(flag, values[flag]);
  const outDir = values.out ?? "";
  if (outDir === "") throw new UsageError("--out is required: the directory to write episode files into");
  return { outDir, json: values.json, help: values.help, settings };
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

export async function run(argv: string[]): Promise<void> {
  const flags = parseFlags(argv);
  if (flags.help) {
    process.stdout.write(HELP);
    return;
  }
  // Loaded only now: it pulls in the HDF5 WebAssembly module (~0.3 s), which flag errors and --help skip.
  const { SampleWriteError, writeTrajectoryDataset } = await import("../sample/trajectories.ts");
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
