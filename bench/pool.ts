// `npm run bench:pool`: four agents on loopback, one dataset read by every agent, pooled
// (--cluster) against isolated caches: origin bytes ÷ dataset size (1.00 pooled, 4.00
// isolated) and time to finish the epoch; then a pooled epoch with one agent killed halfway
// (read errors, extra origin bytes). The local edge (wrangler dev) is slow, so sizes are small.
// Flags: --objects N (default 24) --object-kib K (1024) --block-size (256KiB)
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { startAgentProcess, type AgentProcess } from "../test/helpers/agent-process.ts";
import { freePort, startLocalEdge, type TestKey } from "../test/helpers/local-edge.ts";

const { values } = parseArgs({ options: { objects: { type: "string", default: "24" }, "object-kib": { type: "string", default: "1024" }, "block-size": { type: "string", default: "256KiB" } } });
const say = (line: string) => process.stdout.write(`${line}\n`);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const work = mkdtempSync(join(tmpdir(), "ferry-bench-pool-"));
const edge = await startLocalEdge();

try {
  const admin = await edge.createKey(["all:datasets"]);
  const writer = new S3Client({ endpoint: edge.url, region: "auto", forcePathStyle: true, credentials: admin });
  const datasets = new Map<string, Map<string, string>>();
  let datasetBytes = 0;
  for (const run of ["isolated", "pooled", "killed"]) {
    const objects = new Map<string, string>();
    for (let i = 0; i < Number(values.objects); i++) {
      const body = randomBytes(Number(values["object-kib"]) * 1024);
      if (run === "pooled") datasetBytes += body.length;
      objects.set(`bench-pool/${run}/${String(i).padStart(3, "0")}.bin`, sha(body));
      await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: `bench-pool/${run}/${String(i).padStart(3, "0")}.bin`, Body: body }));
    }
    datasets.set(run, objects);
  }

  const start = async (run: string, key: TestKey, pooled: boolean) =>
    Promise.all([0, 1, 2, 3].map(async (i) => {
      const args = ["--block-size", values["block-size"], "--cache-size", "4GiB"];
      if (pooled) args.push("--cluster", "bench", "--peer-listen", `127.0.0.1:${await freePort()}`, "--heartbeat", "500ms", "--peer-timeout", "3s");
      return startAgentProcess({ edgeUrl: edge.url, key, cacheDir: join(work, `${run}-${i}`), args });
    }));
  const originBytes = async (agents: AgentProcess[]) => {
    let total = 0;
    for (const a of agents) {
      const s = await a.status().catch(() => undefined);
      const pool = s?.["pool"] as { edgeBytes: number } | undefined;
      total += pool ? pool.edgeBytes : ((s?.["bytesBySource"] as { origin: number } | undefined)?.origin ?? 0);
    }
    return total;
  };
  /** Every reader reads the whole dataset, reader r through readers[r]. */
  const epoch = async (run: string, agents: AgentProcess[], onHalf?: () => Promise<void>) => {
    const objects = [...(datasets.get(run) ?? [])];
    let errors = 0;
    const t = performance.now();
    await Promise.all(agents.map(async (agent, r) => {
      for (const [n, [key, digest]] of objects.entries()) {
        if (r === 0 && n === Math.floor(objects.length / 2)) await onHalf?.();
        try {
          const res = await fetch(`${agent.url}/datasets/${key}`);
          if (res.status !== 200 || sha(new Uint8Array(await res.arrayBuffer())) !== digest) errors++;
        } catch {
          errors++;
        }
      }
    }));
    return { seconds: (performance.now() - t) / 1000, errors };
  };

  const rows: string[][] = [];
  const nodeKey = await edge.createKey(["read,list:datasets"], { name: "bench", clusters: ["bench"] });
  const isolated = await start("isolated", nodeKey, false);
  const iso = await epoch("isolated", isolated);
  rows.push(["isolated", (await originBytes(isolated) / datasetBytes).toFixed(2), iso.seconds.toFixed(2), String(iso.errors)]);
  await Promise.all(isolated.map((a) => a.stop()));

  const pooled = await start("pooled", nodeKey, true);
  await new Promise((r) => setTimeout(r, 1_500)); // every member sees the other three
  const pool = await epoch("pooled", pooled);
  rows.push(["pooled", (await originBytes(pooled) / datasetBytes).toFixed(2), pool.seconds.toFixed(2), String(pool.errors)]);
  const before = await originBytes(pooled.slice(0, 3));

  // Four readers on the three agents that stay up; the fourth agent dies halfway.
  const survivors = pooled.slice(0, 3);
  const killed = await epoch("killed", [...survivors, pooled[0] as AgentProcess], async () => pooled[3]?.kill9());
  rows.push(["pooled, 1 of 4 killed halfway", ((await originBytes(pooled.slice(0, 3)) - before) / datasetBytes).toFixed(2) + " (survivors)", killed.seconds.toFixed(2), String(killed.errors)]);
  await Promise.all(pooled.map((a) => a.stop()));

  say(`dataset ${datasetBytes} bytes (${values.objects} × ${values["object-kib"]} KiB), read by each of 4 agents, block ${values["block-size"]}`);
  say(["run".padEnd(32), "origin ÷ dataset".padEnd(24), "epoch s".padEnd(9), "read errors"].join(" "));
  for (const r of rows) say([r[0]?.padEnd(32), r[1]?.padEnd(24), r[2]?.padEnd(9), r[3]].join(" "));
} finally {
  await edge.stop();
  rmSync(work, { recursive: true, force: true });
}
