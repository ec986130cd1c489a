// The pool's entry point for main.ts: builds membership (edge or static), the pool origin
// that wraps the edge origin, and — once the read path exists — the peer listener. Leaving
// (SIGTERM) drops out of the membership first, then keeps serving peers for a drain window
// so reads already routed here still complete, then closes.
import { AsyncLocalStorage } from "node:async_hooks";
import { once } from "node:events";
import type { Server } from "node:http";
import type { Credentials } from "../../../s3/sigv4.ts";
import type { PoolConfig } from "../config.ts";
import type { Logger } from "../log.ts";
import type { ListResult } from "../../../s3/listing-xml.ts";
import type { ListParams, ObjectInfo, ObjectOrigin } from "../origin/object-origin.ts";
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
}

export interface Pool {
  origin: ObjectOrigin;
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
  let leaving = false;
  const figures = () => ({ ...input.figures(), ...stats.figures() });
  const membership: Membership = config.peers
    ? new StaticMembership({ selfId: config.advertise, peers: config.peers, credential: { accessKeyId: "FRYPOOLSTATIC", secretAccessKey: config.clusterSecret ?? "" }, intervalMs: config.heartbeatMs, timeoutMs: config.peerTimeoutMs, logger })
    : new EdgeMembership({ edge: input.edge, nodeKey: input.nodeKey, cluster: config.cluster ?? "", advertise: config.advertise, capacityBytes: input.capacityBytes, heartbeatMs: config.heartbeatMs, figures, logger });
  const peers = new PeerClient({ timeoutMs: config.peerTimeoutMs });
  const origin = new PoolOrigin({ edge: input.edgeOrigin, membership, peers, blockSizeBytes: input.blockSizeBytes, servingPeer, stats, logger, suspectMs: Math.max(5_000, config.heartbeatMs * 3) });
  let server: Server | undefined;
  let warm: PoolWarm | undefined;

  return {
    origin,
    async start(readPath) {
      server = createPeerServer({ membership, head: readPath.head, block: readPath.block, blockSizeBytes: input.blockSizeBytes, servingPeer, stats, logger, leaving: () => leaving });
      server.listen(config.listen.port, config.listen.host);
      await once(server, "listening");
      logger.info("peer listener up", { listen: `${config.listen.host}:${config.listen.port}`, advertise: config.advertise });
      await membership.start();
      warm = new PoolWarm({ membership, peers, readPath, list: readPath.list, blockSizeBytes: input.blockSizeBytes, logger });
    },
    warm: () => warm,
    figures: () => stats.figures(),
    async leave() {
      if (leaving) return;
      leaving = true;
      try {
        await membership.leave();
      } catch (error) {
        // The edge will expire this member after three missed heartbeats anyway.
        logger.warn("leaving the cluster failed", { error: error instanceof Error ? error.message : String(error) });
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
        memberId: membership.selfId,
        members: membership.members().map((m) => ({ id: m.id, peer: m.peer, capacityBytes: m.capacityBytes })),
        joined: membership.credential() !== undefined,
        ...stats.figures(),
      };
    },
  };
}
