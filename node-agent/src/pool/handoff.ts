// --handoff: a node that got notice (SIGTERM) has already left the membership; before it
// goes, each pinned block it holds is copied to the block's owners without it (--replicas
// of them), straight from this node (x-ferry-warm: handoff), so the cluster keeps every
// pinned block without reading R2 again. Bounded by a deadline:
// what is not handed off by then is refetched by its new owner on first read.
import type { Credentials } from "../../../s3/sigv4.ts";
import type { BlockId } from "../cache/block-cache.ts";
import type { Logger } from "../log.ts";
import type { PeerClient } from "./peer-client.ts";
import type { ReadPath } from "./pool.ts";
import type { PoolStats } from "./pool-stats.ts";
import { blockKeyOf, rankOwners, type PeerMember } from "./rendezvous.ts";

export interface HandoffInput {
  membersBefore: readonly PeerMember[];
  selfId: string;
  credential: Credentials;
  replicas: number;
  blockSizeBytes: number;
  deadlineMs: number;
  readPath: ReadPath;
  cache: { pins(): Array<{ bucket: string; prefix: string }>; has(id: BlockId): boolean };
  peers: PeerClient;
  stats: PoolStats;
  logger: Logger;
  /** Copies at once. Default 8. */
  concurrency?: number;
}

interface Task {
  target: PeerMember;
  id: BlockId;
  offset: number;
  length: number;
  prefix: string;
}

export async function handOff(input: HandoffInput): Promise<void> {
  const started = Date.now();
  const deadline = started + input.deadlineMs;
  const others = input.membersBefore.filter((m) => m.id !== input.selfId);
  if (others.length === 0) return;
  const bs = input.blockSizeBytes;
  const tasks: Task[] = [];
  let failed = 0;
  try {
    for (const pin of input.cache.pins()) {
      let token: string | undefined;
      do {
        const page = await input.readPath.list(pin.bucket, { prefix: pin.prefix, delimiter: "", maxKeys: 1000, ...(token ? { continuationToken: token } : {}) });
        for (const o of page.objects) {
          const info = await input.readPath.head(pin.bucket, o.key);
          if (!info) continue;
          for (let index = 0; index < Math.max(1, Math.ceil(info.size / bs)); index++) {
            const id = { bucket: info.bucket, key: info.key, etag: info.etag, index };
            if (!input.cache.has(id)) continue;
            // Every owner the block has without this node: one of them may be new, and an old
            // one may never have received it (its other owner died before re-replication). One
            // that holds it answers from its cache at once.
            for (const target of rankOwners(blockKeyOf(id.bucket, id.key, id.etag, index), others).slice(0, input.replicas)) {
              tasks.push({ target, id, offset: index * bs, length: Math.min(bs, info.size - index * bs), prefix: pin.prefix });
            }
          }
        }
        token = page.isTruncated ? page.nextContinuationToken : undefined;
      } while (token && Date.now() < deadline);
    }
  } catch (error) {
    input.logger.warn("handoff: listing pinned data failed", { error: error instanceof Error ? error.message : String(error) });
  }
  let next = 0;
  const worker = async () => {
    while (next < tasks.length && Date.now() < deadline) {
      const task = tasks[next++];
      if (!task) break;
      try {
        await input.peers.warmBlock(task.target.peer, input.credential, { bucket: task.id.bucket, key: task.id.key, etag: task.id.etag, offset: task.offset, length: task.length }, { mode: "handoff", from: input.selfId, pinPrefix: task.prefix });
        input.stats.handoffBlocksSent++;
      } catch (error) {
        failed++;
        input.logger.warn("handoff of a block failed", { peer: task.target.peer, key: task.id.key, index: task.id.index, error: error instanceof Error ? error.message : String(error) });
      }
    }
  };
  await Promise.all(Array.from({ length: input.concurrency ?? 8 }, worker));
  input.logger.info("handoff done", { blocks: tasks.length, sent: input.stats.handoffBlocksSent, failed, skippedByDeadline: Math.max(0, tasks.length - next), seconds: (Date.now() - started) / 1000 });
}
