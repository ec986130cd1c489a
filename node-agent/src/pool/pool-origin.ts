// The pool as an origin: decorates the edge origin so a block goes to its owner (weighted
// rendezvous over live members). The owner fetches from the edge; anyone else asks the
// owner, then the next choice, then the edge as a last resort — each peer attempt bounded
// by a timeout, a failing peer skipped for a while — so a reader never sees a peer's
// failure. Reads made on a peer's behalf always go to the edge: never forwarded twice.
import type { AsyncLocalStorage } from "node:async_hooks";
import type { ListResult } from "../../../s3/listing-xml.ts";
import type { Logger } from "../log.ts";
import type { ListParams, ObjectInfo, ObjectOrigin, SmallObject } from "../origin/object-origin.ts";
import type { Membership } from "./membership.ts";
import type { PeerClient } from "./peer-client.ts";
import type { WarmRequest } from "./placement.ts";
import { PeerCorruptError } from "./pool-errors.ts";
import type { PoolStats } from "./pool-stats.ts";
import { blockKeyOf, rankOwners } from "./rendezvous.ts";

export interface PoolOriginOptions {
  edge: ObjectOrigin;
  membership: Membership;
  peers: PeerClient;
  blockSizeBytes: number;
  servingPeer: AsyncLocalStorage<true>;
  /** Set while loading a block a warm or handoff asked for; a handoff names the peer to copy from. */
  warming: AsyncLocalStorage<WarmRequest>;
  stats: PoolStats;
  logger: Logger;
  /** Peers asked per block before falling back to the edge. Default 2. */
  peerAttempts?: number;
  /** How long a failed peer is skipped. Default 5 s. */
  suspectMs?: number;
  /** How long a fetched block stays in memory for requests that miss the cache write. Default 3 s. */
  recentMs?: number;
}

/** Memory held by recently fetched blocks, at most. */
const RECENT_BYTES = 128 * 2 ** 20;

export class PoolOrigin implements ObjectOrigin {
  private readonly o: PoolOriginOptions;
  private readonly suspects = new Map<string, number>();
  /**
   * Edge fetches in flight or just done, by block. The reader's singleflight ends when the
   * bytes arrive but its cache write lands later; an owner gets requests from every peer
   * in that gap, and without this each would be another R2 read.
   */
  private readonly recent = new Map<string, { data: Promise<Uint8Array>; until: number }>();

  constructor(options: PoolOriginOptions) {
    this.o = options;
  }

  listBuckets(): Promise<string[]> {
    return this.o.edge.listBuckets();
  }

  head(bucket: string, key: string): Promise<ObjectInfo | undefined> {
    return this.o.edge.head(bucket, key);
  }

  revalidate(bucket: string, key: string, etag: string): Promise<ObjectInfo | "unchanged" | undefined> {
    return this.o.edge.revalidate(bucket, key, etag);
  }

  list(bucket: string, params: ListParams): Promise<ListResult> {
    return this.o.edge.list(bucket, params);
  }

  getSmall(bucket: string, key: string, knownEtag?: string): Promise<SmallObject | "unchanged" | undefined> {
    return this.o.edge.getSmall(bucket, key, knownEtag);
  }

  private suspect(id: string): boolean {
    const until = this.suspects.get(id);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.suspects.delete(id);
    return false;
  }

  private async fromEdge(bucket: string, key: string, etag: string, offset: number, length: number): Promise<Uint8Array> {
    const blockKey = `${blockKeyOf(bucket, key, etag, Math.floor(offset / this.o.blockSizeBytes))}\n${length}`;
    const now = Date.now();
    const hit = this.recent.get(blockKey);
    // A copy: the reader owns what an origin returns.
    if (hit && hit.until > now) return (await hit.data).slice();
    const data = this.o.edge.readRange(bucket, key, etag, offset, length);
    const entry = { data, until: Number.POSITIVE_INFINITY };
    this.recent.delete(blockKey);
    this.recent.set(blockKey, entry);
    const maxEntries = Math.max(8, Math.floor(RECENT_BYTES / this.o.blockSizeBytes));
    for (const [k, v] of this.recent) {
      if (this.recent.size <= maxEntries && v.until > now) break;
      if (v !== entry) this.recent.delete(k);
      else break;
    }
    try {
      const bytes = await data;
      this.o.stats.edgeBytes += bytes.length;
      this.o.stats.edgeBlocks++;
      entry.until = Date.now() + (this.o.recentMs ?? 3_000);
      return bytes;
    } catch (error) {
      this.recent.delete(blockKey);
      throw error;
    }
  }

  async readRange(bucket: string, key: string, etag: string, offset: number, length: number): Promise<Uint8Array> {
    const bs = this.o.blockSizeBytes;
    const index = Math.floor(offset / bs);
    const blockKey = blockKeyOf(bucket, key, etag, index);
    if (this.o.servingPeer.getStore() || offset % bs !== 0 || length > bs) {
      const data = await this.fromEdge(bucket, key, etag, offset, length);
      if (this.o.servingPeer.getStore()) this.o.stats.ownedRead(blockKey, data.length);
      return data;
    }
    const credential = this.o.membership.credential();
    const from = this.o.warming.getStore()?.from;
    if (from && credential) {
      // A leaving peer hands this block over: copy it from there, else read it like any miss.
      try {
        const data = await this.o.peers.fetchBlock(from, credential, { bucket, key, etag, offset, length });
        this.o.stats.peerBytes += data.length;
        this.o.stats.peerBlocks++;
        this.o.stats.handoffBlocksReceived++;
        return data;
      } catch (error) {
        this.o.logger.warn("handoff copy failed; reading through the pool", { peer: from, bucket, key, index, error: error instanceof Error ? error.message : String(error) });
      }
    }
    const ranked = rankOwners(blockKey, this.o.membership.members());
    let failures = 0;
    for (const member of ranked) {
      if (member.id === this.o.membership.selfId) {
        const data = await this.fromEdge(bucket, key, etag, offset, length);
        this.o.stats.ownedRead(blockKey, data.length);
        if (failures) this.o.stats.fallbackBlocks++;
        return data;
      }
      if (!credential || this.suspect(member.id)) continue;
      if (failures >= (this.o.peerAttempts ?? 2)) break;
      try {
        const data = await this.o.peers.fetchBlock(member.peer, credential, { bucket, key, etag, offset, length });
        this.o.stats.peerBytes += data.length;
        this.o.stats.peerBlocks++;
        return data;
      } catch (error) {
        failures++;
        if (error instanceof PeerCorruptError) this.o.stats.peerCorrupt++;
        else this.o.stats.peerErrors++;
        this.suspects.set(member.id, Date.now() + (this.o.suspectMs ?? 5_000));
        this.o.logger.warn("peer skipped", { peer: member.peer, bucket, key, index, error: error instanceof Error ? error.message : String(error) });
      }
    }
    // No live owner answered (or no membership yet): the edge, once per block per node.
    if (failures) this.o.stats.fallbackBlocks++;
    return this.fromEdge(bucket, key, etag, offset, length);
  }
}
