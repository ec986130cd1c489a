// `ferry warm --cluster`: one agent walks a prefix and has each block's owner load it —
// itself for its own blocks, a signed warm request (x-ferry-warm) to the owner peer for
// the rest — so every block is fetched from R2 once, by its owner. With --replicas N the
// next N-1 owners then load it too, through the pool (from the first owner, not R2), so a
// lost node costs no refetch; with --pin every owner pins the prefix. A peer that fails
// is skipped: the block is then read through the pool like any miss. Progress for the
// whole cluster lives in this one job.
import type { ListResult } from "../../../s3/listing-xml.ts";
import type { Logger } from "../log.ts";
import type { ListParams, ObjectInfo } from "../origin/object-origin.ts";
import type { Membership } from "./membership.ts";
import type { PeerClient } from "./peer-client.ts";
import type { WarmRequest } from "./placement.ts";
import type { ReadPath } from "./pool.ts";
import type { AsyncLocalStorage } from "node:async_hooks";
import { blockKeyOf, rankOwners } from "./rendezvous.ts";

export interface PoolWarmJob {
  id: string;
  bucket: string;
  prefix: string;
  pin: boolean;
  /** Owners each block was loaded on (--replicas). */
  replicas: number;
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
  /** Owners that load each block (the first from R2, the others from it). Default 1. */
  replicas?: number;
  /** Marks loads this node does as a replica, so they keep the block and read it through the pool. */
  warming: AsyncLocalStorage<WarmRequest>;
  /** Pins a prefix in this node's own cache. */
  pin: (bucket: string, prefix: string) => Promise<void>;
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

  start(bucket: string, prefix: string, pin = false): PoolWarmJob {
    const job: PoolWarmJob = { id: crypto.randomUUID(), bucket, prefix, pin, replicas: Math.max(1, this.o.replicas ?? 1), state: "running", objectsTotal: 0, objectsDone: 0, blocksDone: 0, bytesDone: 0, blocksByMember: {}, fallbackBlocks: 0 };
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
    const owners = rankOwners(blockKeyOf(info.bucket, info.key, info.etag, index), this.o.membership.members()).slice(0, job.replicas);
    const credential = this.o.membership.credential();
    const block = { bucket: info.bucket, key: info.key, etag: info.etag, offset, length };
    const pinPrefix = job.pin ? job.prefix : undefined;
    // The first owner fetches from R2; the others then copy through the pool, which asks the first owner.
    for (const [rank, owner] of (owners.length ? owners : [undefined]).entries()) {
      let by = this.o.membership.selfId;
      if (owner && owner.id !== this.o.membership.selfId && credential) {
        try {
          await this.o.peers.warmBlock(owner.peer, credential, block, { mode: rank === 0 ? "owner" : "replica", ...(pinPrefix !== undefined ? { pinPrefix } : {}) });
          by = owner.id;
        } catch (error) {
          job.fallbackBlocks++;
          this.o.logger.warn("pool warm: owner skipped", { peer: owner.peer, key: info.key, index, error: error instanceof Error ? error.message : String(error) });
          if (rank > 0) continue; // a missing replica is only a missing copy
        }
      }
      if (by === this.o.membership.selfId) {
        if (job.pin) await this.pinSelf(info.bucket, job.prefix);
        (await this.o.warming.run({}, () => this.o.readPath.block(info, index))).release();
      }
      job.blocksByMember[by] = (job.blocksByMember[by] ?? 0) + 1;
    }
    job.blocksDone++;
    job.bytesDone += length;
  }

  private readonly pinned = new Map<string, Promise<void>>();

  /** Pins a prefix here once per job, however many blocks ask at once. */
  private pinSelf(bucket: string, prefix: string): Promise<void> {
    const k = `${bucket}\n${prefix}`;
    let p = this.pinned.get(k);
    if (!p) {
      p = this.o.pin(bucket, prefix);
      this.pinned.set(k, p);
    }
    return p;
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
