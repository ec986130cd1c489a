// `ferry warm --cluster`: one agent walks a prefix and has each block's owner load it —
// itself for its own blocks, a signed warm request (x-ferry-warm) to the owner peer for
// the rest — so every block is fetched from R2 once, by its owner, and stays only there.
// A peer that fails is skipped: the block is then read through the pool like any miss.
// Progress for the whole cluster lives in this one job.
import type { ListResult } from "../../../s3/listing-xml.ts";
import type { Logger } from "../log.ts";
import type { ListParams, ObjectInfo } from "../origin/object-origin.ts";
import type { Membership } from "./membership.ts";
import type { PeerClient } from "./peer-client.ts";
import type { ReadPath } from "./pool.ts";
import { blockKeyOf, rankOwners } from "./rendezvous.ts";

export interface PoolWarmJob {
  id: string;
  bucket: string;
  prefix: string;
  state: "running" | "done" | "failed";
  objectsTotal: number;
  objectsDone: number;
  blocksDone: number;
  bytesDone: number;
  /** Blocks loaded by each member id. */
  blocksByMember: Record<string, number>;
  /** Blocks whose owner failed and were read through the pool instead. */
  fallbackBlocks: number;
  error?: string;
}

export interface PoolWarmOptions {
  membership: Membership;
  peers: PeerClient;
  readPath: ReadPath;
  list: (bucket: string, params: ListParams) => Promise<ListResult>;
  blockSizeBytes: number;
  logger: Logger;
  /** Blocks loaded at once. Default 8. */
  concurrency?: number;
}

export class PoolWarm {
  private readonly o: PoolWarmOptions;
  private readonly jobs = new Map<string, PoolWarmJob>();

  constructor(options: PoolWarmOptions) {
    this.o = options;
  }

  get(id: string): PoolWarmJob | undefined {
    return this.jobs.get(id);
  }

  start(bucket: string, prefix: string): PoolWarmJob {
    const job: PoolWarmJob = { id: crypto.randomUUID(), bucket, prefix, state: "running", objectsTotal: 0, objectsDone: 0, blocksDone: 0, bytesDone: 0, blocksByMember: {}, fallbackBlocks: 0 };
    this.jobs.set(job.id, job);
    this.run(job).then(
      () => (job.state = "done"),
      (error: unknown) => {
        job.state = "failed";
        job.error = error instanceof Error ? error.message : String(error);
        this.o.logger.warn("pool warm failed", { bucket, prefix, error: job.error });
      },
    );
    return job;
  }

  private async loadBlock(job: PoolWarmJob, info: ObjectInfo, index: number): Promise<void> {
    const offset = index * this.o.blockSizeBytes;
    const length = Math.min(this.o.blockSizeBytes, info.size - offset);
    const owner = rankOwners(blockKeyOf(info.bucket, info.key, info.etag, index), this.o.membership.members())[0];
    const credential = this.o.membership.credential();
    let by = this.o.membership.selfId;
    if (owner && owner.id !== this.o.membership.selfId && credential) {
      try {
        await this.o.peers.warmBlock(owner.peer, credential, { bucket: info.bucket, key: info.key, etag: info.etag, offset, length });
        by = owner.id;
      } catch (error) {
        job.fallbackBlocks++;
        this.o.logger.warn("pool warm: owner skipped", { peer: owner.peer, key: info.key, index, error: error instanceof Error ? error.message : String(error) });
      }
    }
    if (by === this.o.membership.selfId) (await this.o.readPath.block(info, index)).release();
    job.blocksByMember[by] = (job.blocksByMember[by] ?? 0) + 1;
    job.blocksDone++;
    job.bytesDone += length;
  }

  private async run(job: PoolWarmJob): Promise<void> {
    const objects: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      const page = await this.o.list(job.bucket, { prefix: job.prefix, delimiter: "", maxKeys: 1000, ...(token ? { continuationToken: token } : {}) });
      for (const o of page.objects) {
        const info = await this.o.readPath.head(job.bucket, o.key);
        if (info) objects.push(info);
      }
      job.objectsTotal = objects.length;
      token = page.isTruncated ? page.nextContinuationToken : undefined;
    } while (token);
    const tasks = objects.flatMap((info) => Array.from({ length: Math.max(1, Math.ceil(info.size / this.o.blockSizeBytes)) }, (_, index) => ({ info, index })));
    const left = new Map(objects.map((o) => [o.key, Math.max(1, Math.ceil(o.size / this.o.blockSizeBytes))]));
    let next = 0;
    const worker = async () => {
      while (next < tasks.length) {
        const task = tasks[next++];
        if (!task) break;
        if (task.info.size > 0) await this.loadBlock(job, task.info, task.index);
        const remaining = (left.get(task.info.key) ?? 1) - 1;
        left.set(task.info.key, remaining);
        if (remaining === 0) job.objectsDone++;
      }
    };
    await Promise.all(Array.from({ length: this.o.concurrency ?? 8 }, worker));
  }
}
