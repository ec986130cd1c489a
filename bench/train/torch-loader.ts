// Runs the real PyTorch DataLoader (torch_loader.py, Debian's /usr/bin/python3) over one
// data path and reads back its result: samples/s and MiB/s for one full pass, every sample
// checked against the CRC32 of its source file computed here.
import { crc32 } from "@node-rs/crc32";
import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { clientEnv } from "../../test/helpers/real-clients.ts";
import type { DataSet, LoaderResult, SampleLocation } from "./types.ts";

/** Debian's Python, which has python3-torch, python3-h5py and python3-boto3 (not a pyenv one). */
export const SYSTEM_PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("./torch_loader.py", import.meta.url));

export interface TorchLoaderOptions {
  location: SampleLocation;
  dataSet: DataSet;
  /** The data path's name, copied into the result. */
  pathName: string;
  /** DataLoader num_workers (0: load in the main process). */
  numWorkers: number;
  /** Killed after this long; default 1 hour. */
  timeoutMs?: number;
}

/** Why torch cannot run here (a message for a skip), or undefined when it can. */
export async function torchUnavailable(): Promise<string | undefined> {
  const result = await runPython(["-c", "import torch, h5py, boto3"], 120_000);
  return result.code === 0 ? undefined : `${SYSTEM_PYTHON} cannot import torch, h5py and boto3: ${result.stderr.trim().split("\n").pop() ?? ""}`;
}

async function fileCrc32(path: string): Promise<number> {
  let state = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 2 ** 20 })) state = crc32(chunk as Buffer, state);
  return state >>> 0;
}

function runPython(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // A clean environment: no AWS_* from outside (credentials travel in the config file).
    const child = spawn(SYSTEM_PYTHON, args, { env: clientEnv(undefined), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export async function runTorchLoader(options: TorchLoaderOptions): Promise<LoaderResult> {
  const { location, dataSet } = options;
  const files = [];
  for (const file of dataSet.files) files.push({ name: file.name, bytes: file.bytes, crc32: await fileCrc32(join(dataSet.root, file.name)) });
  const dir = await mkdtemp(join(tmpdir(), "ferry-torch-"));
  try {
    const config = join(dir, "config.json");
    // Mode 600: it may carry the read key.
    await writeFile(config, JSON.stringify({ location, files, numWorkers: options.numWorkers }), { mode: 0o600 });
    const result = await runPython([SCRIPT, config], options.timeoutMs ?? 3600_000);
    if (result.code !== 0) throw new Error(`torch loader failed on ${options.pathName} (exit ${result.code}): ${result.stderr.trim().split("\n").slice(-5).join(" | ")}`);
    const line = result.stdout.trim().split("\n").pop() ?? "";
    const parsed = JSON.parse(line) as { samplesPerSec: number; mibPerSec: number; verifiedSamples: number };
    if (parsed.verifiedSamples !== dataSet.files.length) throw new Error(`torch loader verified ${parsed.verifiedSamples} of ${dataSet.files.length} samples on ${options.pathName}`);
    return {
      path: options.pathName,
      loader: location.kind === "posix" ? "h5py" : "boto3",
      numWorkers: options.numWorkers,
      samplesPerSec: parsed.samplesPerSec,
      mibPerSec: parsed.mibPerSec,
      verifiedSamples: parsed.verifiedSamples,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
