// Benchmark (not a test; no assertions) of the mount's first epoch over a warm NVMe cache with
// the page cache dropped: what a training run sees on every epoch of a data set larger than RAM,
// and what makes the short runs of `bench:train -- --workload resnet50` fall short of local disk
// (with longer runs, where later epochs come from the page cache, the gap closes: README).
//   npm run bench:first-epoch [-- --files 128 --rounds 3 --agent-arg=--passthrough-budget=100%]
// Random 114,660-byte records (resnet50's) from packed files of 64 records, read by 32
// concurrent readers through fs.promises, once from local disk and once through `ferry agent
// --mount` (cache filled beforehand, --metadata-ttl indefinite); rounds alternate, each side
// keeps its best. Needs root (drop_caches, the mount).
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, open, rm, type FileHandle } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { startAgentProcess, type AgentProcess } from "../test/helpers/agent-process.ts";
import { startLocalEdge } from "../test/helpers/local-edge.ts";
import { dropPageCache } from "./train/page-cache.ts";
import { permutation } from "./train/samples.ts";

const { values: args } = parseArgs({ options: { files: { type: "string", default: "128" }, rounds: { type: "string", default: "3" }, "agent-arg": { type: "string", multiple: true } } });
const FILES = Number(args.files);
const ROUNDS = Number(args.rounds);
if (!(Number.isInteger(FILES) && FILES >= 1) || !(Number.isInteger(ROUNDS) && ROUNDS >= 1)) {
  process.stderr.write("bench:first-epoch: --files and --rounds must be whole numbers ≥ 1\n");
  process.exit(2);
}
const MiB = 2 ** 20;
const RECORD_BYTES = 114_660;
const RECORDS_PER_FILE = 64;
const READERS = 32;
/** Extra `ferry agent` flags, e.g. a passthrough budget that covers every file. */
const AGENT_ARGS = args["agent-arg"] ?? [];

/** Drops the page cache (after a sync: the local files were just written) or stops the bench. */
function dropOrFail(): void {
  if (dropPageCache()) return;
  process.stderr.write("bench:first-epoch: cannot drop the page cache (needs root and a writable /proc/sys/vm)\n");
  process.exit(2);
}

/** One pass over every record in the order `seed` shuffles them into: MiB/s. Each file is opened once, as a loader keeps its files open. */
async function epoch(root: string, seed: number): Promise<number> {
  const order = permutation(FILES * RECORDS_PER_FILE, seed);
  const handles = new Map<number, Promise<FileHandle>>();
  const handle = (file: number): Promise<FileHandle> => {
    let h = handles.get(file);
    if (!h) handles.set(file, (h = open(join(root, `${file}.rec`), "r")));
    return h;
  };
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: READERS }, async () => {
      const buffer = Buffer.allocUnsafe(RECORD_BYTES);
      while (next < order.length) {
        const record = order[next++]!;
        const { bytesRead } = await (await handle(Math.floor(record / RECORDS_PER_FILE))).read(buffer, 0, RECORD_BYTES, (record % RECORDS_PER_FILE) * RECORD_BYTES);
        if (bytesRead !== RECORD_BYTES) throw new Error(`short read of record ${record} under ${root}`);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  for (const h of handles.values()) await (await h).close();
  return (order.length * RECORD_BYTES) / MiB / seconds;
}

interface MountStatus {
  requests?: Record<string, number>;
  readerReads?: unknown;
  fastOpens?: { opens: number; passthrough: number };
  passthrough?: { files: number; cacheFiles: number; copiesMade: number; bytes: number; opens: number } | null;
}

async function mountStatus(agent: AgentProcess): Promise<MountStatus | undefined> {
  return (await agent.status()).mount as MountStatus | undefined;
}

/** Waits (up to a minute) until no new passthrough file has appeared for 2 s: rounds measure the steady state, not the making of them. */
async function passthroughSettled(agent: AgentProcess): Promise<void> {
  let last = -1;
  let stableSince = performance.now();
  for (const deadline = performance.now() + 60_000; performance.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 250))) {
    const files = (await mountStatus(agent))?.passthrough?.files ?? 0;
    if (files !== last) [last, stableSince] = [files, performance.now()];
    else if (performance.now() - stableSince >= 2000) return;
  }
}

