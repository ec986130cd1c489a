// `npm run bench:replicate`: issue 6's benchmark. The same source data is copied by
// `ferry replicate` and by `rclone copy --checksum` (Debian's rclone) into the same local
// edge (`wrangler dev`, local R2), side by side, then a no-op rerun of each over a large
// set of objects. Targets: copy throughput ferry ÷ rclone ≥ 1.0; ferry's no-op ≤ 10 s.
//
// Fairness:
// - Same destination (one edge), same concurrency (ferry --concurrency = rclone --transfers
//   and --checkers), same part size and threshold (16 MiB), same parts in flight (4); each
//   tool copies into a fresh prefix of its own. Runs alternate (ferry, rclone, rclone,
//   ferry, …) and the best of --rounds runs per tool is kept: the machine is small and shared.
// - Each copy is checked afterwards by listing the destination (object count and bytes),
//   and each no-op by the tool's own report (ferry's summary, rclone's "Copied" log lines).
// - No-op set: --noop-objects tiny files (1 KiB), seeded ONCE by `ferry replicate
//   --concurrency 64` (the local edge takes ~150 small PUTs/s when the machine is idle and
//   ~50-80/s when it is busy, so 100,000 take 12-33 min; a seed per tool would double that).
//   Both no-ops then run against that same destination data: ferry decides from a LIST
//   plus its index; rclone --checksum from a LIST comparing size and MD5 (the single-part
//   ETag). Neither reads an object body. Seeding is reported on its own, in no tool's time.
// - Wall seconds decide "best"; each run's CPU seconds (user + system, /usr/bin/time) and
//   the load average are recorded too, since other work on the machine skews wall time.
// - Source: file:// (default) or --source gcs (the in-process GCS emulator, started here,
//   seeded directly in memory; rclone reads it through --gcs-endpoint, anonymously).
//   The no-op set is always file://: its source listing cost is the same for both tools.
//
// Modes: default/--quick (1,000 × 64 KiB + 2 × 32 MiB; no-op over 10,000), about 5 min on an
// idle 2-core machine; --full is the issue's size (10,000 × 64 KiB + 4 × 64 MiB; no-op over
// 100,000), 40 min or more. Size flags override either mode (recorded as such):
// --small N --small-kib K --large N --large-mib M --noop-objects N --noop-kib K --rounds N;
// also --concurrency N (16) --seed-concurrency N (64) --source file|gcs --skip-rclone
// --skip-noop. Results: bench/results/replicate.json (overwritten by each run).
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { projectRoot } from "../scripts/lib/edge-process.ts";
import { startLocalEdge, type LocalEdge, type TestKey } from "../test/helpers/local-edge.ts";
import { clientEnv, rcloneEnv, rcloneFlags, run, s3Client } from "../test/helpers/real-clients.ts";
import { startBenchSource, type BenchSource, type DatasetFile } from "./replicate-source.ts";

