// `npm run bench:train [-- --workload resnet50|unet3d|trajectory|all --path NAME[,NAME] --quick
// --first-byte-ms 30 --stream-mib-s 64 --out bench/results --manifest --agent-arg=--FLAG=VALUE]`: the MLPerf Storage-style training
// feed benchmark. Per workload: generate the data set, checksum every sample, build every data
// path (paths.ts), sweep accelerator counts on each with every read verified, run the PyTorch
// loaders (trajectory), and write JSON, Markdown and a PNG chart. Nothing is written unless
// every path that produced numbers was verified over at least one full pass.
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { TrainReport } from "./train/report.ts";
import type { LoaderResult, PathResult } from "./train/types.ts";

// Every emulated reader thread is a libuv pool request for POSIX paths; the default pool of 4
// would measure libuv, not the path. The size is read once, at the pool's first use, so set it
// in a fresh process before anything runs (heavy modules are imported only after this).
const THREADPOOL = "128";
if (process.env.UV_THREADPOOL_SIZE === undefined) {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: "inherit", env: { ...process.env, UV_THREADPOOL_SIZE: THREADPOOL } });
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
  const code = await new Promise<number>((resolve) => child.on("exit", (c, s) => resolve(c ?? (s ? 128 : 1))));
  process.exit(code);
}

function fail(message: string): never {
  process.stderr.write(`bench:train: ${message}\n`);
  process.exit(2);
}

const OPTIONS = {
  workload: { type: "string", default: "trajectory" },
  path: { type: "string" },
  quick: { type: "boolean", default: false },
  "first-byte-ms": { type: "string", default: "30" },
  // One HTTPS stream across clouds commonly gets tens of MiB/s; 64 is a mid-range assumption, a flag to change.
  "stream-mib-s": { type: "string", default: "64" },
  out: { type: "string", default: "bench/results" },
  "max-accelerators": { type: "string" },
  steps: { type: "string" },
  files: { type: "string" },
  "keep-work": { type: "boolean", default: false },
  // A `ferry agent` flag for the agent paths (repeatable, e.g. --agent-arg=--passthrough-budget=50%): what a setting buys, measured; named in the results.
  "agent-arg": { type: "string", multiple: true },
  // Publish the set's dataset manifest after the upload, as `ferry replicate` does: agents then read metadata from it, not a HEAD per file.
  manifest: { type: "boolean", default: false },
} as const;

function parseFlags(): ReturnType<typeof parseArgs<{ strict: true; options: typeof OPTIONS }>> {
  try {
    return parseArgs({ strict: true, options: OPTIONS });
  } catch (error) {
    // Node's parseArgs says which flag is unknown or lacks a value; one line is enough.
    fail(error instanceof Error ? error.message.replace(/\s*\n\s*/g, " ") : String(error));
  }
}

const { values } = parseFlags();

function numberFlag(name: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < min) fail(`--${name} must be a number ≥ ${min} (got ${JSON.stringify(text)})`);
  return value;
}

const PATH_NAMES = ["agent-mount-cold", "agent-mount-warm", "agent-s3-cold", "agent-s3-warm", "agent-pool-peer", "edge-direct", "sync-then-local", "rclone-vfs", "s3fs", "local-disk"];

const { isWorkloadName } = await import("./train/workloads.ts");
const workloadNames = values.workload === "all" ? (["trajectory", "resnet50", "unet3d"] as const) : [values.workload];
for (const w of workloadNames) if (!isWorkloadName(w)) fail(`--workload must be resnet50, unet3d, trajectory or all (got ${JSON.stringify(w)})`);
const mode = values.quick ? "quick" : "full";
const config = Object.freeze({
  mode,
  shaper: { firstByteMs: numberFlag("first-byte-ms", values["first-byte-ms"], 30, 0), streamMiBps: numberFlag("stream-mib-s", values["stream-mib-s"], 64, 0) },
  // Steps per run; default per workload, below.
  steps: values.steps === undefined ? undefined : Math.round(numberFlag("steps", values.steps, 5, 2)),
  maxAccelerators: Math.round(numberFlag("max-accelerators", values["max-accelerators"], values.quick ? 64 : 256, 1)),
  // A run already this slow is far below the bar; more reads would only cost time. Enforced
  // per read, not only between steps (emulator.ts): one unet3d step through a slow path reads
  // ≈ 1 GB and took a minute on its own.
  deadlineSeconds: values.quick ? 8 : 120,
  files: values.files === undefined ? undefined : Math.round(numberFlag("files", values.files, 1, 1)),
  agentArgs: values["agent-arg"] ?? [],
  manifest: values.manifest,
  pathFilter: values.path?.split(",").map((p) => p.trim()).filter((p) => p !== ""),
  out: values.out,
});
for (const p of config.pathFilter ?? []) if (!PATH_NAMES.includes(p)) fail(`--path: no such data path: ${p} (one of ${PATH_NAMES.join(", ")})`);

const json = !process.stderr.isTTY;
const benchStarted = performance.now();
const elapsed = (): number => Math.round((performance.now() - benchStarted) / 100) / 10;
const log = (line: string): void => {
  process.stderr.write(json ? JSON.stringify({ event: "log", t: elapsed(), msg: line }) + "\n" : `[${elapsed().toFixed(0).padStart(4)} s] ${line}\n`);
};

const { DATA_SET_FILES, generateDataSet } = await import("./train/datasets.ts");
const { expectedChecksums } = await import("./train/emulator.ts");
const { measurePath } = await import("./train/measure-path.ts");
const { computeRatios, machineInfo, markdownReport, writeReport } = await import("./train/report.ts");
const { createDataPaths } = await import("./train/paths.ts");
const { runLoaders } = await import("./train/loaders.ts");