const work = await mkdtemp(join(tmpdir(), "ferry-bench-first-epoch-"));
const edge = await startLocalEdge().catch(async (error: unknown) => {
  await rm(work, { recursive: true, force: true });
  throw error;
});
try {
  const admin = await edge.createKey(["all:datasets"]);
  const nodeKey = await edge.createKey(["read,list:datasets"], { name: "node" });
  const s3 = new S3Client({ endpoint: edge.url, region: "auto", forcePathStyle: true, credentials: admin });
  const local = join(work, "local");
  mkdirSync(local);
  console.log(`first epoch: ${FILES} files × ${RECORDS_PER_FILE} records of ${RECORD_BYTES} B (${((FILES * RECORDS_PER_FILE * RECORD_BYTES) / MiB).toFixed(0)} MiB), ${READERS} readers, best of ${ROUNDS}${AGENT_ARGS.length > 0 ? `; agent flags ${AGENT_ARGS.join(" ")}` : ""}`);
  await Promise.all(
    Array.from({ length: 8 }, async (_, w) => {
      for (let i = w; i < FILES; i += 8) {
        const body = randomBytes(RECORD_BYTES * RECORDS_PER_FILE);
        writeFileSync(join(local, `${i}.rec`), body);
        await s3.send(new PutObjectCommand({ Bucket: "datasets", Key: `packs/${i}.rec`, Body: body }));
      }
    }),
  );
  const mount = join(work, "mnt");
  mkdirSync(mount);
  const agent = await startAgentProcess({ edgeUrl: edge.url, key: nodeKey, cacheDir: join(work, "cache"), args: ["--mount", mount, "--metadata-ttl", "indefinite", "--cache-size", `${Math.ceil((FILES * 8) / 1024) + 1}GiB`, ...AGENT_ARGS] });
  try {
    const mounted = join(mount, "datasets", "packs");
    await epoch(mounted, 0); // cold: fills the NVMe cache from the edge
    await epoch(mounted, 0); // passthrough files of small files are made while this runs
    await passthroughSettled(agent);
    let [bestLocal, bestMount] = [0, 0];
    for (let round = 1; round <= ROUNDS; round++) {
      // Both sides read the same order in a round.
      dropOrFail();
      const l = await epoch(local, round);
      dropOrFail();
      const m = await epoch(mounted, round);
      [bestLocal, bestMount] = [Math.max(bestLocal, l), Math.max(bestMount, m)];
      console.log(`round ${round}: local disk ${l.toFixed(0)} MiB/s, agent mount ${m.toFixed(0)} MiB/s (${(m / l).toFixed(2)}×)`);
    }
    const status = await mountStatus(agent);
    console.log(`best: local disk ${bestLocal.toFixed(0)} MiB/s, agent mount ${bestMount.toFixed(0)} MiB/s: ${(bestMount / bestLocal).toFixed(2)}× local disk`);
    console.log(`agent: READs on the event loop ${status?.requests?.["15"] ?? 0}, off it ${JSON.stringify(status?.readerReads)}; passthrough files ${status?.passthrough?.files ?? 0} (${((status?.passthrough?.bytes ?? 0) / MiB).toFixed(0)} MiB; the cache's own ${status?.passthrough?.cacheFiles ?? 0}, copies ${status?.passthrough?.copiesMade ?? 0}), passthrough opens ${(status?.passthrough?.opens ?? 0) + (status?.fastOpens?.passthrough ?? 0)}; load average ${loadavg()[0]?.toFixed(2)}`);
  } finally {
    await agent.stop();
  }
} finally {
  await edge.stop();
  await rm(work, { recursive: true, force: true });
}
