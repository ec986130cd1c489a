// Benchmark (not a test; no assertions) of a cold first read: a fresh `ferry agent` on an empty
// cache, read through its mount and its S3 endpoint, against signed GETs straight to the
// origin, with the origin behind bench:train's shaper (30 ms to first byte, 64 MiB/s per
// stream by default). It isolates what bench:train's "agent cold within 1.2× of edge-direct"
// ratio measures, and says where the time goes: latency per object, the agent's CPU per MiB
// (all its threads, from /proc), how busy the machine was, and how much slower a fresh
// agent's first objects are than the rest.
//   npm run bench:cold [-- --objects 320 --size 1250000 --readers 1,4 --rounds 3 --paths agent-mount,agent-s3,direct]
// Every pass drops the page cache first (the local "R2" is files on this disk), reads every
// object once, and checks each one's CRC32C against what was uploaded. Rounds rotate the order
// of the paths; the result is each path's median over rounds. Needs root (drop_caches, FUSE).
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { crc32c } from "@node-rs/crc32";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startAgentProcess, type AgentProcess } from "../test/helpers/agent-process.ts";
import { processTicks } from "./process-cpu.ts";
import { startLocalEdge } from "../test/helpers/local-edge.ts";
import { unmount } from "./train/mounts.ts";
import { dropPageCache } from "./train/page-cache.ts";
import { openReader, type SampleReader } from "./train/readers.ts";
import type { Sample } from "./train/samples.ts";
import { startShaper } from "./train/shaper.ts";

const { values: args } = parseArgs({
  options: {
    objects: { type: "string", default: "320" },
    size: { type: "string", default: "1250000" },
    readers: { type: "string", default: "1,4" },
    rounds: { type: "string", default: "3" },
    paths: { type: "string", default: "agent-mount,agent-s3,direct" },
    "first-byte-ms": { type: "string", default: "30" },
    "stream-mibps": { type: "string", default: "64" },
    out: { type: "string", default: join(import.meta.dirname, "results") },
  },
});
function wholeNumber(name: string, value: string | undefined, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`bench:cold: --${name} must be a whole number ≥ ${min} (got ${value})\n`);
    process.exit(2);
  }
  return n;
}
const OBJECTS = wholeNumber("objects", args.objects, 8);
const SIZE = wholeNumber("size", args.size, 1);
const ROUNDS = wholeNumber("rounds", args.rounds, 1);
const READERS = (args.readers ?? "").split(",").map((r) => wholeNumber("readers", r.trim(), 1));
const SHAPER = { firstByteMs: wholeNumber("first-byte-ms", args["first-byte-ms"], 0), streamMiBps: wholeNumber("stream-mibps", args["stream-mibps"], 0) };
const MiB = 2 ** 20;
const PREFIX = "cold/";
/** The first objects of a pass, whose latency is compared with the rest's: a fresh agent's warm-up. */
const FIRST = Math.max(4, Math.round(OBJECTS / 10));
const PATH_NAMES = ["agent-mount", "agent-s3", "direct"] as const;
type PathName = (typeof PATH_NAMES)[number];
const PATHS = (args.paths ?? "").split(",").map((p) => p.trim()) as PathName[];
for (const p of PATHS) {
  if (!PATH_NAMES.includes(p)) {
    process.stderr.write(`bench:cold: --paths: no such path: ${p} (one of ${PATH_NAMES.join(", ")})\n`);
    process.exit(2);
  }
}

const json = !process.stderr.isTTY;
const progress = (event: Record<string, unknown>, line: string): void => {
  process.stderr.write(json ? JSON.stringify(event) + "\n" : line + "\n");
};

/** Object `index` as bench:train's readers take it: read whole, from offset 0. */
function sample(index: number): Sample {
  const file = `${index}.bin`;
  return { key: file, file, offset: 0, length: SIZE };
}

/** [busy, total] jiffies of the whole machine. */
function machineTicks(): [number, number] {
  const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  return [total - (fields[3] ?? 0) - (fields[4] ?? 0), total];
}

interface Pass {
  path: PathName;
  readers: number;
  round: number;
  mibPerSec: number;
  p50Ms: number;
  p90Ms: number;
  /** Mean latency of the first objects ÷ that of the rest. */
  warmupRatio: number;
  /** The agent's CPU (all threads) per MiB read; absent for direct. */
  agentCpuMsPerMiB?: number;
  /** The machine's busy share of all its CPUs during the pass. */
  machineBusy: number;
}

