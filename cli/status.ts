// `ferry status [--agent URL] [--json]`: the agent's cache use, hit ratio, bytes by source,
// evictions, corruption found, small objects in memory, the mount, pins and warm jobs; `--cluster NAME` shows the pool instead.
import { parseArgs } from "node:util";
import { agentJson, agentUrl, formatBytes } from "./agent-client.ts";
import { clusterStatus } from "./cluster-status.ts";

interface Status {
  uptimeSeconds: number;
  edge: string;
  cache: { usedBytes: number; quotaBytes: number; blocks: number; objects: number; evictedBlocks: number; corruptBlocks: number; scanning: boolean };
  hitRatio: number;
  bytesBySource: { cache: number; origin: number };
  pins: Array<{ bucket: string; prefix: string }>;
  warmJobs: Array<{ bucket: string; prefix: string; state: string; objectsDone: number; objectsTotal: number }>;
  verifiedObjects: number;
  memory: { objects: number; bytes: number; budgetBytes: number; hits: number } | null;
  mount: { driver: string; mode?: string } | null;
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { agent: { type: "string" }, cluster: { type: "string" }, json: { type: "boolean", default: false } }, strict: true });
  if (values.cluster) return clusterStatus(values.cluster, values.json);
  const status = (await agentJson(agentUrl(values.agent), "/_ferry/status")) as Status;
  if (values.json) {
    process.stdout.write(JSON.stringify(status) + "\n");
    return;
  }
  const c = status.cache;
  const lines = [
    `edge        ${status.edge}  (up ${status.uptimeSeconds}s)`,
    `cache       ${formatBytes(c.usedBytes)} of ${formatBytes(c.quotaBytes)}, ${c.objects} objects, ${c.blocks} blocks${c.scanning ? " (indexing…)" : ""}`,
    `hit ratio   ${(status.hitRatio * 100).toFixed(1)}%  (from cache ${formatBytes(status.bytesBySource.cache)}, from edge ${formatBytes(status.bytesBySource.origin)})`,
    `evictions   ${c.evictedBlocks} blocks;  corrupt blocks found ${c.corruptBlocks};  objects verified end to end ${status.verifiedObjects}`,
    `memory      ${status.memory ? `${status.memory.objects} small objects, ${formatBytes(status.memory.bytes)} of ${formatBytes(status.memory.budgetBytes)}, ${status.memory.hits} hits` : "off"}`,
    `mount       ${status.mount ? `${status.mount.driver} driver${status.mount.mode ? `, ${status.mount.mode} mode` : ""}` : "none"}`,
    `pins        ${status.pins.length ? status.pins.map((p) => `s3://${p.bucket}/${p.prefix}`).join(", ") : "none"}`,
    `warm jobs   ${status.warmJobs.length ? status.warmJobs.map((j) => `s3://${j.bucket}/${j.prefix} ${j.state} ${j.objectsDone}/${j.objectsTotal}`).join("; ") : "none"}`,
  ];
  process.stdout.write(lines.join("\n") + "\n");
}
