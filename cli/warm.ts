// `ferry warm s3://bucket/prefix [--pin] [--agent URL] [--json]`: starts a warm job on the
// agent and follows it: a progress bar on a TTY, JSON lines otherwise. Exits non-zero if
// any object failed. `--cluster NAME` spreads the warm over the pool (each block loaded by
// its owner, fetched from R2 once, and by the next owners too when the agents run with
// --replicas N), followed from the local agent; with --pin every owner pins the prefix.
import { parseArgs } from "node:util";
import type { WarmProgress } from "../node-agent/src/warm/warm-jobs.ts";
import { agentJson, agentUrl, formatBytes } from "./agent-client.ts";
import { CliError, UsageError } from "./cli-error.ts";
import type { PoolWarmJob } from "../node-agent/src/pool/pool.ts";

async function clusterWarm(base: URL, cluster: string, bucket: string, prefix: string, pin: boolean, json: boolean): Promise<void> {
  const status = (await agentJson(base, "/_ferry/status")) as { pool?: { cluster: string | null } };
  // A static pool (--peers) has no name: any --cluster selects it.
  if (!status.pool || (status.pool.cluster !== null && status.pool.cluster !== cluster)) {
    throw new CliError(`the agent at ${base.origin} is not in cluster ${cluster} (it is in ${status.pool?.cluster ?? "no pool"})`);
  }
  let job = (await agentJson(base, "/_ferry/pool/warm", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ bucket, prefix, pin }) })) as PoolWarmJob;
  for (;;) {
    const line = { state: job.state, files: job.objectsDone, filesTotal: job.objectsTotal, blocks: job.blocksDone, bytes: job.bytesDone, replicas: job.replicas, pinned: job.pin, byMember: job.blocksByMember, fallbackBlocks: job.fallbackBlocks };
    process.stdout.write((json ? JSON.stringify(line) : `${job.state} ${job.objectsDone}/${job.objectsTotal} files, ${formatBytes(job.bytesDone)}, blocks by member ${JSON.stringify(job.blocksByMember)}`) + "\n");
    if (job.state !== "running") break;
    await new Promise((r) => setTimeout(r, 500));
    job = (await agentJson(base, `/_ferry/pool/warm/${job.id}`)) as PoolWarmJob;
  }
  if (job.state === "failed") throw new CliError(`cluster warm of s3://${bucket}/${prefix} failed: ${job.error ?? "unknown"}`);
}

function bar(job: WarmProgress, mibPerSec: number): string {
  const ratio = job.bytesTotal ? job.bytesDone / job.bytesTotal : job.state === "done" ? 1 : 0;
  const width = 30;
  const filled = Math.round(ratio * width);
  return `\r[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}%  ${job.objectsDone}/${job.objectsTotal} files  ${formatBytes(job.bytesDone)}/${formatBytes(job.bytesTotal)}  ${mibPerSec.toFixed(0)} MiB/s  ${job.state}   `;
}

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: { pin: { type: "boolean", default: false }, agent: { type: "string" }, cluster: { type: "string" }, json: { type: "boolean", default: false } }, allowPositionals: true, strict: true });
  const m = positionals.length === 1 ? /^s3:\/\/([^/]+)\/?(.*)$/.exec(positionals[0] ?? "") : null;
  if (!m?.[1]) throw new UsageError("usage: ferry warm s3://BUCKET/PREFIX [--pin] [--cluster NAME] [--agent URL] [--json]");
  const base = agentUrl(values.agent);
  if (values.cluster) {
    return clusterWarm(base, values.cluster, m[1], m[2] ?? "", values.pin, values.json);
  }
  const started = Date.now();
  let job = (await agentJson(base, "/_ferry/warm", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ bucket: m[1], prefix: m[2] ?? "", pin: values.pin }) })) as WarmProgress;
  const tty = process.stderr.isTTY && !values.json;
  for (;;) {
    const seconds = (Date.now() - started) / 1000;
    const mibPerSec = seconds > 0 ? job.bytesDone / 2 ** 20 / seconds : 0;
    if (tty) process.stderr.write(bar(job, mibPerSec));
    else process.stdout.write(JSON.stringify({ state: job.state, files: job.objectsDone, filesTotal: job.objectsTotal, bytes: job.bytesDone, bytesTotal: job.bytesTotal, mibPerSec: Number(mibPerSec.toFixed(1)), failures: job.failures.length, verifiedBlocks: job.verifiedBlocks }) + "\n");
    if (job.state === "done" || job.state === "failed") break;
    await new Promise((r) => setTimeout(r, tty ? 200 : 1000));
    job = (await agentJson(base, `/_ferry/warm/${job.id}`)) as WarmProgress;
  }
  if (tty) process.stderr.write("\n");
  if (job.state === "failed") {
    const first = job.failures[0];
    throw new CliError(`warm of s3://${job.bucket}/${job.prefix} failed: ${job.error ?? `${job.failures.length} objects failed, first ${first?.key}: ${first?.error}`}`);
  }
  if (tty) process.stdout.write(`warmed ${job.objectsDone} files, ${formatBytes(job.bytesDone)}, ${job.verifiedBlocks} blocks verified${job.pin ? ", pinned" : ""}\n`);
}