async function pass(path: PathName, readers: number, round: number, reader: SampleReader, expected: readonly number[], agent: AgentProcess | undefined): Promise<Pass> {
  if (!dropPageCache()) throw new Error("cannot drop the page cache (needs root and a writable /proc/sys/vm)");
  const latencies = new Array<number>(OBJECTS);
  const agentBefore = agent?.child.pid !== undefined ? processTicks(agent.child.pid) : 0;
  const [busyBefore, totalBefore] = machineTicks();
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: readers }, async () => {
      for (let i = next++; i < OBJECTS; i = next++) {
        const t0 = performance.now();
        const { crc32c: crc } = await reader.read(sample(i), { checksum: true });
        latencies[i] = performance.now() - t0;
        if (crc !== expected[i]) throw new Error(`${path}: object ${i} read back with CRC32C ${crc}, uploaded ${expected[i]}`);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const [busyAfter, totalAfter] = machineTicks();
  const mib = (OBJECTS * SIZE) / MiB;
  const sorted = [...latencies].sort((a, b) => a - b);
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    path,
    readers,
    round,
    mibPerSec: mib / seconds,
    p50Ms: sorted[Math.floor(0.5 * (OBJECTS - 1))] ?? 0,
    p90Ms: sorted[Math.floor(0.9 * (OBJECTS - 1))] ?? 0,
    warmupRatio: mean(latencies.slice(0, FIRST)) / mean(latencies.slice(FIRST)),
    ...(agent?.child.pid !== undefined ? { agentCpuMsPerMiB: ((processTicks(agent.child.pid) - agentBefore) * 10) / mib } : {}),
    machineBusy: (busyAfter - busyBefore) / Math.max(1, totalAfter - totalBefore),
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? (s[(s.length - 1) / 2] ?? 0) : ((s[s.length / 2 - 1] ?? 0) + (s[s.length / 2] ?? 0)) / 2;
};

const work = await mkdtemp(join(tmpdir(), "ferry-bench-cold-"));
const edge = await startLocalEdge().catch(async (error: unknown) => {
  await rm(work, { recursive: true, force: true });
  throw error;
});
const passes: Pass[] = [];
const started = performance.now();
try {
  const admin = await edge.createKey(["all:datasets"]);
  const readKey = await edge.createKey([`read,list:datasets/${PREFIX}`], { name: "direct" });
  const nodeKey = await edge.createKey(["read,list:datasets"], { name: "node" });
  const s3 = new S3Client({ endpoint: edge.url, region: "auto", forcePathStyle: true, credentials: admin, requestChecksumCalculation: "WHEN_REQUIRED" });
  const expected: number[] = [];
  for (let i = 0; i < OBJECTS; i++) {
    const body = randomBytes(SIZE);
    expected.push(crc32c(body));
    await s3.send(new PutObjectCommand({ Bucket: "datasets", Key: `${PREFIX}${i}.bin`, Body: body }));
  }
  s3.destroy();
  const shaper = await startShaper({ target: edge.url, ...SHAPER });
  const origin = `local edge (wrangler dev, local R2) behind a shaper: +${SHAPER.firstByteMs} ms to first byte, ${SHAPER.streamMiBps > 0 ? `${SHAPER.streamMiBps} MiB/s per stream` : "no rate cap"}`;
  progress({ event: "start", objects: OBJECTS, size: SIZE, readers: READERS, rounds: ROUNDS, origin }, `bench:cold: ${OBJECTS} objects of ${SIZE} B, readers ${READERS.join(", ")}, ${ROUNDS} rounds; origin: ${origin}`);
  try {
    let generation = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      for (const readers of READERS) {
        // Rotating the order keeps a drift in the machine's speed from favouring one path.
        const order = PATHS.map((_, i) => PATHS[(i + round + readers) % PATHS.length]!);
        for (const path of order) {
          let agent: AgentProcess | undefined;
          let reader: SampleReader | undefined;
          const dir = join(work, `agent-${++generation}`);
          const mount = join(dir, "mnt");
          try {
            // bench:train's own readers: the same clients its cold ratio is measured with.
            if (path === "direct") reader = openReader({ kind: "s3", endpoint: shaper.url, bucket: "datasets", prefix: PREFIX, credentials: readKey }, { concurrency: readers });
            else {
              mkdirSync(path === "agent-mount" ? mount : dir, { recursive: true });
              agent = await startAgentProcess({ edgeUrl: shaper.url, key: nodeKey, cacheDir: join(dir, "cache"), args: ["--metadata-ttl", "indefinite", "--min-free", "0%", ...(path === "agent-mount" ? ["--mount", mount] : [])] });
              reader = openReader(path === "agent-mount" ? { kind: "posix", root: join(mount, "datasets", PREFIX) } : { kind: "s3", endpoint: agent.url, bucket: "datasets", prefix: PREFIX }, { concurrency: readers });
            }
            const result = await pass(path, readers, round, reader, expected, agent);
            passes.push(result);
            progress(
              { event: "pass", ...result },
              `round ${round}, ${readers} readers, ${path.padEnd(11)} ${result.mibPerSec.toFixed(1).padStart(6)} MiB/s  p50 ${result.p50Ms.toFixed(0)} ms  p90 ${result.p90Ms.toFixed(0)} ms  first ${FIRST} ${result.warmupRatio.toFixed(2)}× the rest` +
                `${result.agentCpuMsPerMiB !== undefined ? `  agent ${result.agentCpuMsPerMiB.toFixed(1)} ms CPU/MiB` : ""}  machine ${(result.machineBusy * 100).toFixed(0)}% busy`,
            );
          } finally {
            // Open files first: the mount goes away with the agent.
            await reader?.close();
            await agent?.stop();
            if (path === "agent-mount") await unmount(mount);
            await rm(dir, { recursive: true, force: true });
          }
        }
      }
    }
  } finally {
    await shaper.stop();
  }
} finally {
  await edge.stop();
  await rm(work, { recursive: true, force: true });
}