log(`bench:train ${mode}: workloads ${workloadNames.join(", ")}; UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? "?"}`);
if (config.agentArgs.length > 0) log(`agent paths run \`ferry agent\` with ${config.agentArgs.join(" ")}`);
log(`origin shaped: ${config.shaper.firstByteMs} ms to first byte, ${config.shaper.streamMiBps > 0 ? `${config.shaper.streamMiBps} MiB/s per stream` : "no per-stream cap"}`);

// Ctrl-C or a timeout must not leave agents, mounts and wrangler behind: stop at the next step
// or run boundary (no new agent or mount is started after that), then close everything. A
// terminal's Ctrl-C reaches this process twice (directly and forwarded by the launcher above),
// so only a signal more than 2 s after the first kills at once.
const interrupt = new AbortController();
let interruptedAt = 0;
const onSignal = (signal: NodeJS.Signals): void => {
  if (interrupt.signal.aborted) {
    if (performance.now() - interruptedAt > 2000) process.exit(130);
    return;
  }
  interruptedAt = performance.now();
  log(`${signal}: stopping at the next step, closing data paths; no results will be written (again to kill at once)`);
  interrupt.abort(new Error(`interrupted by ${signal}`));
  process.exitCode = 130;
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);
for (const name of workloadNames) {
  if (!isWorkloadName(name) || interrupt.signal.aborted) continue;
  const started = performance.now();
  const workDir = await mkdtemp(join(tmpdir(), `ferry-bench-train-${name}-`));
  try {
    const files = config.files ?? DATA_SET_FILES[mode][name];
    const dataSet = await generateDataSet({ workload: name, dir: join(workDir, "data"), files });
    const expected = await expectedChecksums(dataSet);
    const w = dataSet.workload;
    log(`${name}: ${dataSet.files.length} files, ${(dataSet.totalBytes / 2 ** 20).toFixed(1)} MiB, ${expected.size} samples of ${w.sampleBytes} B; batch ${w.batchSize}, ${w.computeSeconds} s compute, ${w.readThreads} read threads`);
    // At least 5 steps (quick) or 15 (full), and enough that the measured steps span ≥ 1 s (quick)
    // or ≥ 10 s (full) of compute, so trajectory's 0.08 s steps are not timer noise.
    const steps = config.steps ?? (mode === "quick" ? Math.max(5, 1 + Math.ceil(1 / w.computeSeconds)) : Math.max(15, 1 + Math.ceil(10 / w.computeSeconds)));
    log(`${name}: ${steps} steps per run (the first not measured), up to ${config.maxAccelerators} accelerators`);
    const built = await createDataPaths({ dataSet, workDir: join(workDir, "paths"), shaper: config.shaper, agentArgs: config.agentArgs, manifest: config.manifest, log });
    const results: PathResult[] = [];
    let loaders: LoaderResult[] = [];
    try {
      const chosen = built.paths.filter((p) => !config.pathFilter || config.pathFilter.includes(p.name));
      for (const path of chosen) {
        interrupt.signal.throwIfAborted();
        const result = await measurePath({
          path,
          dataSet,
          expected,
          steps,
          maxAccelerators: config.maxAccelerators,
          deadlineSeconds: config.deadlineSeconds,
          signal: interrupt.signal,
          log,
          onRun: (pathName, r) => {
            if (json) process.stderr.write(JSON.stringify({ event: "run", t: elapsed(), workload: name, path: pathName, accelerators: r.accelerators, au: r.au, mibPerSec: r.mibPerSec, steps: r.steps, verifiedSamples: r.verifiedSamples, wallSeconds: r.wallSeconds, ...(r.cutAtDeadline ? { cutAtDeadline: r.cutAtDeadline, basis: r.basis } : {}) }) + "\n");
            else log(`  ${pathName.padEnd(18)} ${String(r.accelerators).padStart(4)} accelerators  AU ${(r.au * 100).toFixed(1).padStart(5)}%  ${r.mibPerSec.toFixed(1).padStart(8)} MiB/s  (${r.steps} steps, ${r.verifiedSamples} samples verified${r.cutAtDeadline ? `; cut at the deadline ${r.cutAtDeadline}, over ${r.basis ?? "?"}` : ""})`);
          },
        });
        results.push(result);
        log(`${path.name}: ${result.skipped ? `skipped (${result.skipped})` : `${result.acceleratorsSupported} accelerators at AU ≥ 90%`}`);
      }
      interrupt.signal.throwIfAborted();
      if (name === "trajectory") loaders = await runLoaders({ paths: chosen, dataSet, expectedSamples: expected.size, log });
    } finally {
      await built.close();
    }
    interrupt.signal.throwIfAborted();
    const report: TrainReport = {
      date: new Date().toISOString(),
      machine: machineInfo(),
      workload: dataSet.workload,
      dataSet: { files: dataSet.files.length, bytes: dataSet.totalBytes },
      shaper: config.shaper,
      ...(config.manifest ? { manifest: true } : {}),
      mode,
      durationSeconds: (performance.now() - started) / 1000,
      paths: results,
      loaders,
      ratios: computeRatios(results),
    };
    const written = await writeReport(report, config.out);
    process.stdout.write(markdownReport(report) + "\n");
    log(`wrote ${written.json}, ${written.markdown}, ${written.png} (${report.durationSeconds.toFixed(0)} s)`);
  } catch (error) {
    if (!interrupt.signal.aborted) throw error;
    log("interrupted: data paths closed, nothing written");
  } finally {
    if (values["keep-work"]) log(`kept work directory: ${workDir}`);
    else await rm(workDir, { recursive: true, force: true });
  }
}
