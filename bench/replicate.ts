// `npm run bench:replicate`: the same local dataset (many small objects and a few large
// ones) copied into a local edge by `ferry replicate` and by `rclone copy`, side by side,
// then a no-op rerun of each. Results print as a table and go to bench/results/.
// Flags: --small N (default 2000) --small-kib K (64) --large N (2) --large-mib M (64)
//        --concurrency N (16, also rclone's --transfers/--checkers) --skip-rclone
// The full size (10,000 small objects; no-op over 100,000) works too, but the local
// edge (wrangler dev) writes only a few MB/s and tens of objects per second, so it is slow.
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { projectRoot } from "../scripts/lib/edge-process.ts";
import { startLocalEdge } from "../test/helpers/local-edge.ts";
import { clientEnv, rcloneEnv, rcloneFlags, run } from "../test/helpers/real-clients.ts";

const { values } = parseArgs({
  options: {
    small: { type: "string", default: "2000" },
    "small-kib": { type: "string", default: "64" },
    large: { type: "string", default: "2" },
    "large-mib": { type: "string", default: "64" },
    concurrency: { type: "string", default: "16" },
    "skip-rclone": { type: "boolean", default: false },
  },
});
const small = Number(values.small);
const large = Number(values.large);
const concurrency = Number(values.concurrency);
const say = (line: string) => process.stdout.write(`${line}\n`);

const work = mkdtempSync(join(tmpdir(), "ferry-bench-"));
const dir = join(work, "dataset");
let totalBytes = 0;
for (let i = 0; i < small; i++) {
  const sub = join(dir, `shard-${String(i % 50).padStart(2, "0")}`);
  if (i < 50) mkdirSync(sub, { recursive: true });
  const data = randomBytes(Number(values["small-kib"]) * 1024);
  writeFileSync(join(sub, `sample_${String(i).padStart(6, "0")}.bin`), data);
  totalBytes += data.length;
}
for (let i = 0; i < large; i++) {
  const data = randomBytes(Number(values["large-mib"]) * 1024 * 1024);
  writeFileSync(join(dir, `trajectory_${i}.h5`), data);
  totalBytes += data.length;
}
const objects = small + large;
say(`dataset: ${objects} objects, ${(totalBytes / 2 ** 20).toFixed(1)} MiB in ${dir}`);

const edge = await startLocalEdge();
const results: Array<{ tool: string; phase: string; seconds: number; mibPerSecond: number; objectsPerSecond: number; ok: boolean }> = [];
try {
  const key = await edge.createKey(["all:datasets/"], { name: "bench" });
  const timed = async (tool: string, phase: string, command: string, args: string[], env: NodeJS.ProcessEnv) => {
    const started = performance.now();
    const r = await run(command, args, { env, timeoutMs: 3_600_000 });
    const seconds = (performance.now() - started) / 1000;
    const copying = phase === "copy";
    results.push({ tool, phase, seconds, mibPerSecond: copying ? totalBytes / 2 ** 20 / seconds : 0, objectsPerSecond: objects / seconds, ok: r.code === 0 });
    if (r.code !== 0) say(`${tool} ${phase} failed (${r.code}): ${r.stderr.slice(-2000)}`);
  };
  const ferryEnv = clientEnv(undefined, { FERRY_EDGE_URL: edge.url, FERRY_ACCESS_KEY_ID: key.accessKeyId, FERRY_SECRET_ACCESS_KEY: key.secretAccessKey });
  const ferryArgs = [join(projectRoot, "bin", "ferry.js"), "replicate", `file://${dir}`, "s3://datasets/bench-ferry/", "--json", "--concurrency", String(concurrency)];
  for (const phase of ["copy", "no-op"]) await timed("ferry", phase, process.execPath, ferryArgs, ferryEnv);
  if (!values["skip-rclone"]) {
    // --checksum: rclone's strictest comparison (it falls back to size when no hash is shared).
    const rcloneArgs = ["copy", dir, ":s3:datasets/bench-rclone", ...rcloneFlags(edge.url), "--transfers", String(concurrency), "--checkers", String(concurrency), "--checksum", "--s3-upload-cutoff", "16M", "--s3-chunk-size", "16M"];
    for (const phase of ["copy", "no-op"]) await timed("rclone", phase, "rclone", rcloneArgs, rcloneEnv(key));
  }
} finally {
  await edge.stop();
  rmSync(work, { recursive: true, force: true });
}

say("");
say("tool     phase   seconds   MiB/s   objects/s  ok");
for (const r of results) say(`${r.tool.padEnd(8)} ${r.phase.padEnd(7)} ${r.seconds.toFixed(2).padStart(7)} ${r.mibPerSecond.toFixed(1).padStart(7)} ${r.objectsPerSecond.toFixed(0).padStart(11)}  ${r.ok ? "yes" : "NO"}`);
const outDir = join(projectRoot, "bench", "results");
mkdirSync(outDir, { recursive: true });
const file = join(outDir, `replicate-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
writeFileSync(file, JSON.stringify({ objects, totalBytes, concurrency, results }, null, 2) + "\n");
say(`\nresults: ${file}`);
