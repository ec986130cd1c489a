// Wires one node agent together: config → disk cache → edge origin → metadata → reader →
// S3 endpoint (+ admin routes, metrics) → optional FUSE view; resumes remembered warms;
// stops cleanly (unmount, close listeners, flush) on SIGTERM/SIGINT.
import { once } from "node:events";
import type { Server } from "node:http";
import { DiskBlockCache } from "./cache/disk-block-cache.ts";
import { describeConfig, type AgentConfig } from "./config.ts";
import { createLogger, type Logger } from "./log.ts";
import { MetadataCache } from "./metadata/metadata-cache.ts";
import { BufferPool } from "./origin/buffer-pool.ts";
import { EdgeOrigin } from "./origin/edge-origin.ts";
import { createPool, type Pool } from "./pool/pool.ts";
import { ObjectReader } from "./read/object-reader.ts";
import { createAgentServer } from "./server/agent-server.ts";
import { RecentBlocks } from "./server/recent-blocks.ts";
import { HotObjects } from "./read/hot-objects.ts";
import { RequestMetrics } from "./server/request-metrics.ts";
import { S3Endpoint } from "./server/s3-endpoint.ts";
import { WarmJobs } from "./warm/warm-jobs.ts";

export interface RunningAgent {
  url: string;
  logger: Logger;
  status(): Record<string, unknown>;
  stop(): Promise<void>;
}

export interface MountedView {
  unmount(): Promise<void>;
  /** What `ferry status` shows about the mount. */
  status(): Record<string, unknown>;
}

/** Optional POSIX view: loaded only when --mount is given (it needs libfuse). */
/** `metadataTtl`: how long metadata is trusted; "indefinite" means objects never change under their keys. */
export type MountFactory = (input: {
  mountPoint: string;
  metadata: MetadataCache;
  reader: ObjectReader;
  logger: Logger;
  metadataTtl: number | "indefinite";
  recent: RecentBlocks;
  cacheDir: string;
  driver: AgentConfig["mountDriver"];
  mode: AgentConfig["mountMode"];
  cacheSizeBytes: number;
  passthroughBudgetBytes: number;
}) => Promise<MountedView>;

/** Memory for verified blocks held for sub-block reads (kernel requests, S3 ranges of records). */
const RECENT_BLOCK_BYTES = 256 * 2 ** 20;
/** Idle memory kept for blocks streaming in from the origin (BufferPool): about a cold read's fills in flight, at 4 MiB blocks. */
const FILL_BUFFER_BYTES = 64 * 2 ** 20;

