// Every data path of the training bench over one data set, sharing one local edge and one
// shaper in front of it (so the origin behaves like R2 seen from another cloud). The edge
// gets the data set under datasets/train/<workload>/; each path then reads the same files:
// agent mount/S3 cold/warm, agent-pool-peer, edge-direct, sync-then-local, rclone-vfs,
// s3fs, local-disk.
// A path whose tool is missing or whose mount fails is returned with `skipped`. close()
// stops every process and mount it started, also after a failed set-up.
import { S3Client } from "@aws-sdk/client-s3";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { startLocalEdge } from "../../test/helpers/local-edge.ts";
import { AWS_CLI_V2, clientEnv, runOk } from "../../test/helpers/real-clients.ts";
import { agentPaths } from "./agent-paths.ts";
import { fusePaths } from "./fuse-paths.ts";
import { poolPath, POOL_PATH } from "./pool-path.ts";
import { pageCacheDropper, skippedPath, type BuiltPath, type PathEnv } from "./path-kit.ts";
import { startShaper } from "./shaper.ts";
import type { CreateDataPaths } from "./types.ts";
import { publishDataSetManifest, uploadDataSet, uploadGrants } from "./upload.ts";

const BUCKET = "datasets";

function edgeDirectPath(env: PathEnv): BuiltPath {
  return {
    name: "edge-direct",
    description: `signed S3 GETs straight to the origin, no cache (what users do today), one epoch per run; origin: ${env.originLabel}`,
    firstEpoch: true,
    async prepare() {
      // The local "R2" is files on this disk: drop their pages too, as a remote origin would not have them here.
      env.dropCache("edge-direct");
      return { location: { kind: "s3", endpoint: env.originUrl, bucket: env.bucket, prefix: env.prefix, credentials: env.readKey } };
    },
    async close() {},
  };
}

/** The init-container pattern: `aws s3 sync` to a fresh local dir, copy time counted, then plain reads. */
function syncPath(env: PathEnv): BuiltPath {
  const aws = existsSync(AWS_CLI_V2) ? AWS_CLI_V2 : "aws";
  const description = `aws s3 sync to local disk first (copy time counted as setup), then local reads with the page cache dropped; origin: ${env.originLabel}`;
  let generation = 0;
  let current: string | undefined;
  let copySeconds: number | undefined;
  const removeCopy = () => {
    if (current) rmSync(current, { recursive: true, force: true });
    current = undefined;
  };
  return {
    name: "sync-then-local",
    description,
    // The copy is what a job pays once, before its first step: made on the first prepare and
    // reused by the sweep's later runs (each after a dropped page cache), its time reported.
    async prepare() {
      if (current && copySeconds !== undefined) {
        env.dropCache("sync-then-local");
        return { location: { kind: "posix", root: current }, setupSeconds: copySeconds };
      }
      removeCopy();
      generation++;
      current = join(env.workDir, `sync-${generation}`);
      mkdirSync(current, { recursive: true });
      const started = performance.now();
      await runOk(aws, ["s3", "sync", `s3://${env.bucket}/${env.prefix}`, current, "--endpoint-url", env.originUrl, "--no-progress", "--only-show-errors"], {
        env: clientEnv(env.readKey),
        timeoutMs: 6 * 3600_000,
      });
      copySeconds = (performance.now() - started) / 1000;
      env.log(`sync-then-local: aws s3 sync copied ${env.dataSet.files.length} files in ${copySeconds.toFixed(1)} s`);
      env.dropCache("sync-then-local");
      return { location: { kind: "posix", root: current }, setupSeconds: copySeconds };
    },
    async close() {
      removeCopy();
    },
  };
}

function localDiskPath(env: PathEnv): BuiltPath {
  return {
    name: "local-disk",
    description: "the generated files on this machine's disk, page cache dropped before each run (the physical limit here)",
    async prepare() {
      env.dropCache("local-disk");
      return { location: { kind: "posix", root: env.dataSet.root } };
    },
    async close() {},
  };
}

function awsMissing(): string | undefined {
  return existsSync(AWS_CLI_V2) || process.env.PATH?.split(":").some((dir) => existsSync(join(dir, "aws"))) ? undefined : "the aws CLI is not installed";
}