const rows = READERS.flatMap((readers) =>
  PATHS.map((path) => {
    const mine = passes.filter((p) => p.path === path && p.readers === readers);
    const cpu = mine.flatMap((p) => (p.agentCpuMsPerMiB === undefined ? [] : [p.agentCpuMsPerMiB]));
    return {
      path,
      readers,
      mibPerSec: median(mine.map((p) => p.mibPerSec)),
      p50Ms: median(mine.map((p) => p.p50Ms)),
      p90Ms: median(mine.map((p) => p.p90Ms)),
      warmupRatio: median(mine.map((p) => p.warmupRatio)),
      ...(cpu.length > 0 ? { agentCpuMsPerMiB: median(cpu) } : {}),
      machineBusy: median(mine.map((p) => p.machineBusy)),
    };
  }),
);
const ratios = READERS.flatMap((readers) => {
  const direct = rows.find((r) => r.path === "direct" && r.readers === readers)?.mibPerSec ?? 0;
  return PATHS.filter((path) => path !== "direct" && direct > 0).map((path) => ({ path, readers, vsDirect: (rows.find((r) => r.path === path && r.readers === readers)?.mibPerSec ?? 0) / direct }));
});
const lines = [
  `### Cold first read: fresh agent vs straight from the origin (${new Date().toISOString().slice(0, 10)})`,
  "",
  `${OBJECTS} objects of ${SIZE} B, each read once per pass and CRC32C-checked; origin shaped: ${SHAPER.firstByteMs} ms to first byte, ${SHAPER.streamMiBps} MiB/s per stream; median of ${ROUNDS} rounds; page cache dropped before each pass; load average ${loadavg()[0]?.toFixed(2)} at the end; ${((performance.now() - started) / 1000).toFixed(0)} s.`,
  "",
  "| readers | path | MiB/s | ÷ direct | p50 ms | p90 ms | first objects ÷ rest | agent CPU ms/MiB | machine busy |",
  "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
  ...rows.map((r) => {
    const ratio = ratios.find((x) => x.path === r.path && x.readers === r.readers);
    return `| ${r.readers} | ${r.path} | ${r.mibPerSec.toFixed(1)} | ${ratio ? ratio.vsDirect.toFixed(2) : ""} | ${r.p50Ms.toFixed(0)} | ${r.p90Ms.toFixed(0)} | ${r.warmupRatio.toFixed(2)} | ${r.agentCpuMsPerMiB?.toFixed(1) ?? ""} | ${(r.machineBusy * 100).toFixed(0)}% |`;
  }),
];
process.stdout.write(lines.join("\n") + "\n");
mkdirSync(args.out ?? ".", { recursive: true });
const out = join(args.out ?? ".", "cold.json");
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), objects: OBJECTS, sizeBytes: SIZE, shaper: SHAPER, rounds: ROUNDS, rows, ratios, passes }, null, 2) + "\n");
progress({ event: "written", file: out }, `wrote ${out}`);