const { values } = parseArgs({
  options: {
    full: { type: "boolean", default: false },
    quick: { type: "boolean", default: false },
    small: { type: "string" },
    "small-kib": { type: "string", default: "64" },
    large: { type: "string" },
    "large-mib": { type: "string" },
    "noop-objects": { type: "string" },
    "noop-kib": { type: "string", default: "1" },
    concurrency: { type: "string", default: "16" },
    "seed-concurrency": { type: "string", default: "64" },
    rounds: { type: "string", default: "2" },
    source: { type: "string", default: "file" },
    "skip-rclone": { type: "boolean", default: false },
    "skip-noop": { type: "boolean", default: false },
  },
});
const full = values.full && !values.quick;
const sizeFlags = ["small", "small-kib", "large", "large-mib", "noop-objects", "noop-kib", "rounds"].filter((name) => process.argv.some((arg) => arg === `--${name}` || arg.startsWith(`--${name}=`)));
const mode = `${full ? "full" : "quick"}${sizeFlags.length > 0 ? ` (overridden: ${sizeFlags.join(", ")})` : ""}`;
const count = (name: string, fallback: number): number => {
  const text = values[name as keyof typeof values];
  const n = typeof text === "string" ? Number(text) : fallback;
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number, got ${String(text)}`);
  return n;
};
const settings = Object.freeze({
  small: count("small", full ? 10_000 : 1_000),
  smallKiB: count("small-kib", 64),
  large: count("large", full ? 4 : 2),
  largeMiB: count("large-mib", full ? 64 : 32),
  noopObjects: count("noop-objects", full ? 100_000 : 10_000),
  noopKiB: count("noop-kib", 1),
  concurrency: count("concurrency", 16),
  seedConcurrency: count("seed-concurrency", 64),
  rounds: Math.max(1, count("rounds", 2)),
  source: values.source === "gcs" ? "gcs" : "file",
});
if (values.source !== "file" && values.source !== "gcs") throw new Error(`--source must be file or gcs, got ${values.source}`);
const PART_MIB = 16;
const NOOP_TARGET_SECONDS = 10;
const say = (line: string) => process.stdout.write(`${line}\n`);
const mib = (bytes: number) => bytes / 2 ** 20;
const round2 = (n: number) => Math.round(n * 100) / 100;

/** The copy set: small objects spread over 50 folders, plus a few large ones. */
function copySet(): DatasetFile[] {
  const files: DatasetFile[] = [];
  for (let i = 0; i < settings.small; i++) files.push({ key: `shard-${String(i % 50).padStart(2, "0")}/sample_${String(i).padStart(6, "0")}.bin`, bytes: randomBytes(settings.smallKiB * 1024) });
  for (let i = 0; i < settings.large; i++) files.push({ key: `trajectory_${i}.h5`, bytes: randomBytes(settings.largeMiB * 2 ** 20) });
  return files;
}

interface Timed {
  tool: "ferry" | "rclone";
  phase: "copy" | "no-op";
  round: number;
  seconds: number;
  /** User + system CPU of the tool's process: less skewed by a busy machine than wall time. */
  cpuSeconds: number | undefined;
  loadAverage1m: number;
  ok: boolean;
  detail: string;
}

const TIME = "/usr/bin/time";
const haveTime = existsSync(TIME);

/** Runs a tool to completion: wall seconds, and CPU seconds when /usr/bin/time is there. */
async function measured(command: string, args: string[], env: NodeJS.ProcessEnv) {
  const cpuFile = join(work, "cpu.txt");
  const started = performance.now();
  const r = haveTime ? await run(TIME, ["-o", cpuFile, "-f", "%U %S", command, ...args], { env, timeoutMs: 7_200_000 }) : await run(command, args, { env, timeoutMs: 7_200_000 });
  const seconds = (performance.now() - started) / 1000;
  let cpuSeconds: number | undefined;
  if (haveTime && existsSync(cpuFile)) {
    const [user, sys] = readFileSync(cpuFile, "utf8").trim().split(/\s+/).slice(-2).map(Number);
    cpuSeconds = round2((user ?? 0) + (sys ?? 0));
    rmSync(cpuFile);
  }
  return { ...r, seconds, cpuSeconds };
}

async function listPrefix(edge: LocalEdge, key: TestKey, prefix: string): Promise<{ objects: number; bytes: number }> {
  const client = s3Client(edge.url, key);
  let objects = 0;
  let bytes = 0;
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: "datasets", Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      objects++;
      bytes += o.Size ?? 0;
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  client.destroy();
  return { objects, bytes };
}

const work = mkdtempSync(join(tmpdir(), "ferry-bench-"));
const results: Timed[] = [];
let seeding: { objects: number; seconds: number; objectsPerSecond: number } | undefined;
let edge: LocalEdge | undefined;
let source: BenchSource | undefined;
const startedAt = performance.now();
const loadAtStart = round2(loadavg()[0] ?? 0);
const rcloneVersion = (await run("rclone", ["version"]).catch(() => ({ stdout: "" }))).stdout.split("\n")[0]?.trim();
const files = copySet();
const copyBytes = files.reduce((sum, f) => sum + f.bytes.length, 0);
try {
  source = await startBenchSource({ kind: settings.source, dir: join(work, "copy-set"), files });
  say(`${mode}: copy set ${files.length} objects, ${mib(copyBytes).toFixed(1)} MiB from ${source.ferryUrl}; no-op set ${settings.noopObjects} × ${settings.noopKiB} KiB; concurrency ${settings.concurrency}`);
  edge = await startLocalEdge();
  const key = await edge.createKey(["all:datasets/"], { name: "bench" });
  const ferryEnv = clientEnv(undefined, { FERRY_EDGE_URL: edge.url, FERRY_ACCESS_KEY_ID: key.accessKeyId, FERRY_SECRET_ACCESS_KEY: key.secretAccessKey, ...source.env });
  const ferry = async (from: string, to: string, concurrency: number) => {
    const args = [join(projectRoot, "bin", "ferry.js"), "replicate", from, `s3://datasets/${to}/`, "--json", "--concurrency", String(concurrency), "--part-size", `${PART_MIB}MiB`];
    const r = await measured(process.execPath, args, ferryEnv);
    const summary = JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "{}") as { copied?: number; skipped?: number; failed?: number };
    if (r.code !== 0) say(`ferry failed (${r.code}): ${r.stderr.slice(-2000)}`);
    return { seconds: r.seconds, cpuSeconds: r.cpuSeconds, code: r.code, copied: summary.copied ?? -1, skipped: summary.skipped ?? -1, failed: summary.failed ?? -1 };
  };
  const rclone = async (from: string, fromFlags: string[], to: string) => {
    const args = ["copy", from, `:s3:datasets/${to}`, ...rcloneFlags(edge?.url ?? ""), ...fromFlags, "--transfers", String(settings.concurrency), "--checkers", String(settings.concurrency), "--checksum",
      "--s3-upload-cutoff", `${PART_MIB}M`, "--s3-chunk-size", `${PART_MIB}M`, "--s3-upload-concurrency", "4", "-v", "--stats", "0"];
    const r = await measured("rclone", args, { ...rcloneEnv(key), ...source?.env });
    if (r.code !== 0) say(`rclone failed (${r.code}): ${r.stderr.slice(-2000)}`);
    return { seconds: r.seconds, cpuSeconds: r.cpuSeconds, code: r.code, copied: (r.stderr.match(/: Copied \(/g) ?? []).length };
  };

  // Copy: alternate the order each round, a fresh prefix per run.
  for (let round = 1; round <= settings.rounds; round++) {
    const order: Array<"ferry" | "rclone"> = values["skip-rclone"] ? ["ferry"] : round % 2 === 1 ? ["ferry", "rclone"] : ["rclone", "ferry"];
    for (const tool of order) {
      const prefix = `copy-${tool}-${round}`;
      const r = tool === "ferry" ? await ferry(source.ferryUrl, prefix, settings.concurrency) : await rclone(source.rcloneRemote, source.rcloneFlags, prefix);
      const landed = await listPrefix(edge, key, `${prefix}/`);
      const ok = r.code === 0 && landed.objects === files.length && landed.bytes === copyBytes;
      results.push({ tool, phase: "copy", round, seconds: r.seconds, cpuSeconds: r.cpuSeconds, loadAverage1m: round2(loadavg()[0] ?? 0), ok, detail: `copied ${r.copied}; destination holds ${landed.objects} objects, ${landed.bytes} bytes` });
      say(`  ${tool} copy #${round}: ${r.seconds.toFixed(1)} s, ${(mib(copyBytes) / r.seconds).toFixed(1)} MiB/s${ok ? "" : `  NOT OK (${results.at(-1)?.detail})`}`);
    }
  }

  if (!values["skip-noop"] && settings.noopObjects > 0) {
    const noopDir = join(work, "noop-set");
    for (let i = 0; i < settings.noopObjects; i++) {
      const sub = join(noopDir, `part-${String(Math.floor(i / 1000)).padStart(3, "0")}`);
      if (i % 1000 === 0) mkdirSync(sub, { recursive: true });
      writeFileSync(join(sub, `item_${String(i).padStart(6, "0")}.bin`), randomBytes(settings.noopKiB * 1024));
    }
    say(`seeding ${settings.noopObjects} objects with ferry replicate --concurrency ${settings.seedConcurrency} …`);
    const seeded = await ferry(`file://${noopDir}`, "noop", settings.seedConcurrency);
    seeding = { objects: seeded.copied, seconds: round2(seeded.seconds), objectsPerSecond: round2(seeded.copied / seeded.seconds) };
    say(`  seeded ${seeded.copied} objects in ${seeded.seconds.toFixed(1)} s (${seeding.objectsPerSecond.toFixed(0)} objects/s)${seeded.failed === 0 ? "" : `, ${seeded.failed} FAILED`}`);
    for (let round = 1; round <= settings.rounds; round++) {
      const order: Array<"ferry" | "rclone"> = values["skip-rclone"] ? ["ferry"] : round % 2 === 1 ? ["rclone", "ferry"] : ["ferry", "rclone"];
      for (const tool of order) {
        if (tool === "ferry") {
          const r = await ferry(`file://${noopDir}`, "noop", settings.concurrency);
          results.push({ tool, phase: "no-op", round, seconds: r.seconds, cpuSeconds: r.cpuSeconds, loadAverage1m: round2(loadavg()[0] ?? 0), ok: r.code === 0 && r.copied === 0 && r.skipped === settings.noopObjects, detail: `copied ${r.copied}, skipped ${r.skipped}` });
        } else {
          const r = await rclone(noopDir, [], "noop");
          results.push({ tool, phase: "no-op", round, seconds: r.seconds, cpuSeconds: r.cpuSeconds, loadAverage1m: round2(loadavg()[0] ?? 0), ok: r.code === 0 && r.copied === 0, detail: `copied ${r.copied}` });
        }
        say(`  ${tool} no-op #${round}: ${results.at(-1)?.seconds.toFixed(1)} s${results.at(-1)?.ok ? "" : `  NOT OK (${results.at(-1)?.detail})`}`);
      }
    }
  }
} finally {
  await edge?.stop();
  await source?.stop();
  rmSync(work, { recursive: true, force: true });
}

