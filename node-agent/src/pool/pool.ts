// The pool's entry point for main.ts: builds membership (edge or static), the pool origin
// that wraps the edge origin, the placement that decides which filled blocks this node
// keeps, and — once the read path exists — the peer listener. Leaving (SIGTERM) drops out
// of the membership first; with --handoff it then has the next owners copy its pinned
// blocks from it (within a deadline); it keeps serving peers for a drain window so reads
// already routed here still complete, then closes.
import { AsyncLocalStorage } from "node:async_hooks";
import { once } from "node:events";
import type { Server } from "node:http";
import type { Credentials } from "../../../s3/sigv4.ts";
import type { PoolConfig } from "../config.ts";
import type { Logger } from "../log.ts";
import type { ListResult } from "../../../s3/listing-xml.ts";
import type { BlockId } from "../cache/block-cache.ts";
import type { ListParams, ObjectInfo, ObjectOrigin } from "../origin/object-origin.ts";
import { handOff } from "./handoff.ts";
import { PoolPlacement, type WarmRequest } from "./placement.ts";
import { EdgeMembership } from "./edge-membership.ts";
import { StaticMembership, type Membership } from "./membership.ts";
import { PeerClient } from "./peer-client.ts";
import { createPeerServer } from "./peer-server.ts";
import { PoolOrigin } from "./pool-origin.ts";
import { PoolWarm, type PoolWarmJob } from "./pool-warm.ts";
import { PoolStats } from "./pool-stats.ts";

export interface PoolInput {
  config: PoolConfig;
  edge: URL;
  nodeKey: Credentials;
  edgeOrigin: ObjectOrigin;
  blockSizeBytes: number;
  capacityBytes: number;
  logger: Logger;
  /** Figures of the rest of the agent (cache use, hit ratio) sent with heartbeats. */
  figures: () => Record<string, number>;
  /** This node's cache: pins (for cluster warms and handoff) and block membership. */
  cache: { pin(bucket: string, prefix: string): Promise<void>; pins(): Array<{ bucket: string; prefix: string }>; has(id: BlockId): boolean };
}

/** Block bytes lent by the read path: valid until release(). */
export interface LentBlock {
  readonly data: Uint8Array;
  release(): void;
}

export interface ReadPath {
  head: (bucket: string, key: string) => Promise<ObjectInfo | undefined>;
  list: (bucket: string, params: ListParams) => Promise<ListResult>;
  block: (info: ObjectInfo, index: number) => Promise<LentBlock>;
  /** One block from this node's cache only (never a fill), undefined when it is not held. */
  cachedBlock: (info: ObjectInfo, index: number) => Promise<LentBlock | undefined>;
}

export interface Pool {
  origin: ObjectOrigin;
  /** Which filled blocks this node keeps (its share, bounded near copies). */
  placement: PoolPlacement;
  /** Starts the peer listener and joins; throws PoolJoinError when the edge refuses. */
  start(readPath: ReadPath): Promise<void>;
  /** Leaves the membership and drains; safe to call once on SIGTERM. */
  leave(): Promise<void>;
  close(): Promise<void>;
  status(): Record<string, unknown>;
  /** The pool's counters (for /metrics). */
  figures(): Record<string, number>;
  /** Cluster warms (`ferry warm --cluster`); undefined until started. */
  warm(): PoolWarm | undefined;
}

export type { PoolWarmJob };

export function createPool(input: PoolInput): Pool {
  const { config, logger } = input;
  const stats = new PoolStats();
  const servingPeer = new AsyncLocalStorage<true>();
  const warming = new AsyncLocalStorage<WarmRequest>();
  let leaving = false;
  let readPathForHandoff: ReadPath | undefined;
  const figures = () => ({ ...input.figures(), ...stats.figures() });
  const membership: Membership = config.peers
    ? new StaticMembership({ selfId: config.advertise, peers: config.peers, credential: { accessKeyId: "FRYPOOLSTATIC", secretAccessKey: config.clusterSecret ?? "" }, intervalMs: config.heartbeatMs, timeoutMs: config.peerTimeoutMs, logger })
    : new EdgeMembership({ edge: input.edge, nodeKey: input.nodeKey, cluster: config.cluster ?? "", advertise: config.advertise, capacityBytes: input.capacityBytes, heartbeatMs: config.heartbeatMs, figures, logger });
  const peers = new PeerClient({ timeoutMs: config.peerTimeoutMs });
  const origin = new PoolOrigin({ edge: input.edgeOrigin, membership, peers, blockSizeBytes: input.blockSizeBytes, servingPeer, warming, stats, logger, suspectMs: Math.max(5_000, config.heartbeatMs * 3) });
  const placement = new PoolPlacement({ membership, servingPeer, warming, nearCacheBytes: config.nearCacheBytes });
  const pin = (bucket: string, prefix: string) => input.cache.pin(bucket, prefix);
  const holds = (bucket: string, key: string, etag: string, index: number) => input.cache.has({ bucket, key, etag, index });
  let server: Server | undefined;
  let warm: PoolWarm | undefined;

  return {
    origin,
    placement,
    async start(readPath) {
      readPathForHandoff = readPath;
      server = createPeerServer({ membership, head: readPath.head, block: readPath.block, cachedBlock: readPath.cachedBlock, blockSizeBytes: input.blockSizeBytes, servingPeer, warming, pin, holds, stats, logger, leaving: () => leaving });
      server.listen(config.listen.port, config.listen.host);
      await once(server, "listening");
      logger.info("peer listener up", { listen: `${config.listen.host}:${config.listen.port}`, advertise: config.advertise });
      await membership.start();
      warm = new PoolWarm({ membership, peers, readPath, list: readPath.list, blockSizeBytes: input.blockSizeBytes, logger, replicas: config.replicas, warming, pin });
    },
    warm: () => warm,
    figures: () => stats.figures(),
    async leave() {
      if (leaving) return;
      leaving = true;
      const before = [...membership.members()];
      try {
        await membership.leave();
      } catch (error) {
        // The edge will expire this member after three missed heartbeats anyway.
        logger.warn("leaving the cluster failed", { error: error instanceof Error ? error.message : String(error) });
      }
      const credential = membership.credential();
      if (config.handoff && readPathForHandoff && credential) {
        await handOff({ membersBefore: before, selfId: membership.selfId, credential, replicas: config.replicas, blockSizeBytes: input.blockSizeBytes, deadlineMs: config.handoffDeadlineMs, readPath: readPathForHandoff, cache: input.cache, peers, stats, logger });
      }
      // Peers refresh their list every heartbeat; until then keep answering them.
      await new Promise((r) => setTimeout(r, Math.min(10_000, config.heartbeatMs * 2)));
      logger.info("drained peers", { servedBlocks: stats.servedBlocks });
    },
    async close() {
      membership.stop();
      if (server) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server?.close(() => resolve()));
      }
      await peers.close();
    },
    status() {
      return {
        cluster: config.cluster ?? null,
        staticPeers: config.peers ?? null,
        replicas: config.replicas,
        handoff: config.handoff,
        nearCache: { boundBytes: placement.near.boundBytes, bytes: placement.near.bytes, blocks: placement.near.count },
        memberId: membership.selfId,
        members: membership.members().map((m) => ({ id: m.id, peer: m.peer, capacityBytes: m.capacityBytes })),
        joined: membership.credential() !== undefined,
        ...stats.figures(),
      };
    },
  };
}
