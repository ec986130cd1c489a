// Warming: load every block of every object under a prefix into the cache, with bounded
// concurrency, then a verify pass that reads each block back through its checksum. What
// was warmed or pinned is remembered in the cache dir (warm-v1.json) and refilled by
// itself after a restart or reboot.
import { randomUUID } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BlockCache } from "../cache/block-cache.ts";
import type { Logger } from "../log.ts";
import type { MetadataCache } from "../metadata/metadata-cache.ts";
import type { ObjectInfo } from "../origin/object-origin.ts";
import type { ObjectReader } from "../read/object-reader.ts";
import { Semaphore } from "../read/singleflight.ts";

export interface WarmRequest {
  bucket: string;
  prefix: string;
  pin: boolean;
}

export interface WarmProgress {
  id: string;
  bucket: string;
  prefix: string;
  pin: boolean;
  state: "listing" | "filling" | "verifying" | "done" | "failed";
  objectsTotal: number;
  objectsDone: number;
  bytesTotal: number;
  bytesDone: number;
  failures: Array<{ key: string; error: string }>;
  verifiedBlocks: number;
  startedAt: string;
  finishedAt?: string;
  error?: string;
}

interface RememberedWarm {
  bucket: string;
  prefix: string;
  pin: boolean;
}

export interface WarmJobsOptions {
  cacheDir: string;
  cache: BlockCache;
  metadata: MetadataCache;
  reader: ObjectReader;
  logger: Logger;
  /** Objects warmed at once. Default 8. */
  concurrency?: number;
  /**
   * Leave each warmed object that fits one as a whole-object file (BlockCache.holdWholeFile),
   * the form the mount passes through: set when a mount with passthrough runs, so a job's
   * first epoch after a warm reads at local-disk speed instead of making those files as it goes.
   */
  wholeObjectFiles?: boolean;
}

export class WarmJobs {
  private readonly options: WarmJobsOptions;
  private readonly jobs = new Map<string, WarmProgress>();
  private readonly file: string;

  constructor(options: WarmJobsOptions) {
    this.options = options;
    this.file = join(options.cacheDir, "warm-v1.json");
  }

  async remembered(): Promise<RememberedWarm[]> {
    try {
      const parsed: unknown = JSON.parse(await readFile(this.file, "utf8"));
      return Array.isArray(parsed) ? (parsed as RememberedWarm[]) : [];
    } catch {
      return [];
    }
  }

  private async remember(request: WarmRequest): Promise<void> {
    const list = (await this.remembered()).filter((w) => !(w.bucket === request.bucket && w.prefix === request.prefix));
    list.push({ bucket: request.bucket, prefix: request.prefix, pin: request.pin });
    const tmp = `${this.file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(list, null, 2));
    await rename(tmp, this.file);
  }

  /** Refills every remembered warm (after a restart); returns the started jobs. */
  async resume(): Promise<WarmProgress[]> {
    const started: WarmProgress[] = [];
    for (const w of await this.remembered()) started.push(await this.start(w, { remember: false }));
    return started;
  }

  list(): WarmProgress[] {
    return [...this.jobs.values()];
  }

  get(id: string): WarmProgress | undefined {
    return this.jobs.get(id);
  }

  async start(request: WarmRequest, options: { remember: boolean } = { remember: true }): Promise<WarmProgress> {
    if (options.remember) await this.remember(request);
    if (request.pin) await this.options.cache.pin(request.bucket, request.prefix);
    const job: WarmProgress = {
      id: randomUUID(),
      bucket: request.bucket,
      prefix: request.prefix,
      pin: request.pin,
      state: "listing",
      objectsTotal: 0,
      objectsDone: 0,
      bytesTotal: 0,
      bytesDone: 0,
      failures: [],
      verifiedBlocks: 0,
      startedAt: new Date().toISOString(),
    };
    this.jobs.set(job.id, job);
    this.run(job).catch((error: unknown) => {
      job.state = "failed";
      job.error = error instanceof Error ? error.message : String(error);
      job.finishedAt = new Date().toISOString();
      this.options.logger.error("warm failed", { id: job.id, bucket: job.bucket, prefix: job.prefix, error: job.error });
    });
    return job;
  }

  private async listAll(job: WarmProgress): Promise<ObjectInfo[]> {
    const objects: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      const page = await this.options.metadata.list(job.bucket, { prefix: job.prefix, delimiter: "", maxKeys: 1000, ...(token ? { continuationToken: token } : {}) });
      for (const o of page.objects) {
        if (o.key.startsWith(".ferry/")) continue;
        const info = await this.options.metadata.head(job.bucket, o.key);
        if (!info) continue;
        objects.push(info);
        job.objectsTotal++;
        job.bytesTotal += info.size;
      }
      token = page.isTruncated ? page.nextContinuationToken : undefined;
    } while (token);
    return objects;
  }

  private async run(job: WarmProgress): Promise<void> {
    const { reader, cache, logger } = this.options;
    const objects = await this.listAll(job);
    job.state = "filling";
    const slots = new Semaphore(this.options.concurrency ?? 8);
    await Promise.all(
      objects.map(async (info) => {
        const release = await slots.acquire();
        try {
          for await (const chunk of reader.read(info, 0, info.size)) {
            job.bytesDone += chunk.data.length;
            chunk.release();
          }
          job.objectsDone++;
        } catch (error) {
          job.failures.push({ key: info.key, error: error instanceof Error ? error.message : String(error) });
        } finally {
          release();
        }
      }),
    );
    // Let write-behind cache writes land, then read every block back through its checksum.
    await new Promise((r) => setTimeout(r, 50));
    job.state = "verifying";
    for (const info of objects) {
      await this.verifyBlocks(job, info);
      if (this.options.wholeObjectFiles) await this.makeWholeFile(info);
    }
    job.state = job.failures.length ? "failed" : "done";
    job.finishedAt = new Date().toISOString();
    logger.info("warm finished", { id: job.id, bucket: job.bucket, prefix: job.prefix, objects: job.objectsDone, bytes: job.bytesDone, failures: job.failures.length });
  }

  /** Reads every block of the object back through its checksum, refilling any that is gone. */
  private async verifyBlocks(job: WarmProgress, info: ObjectInfo): Promise<void> {
    const { reader, cache } = this.options;
    for (let i = 0; i < reader.blockCount(info); i++) {
      const id = { bucket: info.bucket, key: info.key, etag: info.etag, index: i };
      const lease = await cache.lease(id);
      if (lease) {
        lease.release();
        job.verifiedBlocks++;
      } else {
        // Evicted or not yet written: fill it again, then it counts.
        (await reader.block(info, i)).release();
        job.verifiedBlocks++;
      }
    }
  }

  /** Best effort: an object that cannot be kept whole (too large, no xattrs, no room) stays in blocks. */
  private async makeWholeFile(info: ObjectInfo): Promise<void> {
    const object = { bucket: info.bucket, key: info.key, etag: info.etag, size: info.size };
    try {
      if ((await this.options.cache.holdWholeFile(object)) !== undefined) this.options.cache.releaseWholeFile(object);
    } catch (error) {
      this.options.logger.debug("whole-object file not made after warm", { bucket: info.bucket, key: info.key, error: error instanceof Error ? error.message : String(error) });
    }
  }
}