export async function startAgent(config: AgentConfig, options: { mount?: MountFactory } = {}): Promise<RunningAgent> {
  const logger = createLogger({ component: "agent", level: config.logLevel });
  logger.info("starting", describeConfig(config));
  const cache = await DiskBlockCache.open({
    dir: config.cacheDir,
    blockSizeBytes: config.blockSizeBytes,
    quotaBytes: config.cacheSizeBytes,
    minFreeRatio: config.minFreeRatio,
    logger,
  });
  const fillBuffers = new BufferPool(config.blockSizeBytes, Math.max(4, Math.floor(FILL_BUFFER_BYTES / config.blockSizeBytes)));
  const edgeOrigin = new EdgeOrigin({ endpoint: config.edge, credentials: config.credentials, attempts: 3, timeoutMs: 30_000, memory: fillBuffers });
  // With a pool, blocks go to their owner peer first; everything else still goes to the edge.
  let reader: ObjectReader | undefined;
  const pool: Pool | undefined = config.pool
    ? createPool({
        config: config.pool,
        edge: config.edge,
        nodeKey: config.credentials,
        edgeOrigin,
        blockSizeBytes: config.blockSizeBytes,
        capacityBytes: config.cacheSizeBytes,
        logger,
        cache,
        figures: () => {
          const c = cache.stats();
          const r = reader?.stats;
          const lookups = r ? r.blockHits + r.blockMisses : 0;
          return { cacheUsedBytes: c.usedBytes, cacheQuotaBytes: c.quotaBytes, localBytes: r?.bytesFromCache ?? 0, hitRatio: r && lookups ? r.blockHits / lookups : 0 };
        },
      })
    : undefined;
  const origin = pool ? pool.origin : edgeOrigin;
  const metadata = new MetadataCache({
    origin,
    logger,
    ttlSeconds: config.metadataTtl,
    onChanged: (bucket, key) => {
      cache.dropObject(bucket, key).catch((error: unknown) => logger.warn("dropping old blocks failed", { bucket, key, error: String(error) }));
    },
  });
  // A passthrough mount reads wholly cached objects as whole-object files: fills of whole
  // objects are stored that way at once. A page-cache mount never opens them.
  const wholeObjectFiles = config.mount !== undefined && config.passthroughBudgetBytes > 0 && config.mountMode === "passthrough";
  reader = new ObjectReader({ cache, origin, logger, fillConcurrency: config.fillConcurrency, readAheadBlocks: config.readAheadBlocks, wholeObjectFiles, ...(pool ? { placement: pool.placement } : {}) });
  const readPath = reader;
  metadata.landFirstBlocksWith(
    config.blockSizeBytes,
    (info, data) => readPath.landFirstBlock(info, data),
    (bucket, key) => cache.mayHoldObject(bucket, key),
  );
  // Shared by the mount and the S3 endpoint: one verified copy of a hot block serves both.
  const recent = new RecentBlocks({ reader, maxBlocks: Math.max(8, Math.floor(RECENT_BLOCK_BYTES / config.blockSizeBytes)) });
  const hot = config.memoryCacheBytes > 0 ? new HotObjects({ budgetBytes: config.memoryCacheBytes, blockSizeBytes: config.blockSizeBytes }) : undefined;
  const warm = new WarmJobs({ cacheDir: config.cacheDir, cache, metadata, reader, logger, wholeObjectFiles });
  const started = Date.now();
  let view: MountedView | undefined;
  const status = () => {
    const c = cache.stats();
    const r = reader.stats;
    const lookups = r.blockHits + r.blockMisses;
    return {
      uptimeSeconds: Math.round((Date.now() - started) / 1000),
      edge: config.edge.origin,
      cache: c,
      hitRatio: lookups ? r.blockHits / lookups : 0,
      bytesBySource: { cache: r.bytesFromCache, origin: r.bytesFromOrigin },
      reader: r,
      metadata: metadata.stats,
      pins: cache.pins(),
      memory: hot?.stats() ?? null,
      mount: view?.status() ?? null,
      warmJobs: warm.list(),
      verifiedObjects: r.verifiedObjects,
      fillBuffers: fillBuffers.stats(),
      ...(pool ? { pool: pool.status() } : {}),
    };
  };
  const metrics = new RequestMetrics({
    figures: () => {
      const figures: Record<string, number> = {};
      for (const [k, v] of Object.entries({ ...cache.stats(), ...reader.stats, ...metadata.stats })) if (typeof v === "number") figures[k] = v;
      for (const [k, v] of Object.entries(hot?.stats() ?? {})) figures[`memory_${k}`] = v;
      for (const [k, v] of Object.entries(pool?.figures() ?? {})) figures[`pool_${k}`] = v;
      return figures;
    },
  });
  const s3 = new S3Endpoint({ metadata, reader, logger, metrics, recent, ...(hot ? { hot } : {}), ...(config.localKey ? { localKey: config.localKey } : {}) });
  const server: Server = createAgentServer({ s3, metrics, warm, status, ...(pool ? { poolWarm: () => pool.warm() } : {}) });
  server.listen(config.listen.port, config.listen.host);
  await once(server, "listening");
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.listen.port;
  const url = `http://${config.listen.host.includes(":") ? `[${config.listen.host}]` : config.listen.host}:${port}`;
  logger.info("listening", { url });

  if (pool) {
    const poolReader = reader;
    try {
      await pool.start({ head: (bucket, key) => metadata.head(bucket, key), list: (bucket, params) => metadata.list(bucket, params), block: (info, index) => poolReader.block(info, index), cachedBlock: (info, index) => poolReader.cachedBlock(info, index) });
    } catch (error) {
      server.close();
      await pool.close();
      await edgeOrigin.close();
      await cache.close();
      throw error;
    }
  }

  if (config.mount && options.mount) view = await options.mount({ mountPoint: config.mount, metadata, reader, logger, metadataTtl: config.metadataTtl, recent, cacheDir: config.cacheDir, cacheSizeBytes: config.cacheSizeBytes, driver: config.mountDriver, mode: config.mountMode, passthroughBudgetBytes: config.passthroughBudgetBytes });

  // The edge, asked once at start: a job's first read then does not wait for the bucket list
  // (a round trip to a far edge), and the log says at once whether the edge answers.
  const asked = Date.now();
  metadata.listBuckets().then(
    (buckets) => logger.info("edge reachable", { buckets: buckets.length, ms: Date.now() - asked }),
    (error: unknown) => logger.warn("edge not reachable at start", { error: error instanceof Error ? error.message : String(error) }),
  );

  const resumed = await warm.resume();
  if (resumed.length) logger.info("refilling remembered warms", { jobs: resumed.map((j) => `${j.bucket}/${j.prefix}`) });

  return {
    url,
    logger,
    status,
    async stop() {
      logger.info("stopping");
      // Leave the pool first, so peers stop routing here while this node still answers.
      if (pool) await pool.leave();
      if (view) await view.unmount().catch((error: unknown) => logger.warn("unmount failed", { error: String(error) }));
      recent.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (pool) await pool.close();
      await edgeOrigin.close();
      await cache.close();
      logger.info("stopped");
    },
  };
}