const best = (tool: string, phase: string) => {
  const runs = results.filter((r) => r.tool === tool && r.phase === phase && r.ok);
  return runs.length === 0 ? undefined : runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
};
const copyRate = (tool: string) => {
  const r = best(tool, "copy");
  return r ? { seconds: round2(r.seconds), cpuSeconds: r.cpuSeconds, mibPerSecond: round2(mib(copyBytes) / r.seconds), objectsPerSecond: round2(files.length / r.seconds) } : undefined;
};
const copy = { ferry: copyRate("ferry"), rclone: copyRate("rclone") };
const ratio = copy.ferry && copy.rclone ? round2(copy.ferry.mibPerSecond / copy.rclone.mibPerSecond) : undefined;
const noopBest = { ferry: best("ferry", "no-op"), rclone: best("rclone", "no-op") };
const noop = { ferry: noopBest.ferry?.seconds, rclone: noopBest.rclone?.seconds };
const verdict = (met: boolean | undefined) => (met === undefined ? "not measured" : met ? "met" : "MISSED");

say("");
say("tool     phase   round  seconds  cpu s  load1m  ok");
for (const r of results) say(`${r.tool.padEnd(8)} ${r.phase.padEnd(7)} ${String(r.round).padStart(5)} ${r.seconds.toFixed(2).padStart(8)} ${(r.cpuSeconds?.toFixed(1) ?? "-").padStart(6)} ${r.loadAverage1m.toFixed(1).padStart(7)}  ${r.ok ? "yes" : `NO: ${r.detail}`}`);
say("");
for (const tool of ["ferry", "rclone"] as const) {
  const c = copy[tool];
  if (c) say(`copy   ${tool.padEnd(6)} ${c.mibPerSecond.toFixed(1).padStart(6)} MiB/s ${c.objectsPerSecond.toFixed(0).padStart(6)} objects/s (best of ${settings.rounds}, ${c.seconds} s, ${c.cpuSeconds ?? "-"} CPU s)`);
}
say(`copy throughput ferry ÷ rclone: ${ratio?.toFixed(2) ?? "n/a"} (target ≥ 1.0): ${verdict(ratio === undefined ? undefined : ratio >= 1)}`);
say(`no-op over ${settings.noopObjects} objects: ferry ${noop.ferry?.toFixed(2) ?? "n/a"} s, rclone ${noop.rclone?.toFixed(2) ?? "n/a"} s (target ferry ≤ ${NOOP_TARGET_SECONDS} s${settings.noopObjects < 100_000 ? ", set for 100,000" : ""}): ${verdict(noop.ferry === undefined ? undefined : noop.ferry <= NOOP_TARGET_SECONDS)}`);
if (seeding) say(`no-op set seeded by one ferry copy: ${seeding.objects} objects in ${seeding.seconds} s (${seeding.objectsPerSecond} objects/s)`);