export const createDataPaths: CreateDataPaths = async (context) => {
  const { dataSet, log } = context;
  const cleanups: Array<() => Promise<void>> = [];
  const built: BuiltPath[] = [];
  const close = async () => {
    const errors: unknown[] = [];
    // Paths first (they hold mounts and agents reading from the shaper), then shaper, then edge.
    for (const path of built.splice(0)) await path.close().catch((error: unknown) => errors.push(error));
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch((error: unknown) => errors.push(error));
    if (errors.length > 0) throw new AggregateError(errors, `closing data paths failed: ${errors.length} errors`);
  };
  try {
    const started = performance.now();
    const edge = await startLocalEdge();
    cleanups.push(() => edge.stop());
    log(`edge: wrangler dev at ${edge.url} (started in ${((performance.now() - started) / 1000).toFixed(1)} s)`);
    const prefix = `train/${dataSet.workload.name}/`;
    const writeKey = await edge.createKey(uploadGrants(BUCKET, prefix), { name: "bench-train-upload" });
    const readKey = await edge.createKey([`read,list:${BUCKET}/${prefix}`], { name: "bench-train-read" });
    const nodeKey = await edge.createKey([`read,list:${BUCKET}`], { name: "bench-train-node" });
    const clusterKey = await edge.createKey([`read,list:${BUCKET}`], { name: "bench-train-cluster", clusters: ["bench-train"] });
    // No flexible checksum (x-amz-checksum-crc32) on the upload: client and edge would each
    // CRC every part on top of SigV4's own checks, on a CPU-bound 2-core machine (measured for
    // quick unet3d: 21.4 s instead of 26.5 s). Nothing is trusted unchecked: uploadDataSet checks
    // every size, and every byte any path reads is CRC32C-checked against the local source.
    const uploader = new S3Client({ endpoint: edge.url, region: "auto", forcePathStyle: true, credentials: writeKey, requestChecksumCalculation: "WHEN_REQUIRED" });
    try {
      const { seconds } = await uploadDataSet({ client: uploader, dataSet, bucket: BUCKET, prefix, log });
      log(`upload: ${dataSet.files.length} files to s3://${BUCKET}/${prefix} in ${seconds.toFixed(1)} s`);
      if (context.manifest) {
        const manifest = await publishDataSetManifest(uploader, BUCKET, prefix);
        log(`manifest: ${manifest.objects} objects at s3://${BUCKET}/${manifest.key}`);
      }
    } finally {
      uploader.destroy();
    }
    const shaper = await startShaper({ target: edge.url, firstByteMs: context.shaper.firstByteMs, streamMiBps: context.shaper.streamMiBps });
    cleanups.push(() => shaper.stop());
    const originLabel = `local edge (wrangler dev, local R2) behind a shaper: +${context.shaper.firstByteMs} ms to first byte, ${context.shaper.streamMiBps > 0 ? `${context.shaper.streamMiBps} MiB/s per stream` : "no rate cap"}`;
    log(`shaper: ${shaper.url} → ${edge.url} (${originLabel})`);
    const env: PathEnv = { dataSet, bucket: BUCKET, prefix, originUrl: shaper.url, originLabel, readKey, nodeKey, workDir: context.workDir, agentArgs: context.agentArgs ?? [], log, dropCache: pageCacheDropper(log) };
    // Each builder's processes must be closable even if a later builder throws.
    const agents = await agentPaths(env);
    built.push(...agents);
    const mountSkipped = agents.find((p) => p.name === "agent-mount-cold")?.skipped;
    const pool = mountSkipped ? skippedPath(POOL_PATH, "a fresh node joining a cluster whose peer holds the set warm", mountSkipped) : poolPath(env, clusterKey);
    built.push(pool);
    const edgeDirect = edgeDirectPath(env);
    const noAws = awsMissing();
    const sync = noAws ? skippedPath("sync-then-local", "aws s3 sync to local disk first, then local reads", noAws) : syncPath(env);
    built.push(edgeDirect, sync);
    const mounts = await fusePaths(env);
    built.push(...mounts);
    const local = localDiskPath(env);
    built.push(local);
    return { paths: [...agents, pool, edgeDirect, sync, ...mounts, local], close };
  } catch (error) {
    await close().catch((closeError: unknown) => log(`closing after a failed set-up also failed: ${String(closeError)}`));
    throw error;
  }
};