const outDir = join(projectRoot, "bench", "results");
mkdirSync(outDir, { recursive: true });
const file = join(outDir, "replicate.json");
const report = {
  date: new Date().toISOString(),
  mode,
  durationSeconds: round2((performance.now() - startedAt) / 1000),
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: round2(totalmem() / 2 ** 30), node: process.version, rclone: rcloneVersion, loadAverage1mAtStart: loadAtStart, loadAverage1mAtEnd: round2(loadavg()[0] ?? 0) },
  destination: "local edge (wrangler dev, local R2)",
  source: settings.source === "gcs" ? "GCS emulator (firebase-tools, in-process)" : "file://",
  settings,
  copySet: { objects: files.length, bytes: copyBytes, small: { count: settings.small, bytes: settings.smallKiB * 1024 }, large: { count: settings.large, bytes: settings.largeMiB * 2 ** 20 } },
  copy: { ...copy, ratioFerryOverRclone: ratio, target: 1, met: ratio === undefined ? undefined : ratio >= 1 },
  noop: { objects: settings.noopObjects, objectBytes: settings.noopKiB * 1024, ferrySeconds: noop.ferry === undefined ? undefined : round2(noop.ferry), rcloneSeconds: noop.rclone === undefined ? undefined : round2(noop.rclone), ferryCpuSeconds: noopBest.ferry?.cpuSeconds, rcloneCpuSeconds: noopBest.rclone?.cpuSeconds, targetSeconds: NOOP_TARGET_SECONDS, met: noop.ferry === undefined ? undefined : noop.ferry <= NOOP_TARGET_SECONDS, seeding },
  runs: results.map((r) => ({ ...r, seconds: round2(r.seconds) })),
};
writeFileSync(file, JSON.stringify(report, null, 2) + "\n");
say(`\nresults: ${file}`);
